"""Display messages (OCPP 2.0.1 SetDisplayMessage) in the API and on the page, in Chromium at
phone and desktop sizes: the station view and the live stream mirror the gateway's retained
`ocpp/display`; the page shows station-wide messages in the banner at the top and an EVSE's on
its connector's card, styled by priority, as plain text (markup from the central system stays
text) and a URI as a link only when it is an http(s) address.

Real parts: Mosquitto with the repo's ACL, the API on uvicorn; in the first page test the real
gateway (2.0.1), simulated hardware and dev central system as processes, the messages sent as
SetDisplayMessage/ClearDisplayMessage through the dev central system's HTTP API; in the second
the test plays the gateway on the bus. Screenshots go to VOLTBUS_SCREENSHOTS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.api.conftest import Peers, api_settings, eventually, running_api
from tests.api.served import served_api
from tests.api.test_browser import CHROMIUM_ARGS, chromium  # noqa: F401 (fixture)
from tests.api.test_page_charts import DESKTOP, PHONE, log_in, shots
from tests.api.test_stream import sse_events
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from voltbus_common import channels as ch
from voltbus_common.enums import ConnectorStatus
from voltbus_common.models import DisplayMessage, DisplayMessages, OcppConnectorStatus

HOSTILE = "<img src=x onerror=\"window.pwned=1\">Free charging <b>today</b>"


def ids(messages: list[dict[str, Any]]) -> list[int]:
    return [m["id"] for m in messages]


async def test_the_station_view_and_the_stream_mirror_ocpp_display(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    shown = DisplayMessages(messages=[
        DisplayMessage(id=4, priority="AlwaysFront", format="UTF8", content="front"),
        DisplayMessage(id=1, priority="NormalCycle", format="ASCII", content="hello",
                       connector=1)])
    peers.gateway.publish(ch.DISPLAY, shown)
    async with running_api(api_settings(mosquitto, station, tmp_path)) as (client, ctx):
        async def mirrored() -> bool:
            st = (await client.get(f"/api/v1/stations/{station}")).json()
            return st["display"] is not None and ids(st["display"]["messages"]) == [4, 1]

        await eventually(mirrored)
        st = (await client.get(f"/api/v1/stations/{station}")).json()
        assert st["display"]["messages"][1] == {
            "id": 1, "priority": "NormalCycle", "format": "ASCII", "content": "hello",
            "language": None, "state": None, "starts_at": None, "ends_at": None,
            "transaction_ref": None, "connector": 1}
        # A payload that breaks the contract (content over 512) is dropped: the last one stays.
        peers.gateway.publish_raw(
            f"{mosquitto.root}/{station}/ocpp/display",
            b'{"messages": [{"id": 9, "priority": "InFront", "format": "UTF8", "content": "'
            + b"x" * 600 + b'"}]}', retain=True)

        async def counted() -> bool:
            return ctx.buses[station].invalid_count >= 1

        await eventually(counted)
        st = (await client.get(f"/api/v1/stations/{station}")).json()
        assert ids(st["display"]["messages"]) == [4, 1]
    peers.gateway.publish(ch.DISPLAY, shown)  # the broker kept the bad one as the retained
    await peers.gateway.drain()
    # The live stream: the retained display in the snapshot, then each new list as a change.
    async with served_api(api_settings(mosquitto, station, tmp_path)) as api, \
            httpx.AsyncClient(base_url=api.url, timeout=10) as http, \
            http.stream("GET", "/api/v1/events",
                        headers={"Authorization": f"Bearer {api.token}"}) as response:
        events = sse_events(response)
        kind, data = await anext(events)
        assert kind == "snapshot"
        assert ids(data[0]["display"]["messages"]) == [4, 1]
        peers.gateway.publish(ch.DISPLAY, DisplayMessages(messages=[]))
        async for kind, data in events:
            if kind == "change" and data["kind"] == "display" and not data["retained"]:
                break
        assert data["station"] == station
        assert data["connector"] is None
        assert data["data"]["messages"] == []


async def call(http_url: str, station: str, action: str, payload: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(base_url=http_url, timeout=20) as client:
        r = await client.post(f"/chargers/{station}/call/{action}", json=payload)
    assert r.status_code == 200, r.text
    return r.json()


def set_message(mid: int, priority: str, content: str, *, fmt: str = "UTF8",
                language: str = "en", evse: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"id": mid, "priority": priority, "message": {
        "format": fmt, "language": language, "content": content}}
    if evse is not None:
        message["display"] = {"name": "Display", "evse": {"id": evse}}
    return {"message": message}


async def new_page(pw: Any, executable: str, viewport: dict[str, int]) -> tuple[Page, list[str]]:
    browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    context = await browser.new_context(viewport=viewport, is_mobile=viewport is PHONE)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_messages_set_by_the_central_system_show_on_the_page(
        chromium: str, mosquitto: Broker, services: ServiceGroup, station: str,  # noqa: F811
        tmp_path: Path, viewport: dict[str, int]) -> None:
    _, http_port = await services.start_charge_point(
        mosquitto, station, tmp_path / "data", gateway_env={"VOLTBUS_OCPP_VERSION": "2.0.1"})
    http_url = f"http://127.0.0.1:{http_port}"
    settings = api_settings(mosquitto, station, tmp_path, ha_discovery=False)
    async with served_api(settings) as api, async_playwright() as pw:
        password = (tmp_path / "api" / "initial-admin-password").read_text().strip()
        page, errors = await new_page(pw, chromium, viewport)
        await log_in(page, api.url, "admin", password)
        card = page.locator(f"#c-{station}-1")
        await expect(card.locator(".status")).to_have_text("Available", timeout=30_000)
        banner = page.locator("#display-banner")
        await expect(banner).to_be_hidden()

        for mid, priority, content, extra in (
                (1, "NormalCycle", "Willkommen, grüß dich ⚡", {"language": "de"}),
                (2, "AlwaysFront", HOSTILE, {}),
                (3, "InFront", "https://example.org/tariff?a=1&b=<b>", {"fmt": "URI"}),
                (4, "NormalCycle", "javascript:window.pwned=2", {"fmt": "URI"}),
                (5, "InFront", "Cable locked: pay at the kiosk", {"evse": 1})):
            answer = await call(http_url, station, "SetDisplayMessage",
                                set_message(mid, priority, content, **extra))
            assert answer["status"] == "Accepted", (mid, answer)

        items = banner.locator(".display-message")
        await expect(items).to_have_count(4, timeout=10_000)
        assert [await items.nth(i).get_attribute("data-id") for i in range(4)] == [
            "2", "3", "1", "4"]  # AlwaysFront, InFront, then the normal cycle oldest first
        front = items.nth(0)
        await expect(front).to_have_class("display-message always-front")
        await expect(front).to_have_text(HOSTILE)  # the markup as text
        assert await banner.locator("img, b").count() == 0
        await expect(items.nth(1)).to_have_class("display-message in-front")
        link = items.nth(1).locator("a")
        await expect(link).to_have_attribute("href", "https://example.org/tariff?a=1&b=%3Cb%3E")
        await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        await expect(items.nth(2)).to_have_attribute("lang", "de")
        await expect(items.nth(2)).to_have_text("Willkommen, grüß dich ⚡")
        await expect(items.nth(3)).to_have_text("javascript:window.pwned=2")
        assert await items.nth(3).locator("a").count() == 0  # not a link
        on_card = card.locator(".display-messages .display-message")
        await expect(on_card).to_have_count(1)
        await expect(on_card).to_have_text("Cable locked: pay at the kiosk")
        await expect(on_card).to_have_class("display-message in-front")
        assert await page.evaluate("window.pwned") is None
        name = "phone" if viewport is PHONE else "desktop"
        await page.screenshot(path=str(shots(tmp_path) / f"display-{name}.png"))

        # O05 clear: the banner and the card follow the gateway's list.
        for mid in (2, 5):
            assert (await call(http_url, station, "ClearDisplayMessage", {"id": mid}))[
                "status"] == "Accepted"
        await expect(items).to_have_count(3)
        await expect(items.nth(0)).to_have_attribute("data-id", "3")
        await expect(card.locator(".display-messages")).to_be_hidden()
        assert errors == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_hostile_or_odd_messages_on_the_bus_stay_text(
        chromium: str, mosquitto: Broker, peers: Peers, station: str,  # noqa: F811
        tmp_path: Path, viewport: dict[str, int]) -> None:
    gw = peers.gateway
    gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.AVAILABLE), connector=1)
    gw.publish(ch.DISPLAY, DisplayMessages(messages=[
        DisplayMessage(id=1, priority="InFront", format="URI",
                       content="https://user:secret@evil.example/"),
        DisplayMessage(id=2, priority="NormalCycle", format="UTF8", language="x\"y",
                       content="pay \u202eecnarf\u202c here"),
        DisplayMessage(id=3, priority="NormalCycle", format="ASCII", content="on the 2nd",
                       connector=2),
        DisplayMessage(id=4, priority="NormalCycle", format="URI",
                       content="data:text/html,<script>alert(1)</script>")]))
    async with served_api(api_settings(mosquitto, station, tmp_path,
                                       ha_discovery=False)) as api, async_playwright() as pw:
        password = (tmp_path / "api" / "initial-admin-password").read_text().strip()
        page, errors = await new_page(pw, chromium, viewport)
        await log_in(page, api.url, "admin", password)
        items = page.locator("#display-banner .display-message")
        await expect(items).to_have_count(4)
        # credentials in the address: text, not a link
        await expect(items.nth(0)).to_have_text("https://user:secret@evil.example/")
        assert await page.locator("#display-banner a").count() == 0
        # a language that is no language tag: no lang; bidi overrides are dropped
        assert await items.nth(1).get_attribute("lang") is None
        await expect(items.nth(1)).to_have_text("pay ecnarf here")
        # an EVSE without a card on the page: in the banner, with where it is for
        await expect(items.nth(2)).to_have_text(f"{station}/2:on the 2nd")
        await expect(items.nth(3)).to_have_text("data:text/html,<script>alert(1)</script>")
        assert await page.locator("#display-banner script").count() == 0
        # Its connector appears: the message moves onto its card.
        gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.AVAILABLE),
                   connector=2)
        await expect(page.locator(f"#c-{station}-2 .display-message")).to_have_text(
            "on the 2nd")
        await expect(items).to_have_count(3)
        # The list empties (1.6, or all cleared): no banner.
        gw.publish(ch.DISPLAY, DisplayMessages(messages=[]))
        await expect(page.locator("#display-banner")).to_be_hidden()
        await expect(page.locator(f"#c-{station}-2 .display-messages")).to_be_hidden()
        assert errors == []
