"""Off-peak charging in the API: the override route (admin only, the gateway's real answer), the
connector view and the web page showing a waiting session, and the whole path through the real
gateway, simulated hardware and dev central system."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import async_playwright, expect

from tests.api.conftest import Peers, api_settings, eventually, running_api
from tests.api.served import served_api
from tests.api.test_browser import CHROMIUM_ARGS
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from voltbus_api.context import ApiContext
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import CommandName, CommandStatus, ConnectorStatus
from voltbus_common.models import (
    ChargingState,
    CommandResult,
    GatewayCommand,
    OcppConnectorStatus,
    SimPlug,
)

API = tuple[httpx.AsyncClient, ApiContext]
UNTIL = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)


def waiting(peers: Peers) -> None:
    """The gateway's news for a session held until the window opens."""
    peers.gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(
        status=ConnectorStatus.SUSPENDED_EVSE), connector=1)
    peers.gateway.publish(ch.CHARGING, ChargingState(
        enabled=True, current_limit_a=0.0, offpeak_waiting=True, offpeak_until=UNTIL),
        connector=1)


async def shown(client: httpx.AsyncClient, station: str) -> dict[str, object]:
    """The connector view once the waiting state has arrived."""
    path = f"/api/v1/stations/{station}/connectors/1"

    async def arrived() -> bool:
        r = await client.get(path)
        return r.status_code == 200 and (r.json()["charging"] or {}).get("offpeak_waiting")

    await eventually(arrived)
    data: dict[str, object] = (await client.get(path)).json()
    return data


async def test_connector_view_shows_the_offpeak_state(api: API, peers: Peers,
                                                      station: str) -> None:
    client, _ = api
    waiting(peers)
    view = await shown(client, station)
    assert view["charging"] == {"enabled": True, "current_limit_a": 0.0,
                                "ts": view["charging"]["ts"],  # type: ignore[index]
                                "offpeak_waiting": True, "offpeak_until": "2026-01-05T22:00:00Z",
                                "offpeak_override": False,
                                "command_limit_a": None,  # additive (issue 13)
                                # additive (issue 12's fail-safe): unset by this publisher
                                "limit_source": None, "energy_limit_a": None,
                                "energy_fail_safe": False, "energy_fail_safe_reason": None}
    # the station view carries the same
    [c] = (await client.get(f"/api/v1/stations/{station}")).json()["connectors"]
    assert c["charging"]["offpeak_until"] == "2026-01-05T22:00:00Z"


async def test_override_sends_the_command_and_answers_with_the_gateway(
        api: API, peers: Peers, station: str) -> None:
    client, _ = api
    waiting(peers)
    await shown(client, station)
    r = await client.post(f"/api/v1/stations/{station}/connectors/1/offpeak_override")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["command"]) == ("Accepted", "override_offpeak")
    [sent] = peers.commands
    assert (sent.connector, sent.payload.command) == (1, CommandName.OVERRIDE_OFFPEAK)
    assert sent.payload.request_id == r.json()["request_id"]


async def test_override_rejected_by_the_gateway_is_409_with_its_reason(
        api: API, peers: Peers, station: str) -> None:
    client, _ = api

    def refuse(msg: Received[GatewayCommand]) -> CommandResult:
        return CommandResult(request_id=msg.payload.request_id, command=msg.payload.command,
                             status=CommandStatus.REJECTED,
                             reason="no transaction on connector 1 is waiting for off-peak")

    peers.policy = refuse
    waiting(peers)
    await shown(client, station)
    r = await client.post(f"/api/v1/stations/{station}/connectors/1/offpeak_override")
    assert r.status_code == 409
    assert r.json()["detail"] == ("the gateway answered Rejected: no transaction on connector 1 "
                                  "is waiting for off-peak")
    assert r.json()["result"]["status"] == "Rejected"


async def test_override_needs_admin(api: API, peers: Peers, station: str) -> None:
    client, _ = api
    waiting(peers)
    await shown(client, station)
    made = (await client.post("/api/v1/tokens", json={"name": "wall", "role": "viewer"})).json()
    viewer = {"Authorization": f"Bearer {made['token']}"}
    r = await client.post(f"/api/v1/stations/{station}/connectors/1/offpeak_override",
                          headers=viewer)
    assert r.status_code == 403
    assert "this needs 'admin'" in r.json()["detail"]
    r = await client.post(f"/api/v1/stations/{station}/connectors/9/offpeak_override")
    assert r.status_code == 404
    assert peers.commands == []


async def test_web_page_shows_waiting_and_overrides(mosquitto: Broker, peers: Peers,
                                                    station: str, tmp_path: Path) -> None:
    until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
    waiting_state = ChargingState(enabled=True, current_limit_a=0.0, offpeak_waiting=True,
                                  offpeak_until=until)

    def gateway(msg: Received[GatewayCommand]) -> CommandResult:
        if msg.payload.command is CommandName.OVERRIDE_OFFPEAK:  # as the gateway does
            peers.gateway.publish(ch.CHARGING, ChargingState(
                enabled=True, current_limit_a=16.0, offpeak_override=True), connector=1)
        return CommandResult(request_id=msg.payload.request_id, command=msg.payload.command,
                             status=CommandStatus.ACCEPTED)

    peers.policy = gateway
    peers.gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(
        status=ConnectorStatus.SUSPENDED_EVSE), connector=1)
    peers.gateway.publish(ch.CHARGING, waiting_state, connector=1)
    settings = api_settings(mosquitto, station, tmp_path)
    async with served_api(settings) as served, async_playwright() as pw:
        password = (tmp_path / "api" / "initial-admin-password").read_text().strip()
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium",
                                           args=CHROMIUM_ARGS)
        context = await browser.new_context(timezone_id="Europe/Amsterdam", locale="en-GB")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(served.url + "/")
        await page.fill("#login-password", password)
        await page.click("#login-form button")
        card = page.locator(f"#c-{station}-1")
        await expect(card.locator(".status")).to_have_text("SuspendedEVSE")
        local = await page.evaluate(
            "iso => new Date(iso).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', "
            "hour12: false})", until.isoformat())
        assert local == until.astimezone(ZoneInfo("Europe/Amsterdam")).strftime("%H:%M")
        note = await card.locator(".offpeak").text_content()
        assert note is not None
        assert note.startswith("waiting for off-peak (starts ")
        assert note.endswith(f"{local})")
        await expect(card.locator(".override")).to_be_visible()
        await card.locator(".override").click()
        await expect(card.locator(".offpeak")).to_have_text("off-peak overridden: charging now")
        await expect(card.locator(".override")).to_be_hidden()
        await expect(card.locator(".limit")).to_have_text("16 A")
        assert [c.payload.command for c in peers.commands] == [CommandName.OVERRIDE_OFFPEAK]
        assert errors == []
        await browser.close()


async def test_override_through_the_real_gateway(mosquitto: Broker, services: ServiceGroup,
                                                 station: str, tmp_path: Path) -> None:
    # a window that is surely closed now: one minute, three days ahead
    opens = (datetime.now(UTC) + timedelta(days=3)).replace(hour=0, minute=0, second=0,
                                                            microsecond=0)
    window = f"{opens.strftime('%a').lower()} 00:00-00:01"
    await services.start_charge_point(
        mosquitto, station, tmp_path / "data", gateway_env={
            "VOLTBUS_OFFPEAK_ENABLED": "true", "VOLTBUS_OFFPEAK_WINDOWS": window,
            "VOLTBUS_OFFPEAK_TIMEZONE": "UTC"})
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    op_task = asyncio.create_task(operator.run())
    settings = api_settings(mosquitto, station, tmp_path, api_command_timeout_s=10)
    try:
        async with running_api(settings) as (client, _):
            path = f"/api/v1/stations/{station}/connectors/1"

            async def view() -> dict[str, object]:
                r = await client.get(path)
                return r.json() if r.status_code == 200 else {}

            async def status_is(wanted: str) -> bool:
                return ((await view()).get("status") or {}).get("status") == wanted  # type: ignore[union-attr]

            async def charging_known() -> bool:
                return (await view()).get("charging") is not None

            await eventually(lambda: status_is("Available"), within_s=30)
            await eventually(charging_known)
            charging = (await view())["charging"]
            assert charging["offpeak_until"] == opens.strftime("%Y-%m-%dT%H:%M:%SZ"), charging  # type: ignore[index]
            r = await client.post(f"{path}/offpeak_override")  # nothing waiting yet
            assert r.status_code == 409, r.text
            assert "no transaction on connector 1 is waiting" in r.json()["detail"]
            cli = await asyncio.to_thread(  # the same through `voltbus cmd`
                subprocess.run, [sys.executable, "-m", "voltbus_common.cli", "cmd",
                                 "offpeak-override", "1", "--station", station],
                env={**os.environ, **mosquitto.env("operator"), "VOLTBUS_STATIONS": station},
                capture_output=True, text=True, timeout=30)
            assert cli.returncode == 1, cli.stderr
            assert cli.stdout.strip() == ("override_offpeak: Rejected (no transaction on "
                                          "connector 1 is waiting for off-peak)")

            await operator.wait_connected(5)
            operator.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
            await eventually(lambda: status_is("Preparing"), within_s=15)
            r = await client.post(f"{path}/start", json={"id_tag": "04A1B2C3"})
            assert r.status_code == 200, (r.text, services.logs())
            await eventually(lambda: status_is("SuspendedEVSE"), within_s=15)
            held = (await view())["charging"]
            assert (held["offpeak_waiting"], held["current_limit_a"]) == (True, 0.0)  # type: ignore[index]

            r = await client.post(f"{path}/offpeak_override")
            assert r.status_code == 200, (r.text, services.logs())
            assert r.json()["status"] == "Accepted"
            await eventually(lambda: status_is("Charging"), within_s=15)
            free = (await view())["charging"]
            assert (free["offpeak_waiting"], free["offpeak_override"]) == (False, True)  # type: ignore[index]
            assert free["current_limit_a"] > 0  # type: ignore[index]
            assert (await client.post(f"{path}/stop")).status_code == 200
    finally:
        op_task.cancel()
        await asyncio.gather(op_task, return_exceptions=True)
