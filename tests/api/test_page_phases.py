"""Issue 12: the phases a connector charges on, in the API (`phases`, the retained
hw/{c}/phases) and on its card in Chromium at phone and desktop sizes, with the energy manager's
phase switch in progress (its `phase_switching` on energy/{c}/mode, through GET /site).

Real parts: Mosquitto with the repo's ACL and the API on uvicorn; the test plays the hardware
and the energy manager on the bus with their own MQTT users (the switch sequence itself, with
the real energy manager and hardware, is tests/energy/test_phase_switching.py). Screenshots go
to VOLTBUS_SCREENSHOTS.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from tests.api.conftest import Peers, api_settings, eventually
from tests.api.served import served_api
from tests.api.test_browser import chromium  # noqa: F401 (fixture)
from tests.api.test_page_charts import DESKTOP, PHONE, log_in, shots
from tests.api.test_page_display import new_page
from tests.fixtures.mosquitto import Broker, running
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import ChargeMode, ConnectorStatus
from voltbus_common.models import ChargeModeState, OcppConnectorStatus, PhaseState


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_the_card_shows_the_phases_and_a_switch_in_progress(
        chromium: str, mosquitto: Broker, peers: Peers, station: str,  # noqa: F811
        tmp_path: Path, viewport: dict[str, int]) -> None:
    gw, hw = peers.gateway, peers.hardware
    energy = Bus(mosquitto.settings("energy", stations=[station]), station=station,
                 service="energy")
    for n in (1, 2):
        gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING),
                   connector=n)
    hw.publish(ch.PHASES, PhaseState(phases=1, switchable=True), connector=1)
    hw.publish(ch.PHASES, PhaseState(phases=None, switchable=False), connector=2)
    settings = api_settings(mosquitto, station, tmp_path, ha_discovery=False)
    async with running(energy), served_api(settings) as api, async_playwright() as pw:
        energy.publish(ch.ENERGY_MODE, ChargeModeState(
            mode=ChargeMode.PV, phases=1, phase_switching=True,
            status="switching to 3 phase(s): pausing"), connector=1)
        async with httpx.AsyncClient(base_url=api.url, headers={
                "Authorization": f"Bearer {api.token}"}) as client:
            async def mirrored() -> bool:
                c = (await client.get(f"/api/v1/stations/{station}/connectors/1")).json()
                return c["phases"] is not None

            await eventually(mirrored)
            c = (await client.get(f"/api/v1/stations/{station}/connectors/1")).json()
            assert (c["phases"]["phases"], c["phases"]["switchable"]) == (1, True)
        password = (tmp_path / "api" / "initial-admin-password").read_text().strip()
        page, errors = await new_page(pw, chromium, viewport)
        await log_in(page, api.url, "admin", password)
        one, two = page.locator(f"#c-{station}-1 .phases"), page.locator(f"#c-{station}-2 .phases")
        await expect(one).to_have_text("1-phase (switching now)", timeout=10_000)
        await expect(one).to_have_attribute("data-switching", "true")
        await expect(two).to_have_text("as wired (no phase switch)")
        name = "phone" if viewport is PHONE else "desktop"
        await page.screenshot(path=str(shots(tmp_path) / f"phases-{name}.png"), full_page=True)

        # The switch done: the hardware confirms three phases, the energy manager resumes.
        hw.publish(ch.PHASES, PhaseState(phases=3, switchable=True, request_id="energy-3"),
                   connector=1)
        energy.publish(ch.ENERGY_MODE, ChargeModeState(mode=ChargeMode.PV, phases=3),
                       connector=1)
        await expect(one).to_have_text("3-phase (switchable 1/3)", timeout=10_000)
        await expect(one).to_have_attribute("data-phases", "3")
        await expect(one).to_have_attribute("data-switching", "false")
        # A refused switch: the phases stay, the card says why.
        hw.publish(ch.PHASES, PhaseState(phases=3, switchable=True, request_id="energy-1",
                                         reason="current is flowing"), connector=1)
        await expect(one).to_have_text(
            "3-phase (switchable 1/3; last switch refused: current is flowing)")
        assert errors == []
