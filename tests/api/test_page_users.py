"""The login page, own password change and (admin) user management, in Chromium against the API
on a real uvicorn and Mosquitto."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright, expect

from tests.api.conftest import Peers, api_settings
from tests.api.served import Served, served_api
from tests.api.test_browser import CHROMIUM_ARGS, chromium  # noqa: F401 (fixture)
from tests.api.test_page_charts import PHONE, log_in, shots
from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common.enums import ConnectorStatus
from voltbus_common.models import ChargingState, OcppConnectorStatus


async def users_of(api: Served) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=api.url,
                                 headers={"Authorization": f"Bearer {api.token}"}) as client:
        r = await client.get("/api/v1/users")
    assert r.status_code == 200
    return {u["username"]: u["role"] for u in r.json()}


async def change_password(page: Page, current: str, new: str, repeat: str | None = None) -> None:
    await page.fill("#password-current", current)
    await page.fill("#password-new", new)
    await page.fill("#password-repeat", new if repeat is None else repeat)
    await page.click("#password-form button")


async def test_login_page_hides_log_out_and_names_the_real_password_file(
        chromium: str, mosquitto: Broker, peers: Peers, station: str,  # noqa: F811
        tmp_path: Path) -> None:
    async with served_api(api_settings(mosquitto, station, tmp_path)) as api, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport=PHONE, is_mobile=True)
        await page.goto(api.url + "/")
        await expect(page.locator("#login-form")).to_be_visible()
        await expect(page.locator("#logout")).to_be_hidden()
        path = (tmp_path / "api" / "initial-admin-password").resolve()
        await expect(page.locator("#first-login-path")).to_have_text(str(path))
        await expect(page.locator("#first-login-hint")).to_be_visible()
        assert "{data_dir}" not in await page.locator("#first-login-hint").inner_text()
        await page.screenshot(path=str(shots(tmp_path) / "phone-login.png"))
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await browser.close()


async def test_admin_changes_the_first_password_and_manages_users(
        chromium: str, mosquitto: Broker, peers: Peers, station: str,  # noqa: F811
        tmp_path: Path) -> None:
    peers.gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.AVAILABLE),
                          connector=1)
    async with served_api(api_settings(mosquitto, station, tmp_path)) as api, \
            async_playwright() as pw:
        first = tmp_path / "api" / "initial-admin-password"
        password = first.read_text().strip()
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await log_in(page, api.url, "admin", password)
        await expect(page.locator("#logout")).to_be_visible()
        note = page.locator("#initial-password-note")
        await expect(note).to_be_visible()
        await expect(note.locator(".path")).to_have_text(str(first.resolve()))

        # Own password: a typo in the repeat, a wrong current one, then the real change.
        message = page.locator("#password-message")
        await change_password(page, password, "new password 1", "new password 2")
        await expect(message).to_have_text("the new passwords differ")
        await change_password(page, "not it at all", "new password 1")
        await expect(message).to_have_text("the current password is wrong")
        await change_password(page, password, "new password 1")
        await expect(message).to_have_text("Password changed.")
        await expect(note).to_be_hidden()
        assert not first.exists()

        # Users: the admin's own row cannot be demoted or deleted.
        own = page.locator("#users tbody tr[data-user='admin']")
        await expect(own.locator(".role")).to_be_disabled()
        await expect(own.locator(".delete")).to_be_disabled()
        await page.fill("#user-name", "vera")
        await page.fill("#user-password", "vera's password")
        await page.click("#user-form button")
        vera = page.locator("#users tbody tr[data-user='vera']")
        await expect(vera.locator(".role")).to_have_value("viewer")
        assert await users_of(api) == {"admin": "admin", "vera": "viewer"}
        # The same name again: the API's reason shows.
        await page.fill("#user-name", "vera")
        await page.fill("#user-password", "another password")
        await page.click("#user-form button")
        await expect(page.locator("#users-error")).to_have_text("user 'vera' exists already")
        await page.locator("#users-section").screenshot(path=str(shots(tmp_path) / "users.png"))

        await vera.locator(".role").select_option("admin")
        await expect(vera.locator(".role")).to_have_value("admin")
        assert (await users_of(api))["vera"] == "admin"
        await vera.locator(".role").select_option("viewer")
        await expect(vera.locator(".role")).to_have_value("viewer")
        assert (await users_of(api))["vera"] == "viewer"

        # Delete takes two clicks (no dialog).
        await vera.locator(".delete").click()
        await expect(vera.locator(".delete")).to_have_text("Delete vera?")
        assert "vera" in await users_of(api)
        await vera.locator(".delete").click()
        await expect(vera).to_have_count(0)
        assert await users_of(api) == {"admin": "admin"}

        # Log out: no "Log out" button, no first-password hint (the file is gone).
        await page.click("#logout")
        await expect(page.locator("#login-form")).to_be_visible()
        await expect(page.locator("#logout")).to_be_hidden()
        await expect(page.locator("#first-login-hint")).to_be_hidden()
        await log_in(page, api.url, "admin", "new password 1")
        assert errors == []
        await browser.close()


async def test_a_viewer_has_no_controls_but_can_change_their_password(
        chromium: str, mosquitto: Broker, peers: Peers, station: str,  # noqa: F811
        tmp_path: Path) -> None:
    peers.gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING),
                          connector=1)
    peers.gateway.publish(ch.CHARGING, ChargingState(enabled=True, current_limit_a=16.0,
                                                     offpeak_waiting=True), connector=1)
    async with served_api(api_settings(mosquitto, station, tmp_path)) as api, \
            async_playwright() as pw:
        async with httpx.AsyncClient(base_url=api.url) as client:
            r = await client.post("/api/v1/users", json={
                "username": "vera", "password": "viewer password", "role": "viewer"},
                headers={"Authorization": f"Bearer {api.token}"})
            assert r.status_code == 201
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await log_in(page, api.url, "vera", "viewer password")
        card = page.locator(f"#c-{station}-1")
        await expect(card.locator(".offpeak")).to_have_text("waiting for off-peak")
        for control in (".pause", ".override", ".stop", ".start", ".limit-form"):
            await expect(card.locator(control)).to_be_hidden()
        await expect(page.locator("#users-section")).to_be_hidden()
        await expect(page.locator("#initial-password-note")).to_be_hidden()
        await change_password(page, "viewer password", "vera's new password")
        await expect(page.locator("#password-message")).to_have_text("Password changed.")
        await page.click("#logout")
        await log_in(page, api.url, "vera", "vera's new password")
        await browser.close()
