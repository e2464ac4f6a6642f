"""The web page in Debian's headless Chromium (Playwright) against the API on a real uvicorn.

The test plays the gateway on the bus: a session appears, the user stops it on the page, the
gateway finishes it, the history shows it and the downloaded report holds its energy and cost.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from tests.api.conftest import Peers, api_settings, eventually
from tests.api.served import served_api
from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common.bus import Received
from voltbus_common.enums import CommandName, CommandStatus, ConnectorStatus, StopReason
from voltbus_common.models import (
    CommandResult,
    GatewayCommand,
    MeterReading,
    OcppConnectorStatus,
    SessionSummary,
    TransactionState,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium")
    return CHROMIUM


async def test_login_watch_a_session_stop_it_and_download_a_report(
        chromium: str, mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=42)
    gw, hw = peers.gateway, peers.hardware

    def gateway(msg: Received[GatewayCommand]) -> CommandResult:
        if msg.payload.command is CommandName.SET_CURRENT_LIMIT and msg.payload.amps > 32:
            return CommandResult(request_id=msg.payload.request_id, command=msg.payload.command,
                                 status=CommandStatus.REJECTED, reason="above the cable's 32 A")
        if msg.payload.command is CommandName.STOP:  # finish the session as a gateway does
            gw.publish(ch.SESSION, SessionSummary(
                transaction_id=7, id_tag="04A1B2C3", started_at=started,
                stopped_at=datetime.now(UTC), meter_start_wh=1000.0, meter_stop_wh=8500.0,
                energy_wh=7500.0, stop_reason=StopReason.REMOTE), connector=1)
            gw.publish(ch.TRANSACTION, None, connector=1)
            gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.AVAILABLE),
                       connector=1)
        return CommandResult(request_id=msg.payload.request_id, command=msg.payload.command,
                             status=CommandStatus.ACCEPTED)

    peers.policy = gateway
    gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.AVAILABLE), connector=1)
    settings = api_settings(mosquitto, station, tmp_path, api_price_per_kwh=0.4)
    async with served_api(settings) as api, async_playwright() as pw:
        password = (tmp_path / "api" / "initial-admin-password").read_text().strip()
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 390, "height": 844},
                                            accept_downloads=True, is_mobile=True)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(api.url + "/")

        # Log in (a wrong password first: the page says so).
        await page.fill("#login-password", "wrong")
        await page.click("#login-form button")
        await expect(page.locator("#login-error")).to_have_text("wrong user name or password")
        await page.fill("#login-password", password)
        await page.click("#login-form button")
        await expect(page.locator("#who")).to_have_text("admin (admin)")
        card = page.locator(f"#c-{station}-1")
        await expect(card.locator(".status")).to_have_text("Available")

        # Start from the page: the gateway gets the id tag typed in.
        await card.locator(".start-tag").fill("04A1B2C3")
        await card.locator(".start button").click()
        async def started_with_tag() -> bool:
            return [c.payload.id_tag for c in peers.commands] == ["04A1B2C3"]

        await eventually(started_with_tag)
        # A limit the gateway refuses: the page says why.
        await card.locator(".limit-amps").fill("40")
        await card.locator(".limit-form button").click()
        await expect(page.locator("#command-error")).to_contain_text(
            "the gateway answered Rejected: above the cable's 32 A")

        # A session appears: the page shows it live.
        gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING),
                   connector=1)
        gw.publish(ch.TRANSACTION, TransactionState(
            transaction_id=7, id_tag="04A1B2C3", started_at=started, meter_start_wh=1000.0,
            energy_wh=7250.0), connector=1)
        hw.publish(ch.METER, MeterReading(energy_wh=8250.0, power_w=11040.0,
                                          current_a=[16.0, 16.0, 16.0],
                                          voltage_v=[230.0, 230.0, 230.0]), connector=1)
        await expect(card.locator(".status")).to_have_text("Charging")
        await expect(card.locator(".idtag")).to_have_text("04A1B2C3")
        await expect(card.locator(".energy")).to_have_text("7.250 kWh")
        await expect(card.locator(".power")).to_have_text("11.04 kW")
        await expect(card.locator(".elapsed")).to_contain_text("0:42:")

        # Stop it from the page.
        await card.locator(".stop").click()
        await expect(card.locator(".status")).to_have_text("Available")
        await expect(card.locator(".stop")).to_be_disabled()
        assert [c.payload.command for c in peers.commands][:2] == [
            CommandName.START, CommandName.SET_CURRENT_LIMIT]
        stop = [c for c in peers.commands if c.payload.command is CommandName.STOP]
        assert len(stop) == 1
        assert stop[0].connector == 1
        await expect(page.locator("#history tbody tr")).to_have_count(1)
        await expect(page.locator("#history tbody tr td").nth(2)).to_have_text("04A1B2C3")
        await expect(page.locator("#history tbody tr td").nth(4)).to_have_text("7.500")
        await expect(page.locator("#history-totals")).to_have_text(
            "1 sessions, 7.500 kWh in total")

        # Download this month's report.
        await page.fill("#report-month", started.strftime("%Y-%m"))
        async with page.expect_download() as info:
            await page.click("#report-csv")
        download = await info.value
        assert download.suggested_filename == f"voltbus-{started:%Y-%m}.csv"
        saved = Path(await download.path())
        text = await asyncio.to_thread(saved.read_text, encoding="utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[1][4] == "04A1B2C3"
        assert rows[-1][:8] == ["Total", "", "", "", "", "", "7.500", "3.00"]
        assert rows[-1][8].startswith("Cost at the fixed price 0.4 EUR/kWh")

        # Fits a phone: nothing wider than the screen.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        assert errors == []
        await browser.close()


async def test_a_viewer_sees_state_but_no_controls(
        chromium: str, mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    peers.gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING),
                          connector=1)
    async with served_api(api_settings(mosquitto, station, tmp_path)) as api, \
            async_playwright() as pw:
        async with httpx.AsyncClient(base_url=api.url) as client:
            r = await client.post("/api/v1/users", json={
                "username": "vera", "password": "viewer password", "role": "viewer"},
                headers={"Authorization": f"Bearer {api.token}"})
            assert r.status_code == 201
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(api.url + "/")
        await page.fill("#login-user", "vera")
        await page.fill("#login-password", "viewer password")
        await page.click("#login-form button")
        await expect(page.locator("#who")).to_have_text("vera (viewer)")
        card = page.locator(f"#c-{station}-1")
        await expect(card.locator(".status")).to_have_text("Charging")
        await expect(card.locator(".stop")).to_be_hidden()
        # A service going offline shows on the page.
        peers.hardware.publish_raw(f"{mosquitto.root}/{station}/service/hardware/status",
                                   b"offline", retain=True)
        await expect(page.locator("#link")).to_contain_text("offline: hardware")
        await expect(card.locator(".start")).to_be_hidden()
        # Logging out returns to the login form, and the session is gone.
        await page.click("#logout")
        await expect(page.locator("#login-form")).to_be_visible()
        await page.reload()
        await expect(page.locator("#login-form")).to_be_visible()
        await browser.close()
