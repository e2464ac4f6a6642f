"""The page's energy card in Chromium, phone and desktop: the power flow from energy/site and each
connector's charge mode and plan, set from the page and answered by the real energy manager.

Real parts: the API on uvicorn, Mosquitto with the repo's ACL, and the energy manager as a
process (`voltbus up`'s simulated house at 13:25 with a time-of-use tariff, cheap at night); the
test plays the gateway and the hardware (a running session on connector 1). Screenshots go to
VOLTBUS_SCREENSHOTS (default: the test's tmp dir).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from tests.api.conftest import Peers, api_settings, eventually
from tests.api.served import served_api
from tests.api.test_browser import CHROMIUM_ARGS, chromium  # noqa: F401 (fixture)
from tests.api.test_page_charts import DESKTOP, PHONE, log_in, shots
from tests.fixtures.mosquitto import Broker, running
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import ConnectorStatus, StopReason
from voltbus_common.models import (
    MeterReading,
    OcppConnectorStatus,
    SessionCost,
    SessionSummary,
    TransactionState,
)

NIGHT_PRICE, DAY_PRICE = 0.18, 0.32
# The cheap window is placed by the real clock (the tariff reads it, not the simulated house):
# from 2 h to 8 h from now, so the price in force is always the day price and a plan due
# 10 h from now finds only cheap hours.
NOW = datetime.now(UTC)
CHEAP = f"{(NOW.hour + 2) % 24:02d}:00-{(NOW.hour + 8) % 24 or 24:02d}:00"


@contextlib.contextmanager
def energy_manager(broker: Broker, station: str, site: str, tmp_path: Path) -> Iterator[Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLTBUS_")}
    env |= {**broker.env("energy"), "VOLTBUS_STATIONS": station, "VOLTBUS_ENERGY_SITE": site,
            "VOLTBUS_ENERGY_FUSE_A": "25", "VOLTBUS_ENERGY_CONNECTOR_MAX_A": "16",
            "VOLTBUS_HOUSE_START": "13:25", "VOLTBUS_HOUSE_PV_PEAK_W": "9000",
            "VOLTBUS_ENERGY_TARIFF": "tou", "VOLTBUS_ENERGY_PRICE_PER_KWH": str(DAY_PRICE),
            "VOLTBUS_ENERGY_TOU_WINDOWS": (f"mon-fri {CHEAP}={NIGHT_PRICE}; "
                                           f"sat,sun {CHEAP}={NIGHT_PRICE}"),
            "VOLTBUS_DATA_DIR": str(tmp_path / "energy")}
    log_path = tmp_path / "energy.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "voltbus_common.cli.house"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            yield log_path
        finally:
            process.terminate()
            process.wait(10)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_power_flow_mode_and_plan(
        chromium: str, mosquitto: Broker, peers: Peers, station: str,  # noqa: F811
        tmp_path: Path, viewport: dict[str, int]) -> None:
    gw, hw = peers.gateway, peers.hardware
    now = datetime.now(UTC).replace(microsecond=0)
    gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING), connector=1)
    gw.publish(ch.TRANSACTION, TransactionState(transaction_id=7, id_tag="04A1B2C3",
                                                started_at=now - timedelta(minutes=5),
                                                meter_start_wh=50_000.0, energy_wh=500.0),
               connector=1)
    hw.publish(ch.METER, MeterReading(energy_wh=50_500.0, power_w=4_140.0,
                                      current_a=[6.0, 6.0, 6.0], voltage_v=[230.0] * 3),
               connector=1)
    site = f"site{station}"
    settings = api_settings(mosquitto, station, tmp_path, energy_site=site,
                            ha_discovery=False)
    where = shots(tmp_path)
    name = "phone" if viewport is PHONE else "desktop"
    with energy_manager(mosquitto, station, site, tmp_path) as log_path:
        async with served_api(settings) as api, async_playwright() as pw:
            password = (tmp_path / "api" / "initial-admin-password").read_text().strip()
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport=viewport, is_mobile=viewport is PHONE)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and
                    "401 (Unauthorized)" not in msg.text else None)
            await log_in(page, api.url, "admin", password)

            # The power flow: grid (exporting at 13:25 with the sun up), PV, house, the car.
            flow = page.locator("#flow")
            await expect(page.locator("#energy-site")).to_be_visible(timeout=15_000)
            await expect(flow.locator(".node.grid .sub")).to_have_text("export", timeout=10_000)
            await expect(flow.locator(".node.pv .value")).to_have_text(
                re.compile(r"^[3-9]\.\d\d kW$"))
            await expect(flow.locator(".node.house")).to_be_visible()
            await expect(flow.locator(".node.car .label")).to_have_text(f"Car {station}/1")
            await expect(flow.locator(".node.car .value")).to_have_text("4.14 kW")
            await expect(page.locator("#site-note")).to_contain_text("Fuse 25 A per phase")
            await expect(page.locator("#site-note")).to_contain_text(f"{DAY_PRICE:.3f}")
            await expect(page.locator("#fail-safe")).to_be_hidden()
            await expect(page.locator("#unreachable")).to_be_hidden()  # no bridge down
            # The running session's cost: the energy manager's at the tariff in force.
            await expect(page.locator(f"#c-{station}-1 .cost")).to_have_attribute(
                "data-priced", "tariff", timeout=15_000)
            # The last 24 h of the site: no InfluxDB here, so what the API saw on the bus.
            site_chart = page.locator("#site-chart")
            await expect(site_chart).to_have_attribute("data-source", "local", timeout=10_000)
            await expect(site_chart.locator("canvas")).to_have_count(1)
            assert int(await site_chart.get_attribute("data-points") or 0) >= 1
            await expect(site_chart.locator(".u-legend .u-series")).to_have_count(7)
            await expect(page.locator("#site-chart-note")).to_contain_text("min means")

            # The connector's mode: minpv (the house's default), then PV from the page.
            card = page.locator(f"#c-{station}-1")
            block = card.locator(".energy-mode")
            await expect(block.locator(".mode-badge")).to_have_text("Min+PV", timeout=10_000)
            await expect(block.locator(".mode-status")).to_contain_text("minpv: up to")
            await block.locator(".modes .tab[data-mode=pv]").click()
            await expect(block.locator(".mode-badge")).to_have_text("PV")
            await expect(block.locator(".modes .tab[data-mode=pv]")).to_have_attribute(
                "aria-pressed", "true")
            await expect(block.locator(".mode-error")).to_have_text("")

            # A plan: 10 kWh due in 10 h: the manager picks the cheap hours 2-8 h from now.
            await block.locator(".modes .tab[data-mode=plan]").click()
            await expect(block.locator(".plan-form")).to_be_visible()
            await block.locator(".plan-kwh").fill("10")
            departure = (NOW.astimezone() + timedelta(hours=10)).replace(
                minute=0, second=0, microsecond=0)
            await block.locator(".plan-departure").fill(departure.strftime("%Y-%m-%dT%H:%M"))
            await block.locator(".plan-form button").click()
            await expect(block.locator(".mode-badge")).to_have_text("Plan")
            slots = block.locator(".slots tbody tr")
            await expect(slots.first).to_be_visible(timeout=10_000)
            assert await slots.count() >= 1
            # Checked against the API, which holds what the manager announced.
            async with httpx.AsyncClient(timeout=5) as client:
                answer = (await client.get(f"{api.url}/api/v1/site", headers={
                    "Authorization": f"Bearer {api.token}"})).json()
            mode = next(c["mode"] for c in answer["connectors"] if c["connector"] == 1)
            assert mode["mode"] == "plan"
            assert mode["plan_energy_wh"] == 10_000.0
            assert datetime.fromisoformat(mode["plan_departure"]) == departure
            prices_shown = [await slots.nth(i).locator("td").nth(1).inner_text()
                            for i in range(await slots.count())]
            assert prices_shown == [f"{s['price_per_kwh']:.3f}" for s in mode["plan_slots"]]
            assert set(prices_shown) == {f"{NIGHT_PRICE:.3f}"}, (prices_shown, mode)
            await expect(block.locator(".plan-summary")).to_contain_text("10.0 kWh by")
            if mode["plan_cost"] is not None:
                await expect(block.locator(".plan-summary")).to_contain_text(
                    f"cost {mode['plan_cost']:.2f}")

            # Fits the screen.
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"]
            await page.screenshot(path=str(where / f"{name}-energy-page.png"), full_page=True)
            await page.locator("#energy-site").screenshot(path=str(where / f"{name}-flow.png"))
            await card.screenshot(path=str(where / f"{name}-energy-card.png"))
            assert errors == [], errors
            await browser.close()
    assert "Traceback" not in log_path.read_text(errors="replace")


async def _known(ctx: Any, station: str) -> bool:
    return ctx.cache.connector(station, 1) is not None


async def test_mode_route_refuses_a_bare_plan_and_says_when_nobody_answers(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.api.conftest import running_api
    from voltbus_api.routes import energy as energy_routes

    monkeypatch.setattr(energy_routes, "ANSWER_TIMEOUT_S", 0.5)
    settings = api_settings(mosquitto, station, tmp_path, energy_site=f"site{station}",
                            ha_discovery=False)
    path = f"/api/v1/stations/{station}/connectors/1/energy/mode"
    peers.gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.AVAILABLE),
                          connector=1)
    async with running_api(settings) as (client, ctx):
        await eventually(lambda: _known(ctx, station))
        bare = await client.put(path, json={"mode": "plan"})
        assert bare.status_code == 422
        assert "plan_energy_wh" in bare.json()["detail"]
        silent = await client.put(path, json={"mode": "pv"})
        assert silent.status_code == 504
        assert "energy manager did not answer" in silent.json()["detail"]
        view = (await client.get("/api/v1/site")).json()
        assert view == {"site_id": f"site{station}", "site": None, "connectors": [], "costs": []}
        unknown = await client.put(f"/api/v1/stations/{station}/connectors/1/energy/mode",
                                   json={"mode": "turbo"})
        assert unknown.status_code == 422


async def test_the_page_shows_session_costs_at_the_tariff(
        chromium: str, mosquitto: Broker, peers: Peers, station: str,  # noqa: F811
        tmp_path: Path) -> None:
    """The card's cost is the energy manager's running energy/{c}/cost (not the fixed price),
    and the history shows each finished session's recorded tariff cost, the fixed price only
    where none was recorded (marked, with a note). The energy manager is played by a bus client
    as the `energy` user, so the costs are known exactly."""
    gw = peers.gateway
    now = datetime.now(UTC).replace(microsecond=0)
    past = [SessionSummary(transaction_id=i, transaction_ref=str(i), id_tag="04A1B2C3",
                           started_at=now - timedelta(hours=4 - i),
                           stopped_at=now - timedelta(hours=4 - i, minutes=-30),
                           meter_start_wh=0.0, meter_stop_wh=10_000.0, energy_wh=10_000.0,
                           stop_reason=StopReason.LOCAL) for i in (1, 2)]
    running_tx = TransactionState(transaction_id=7, transaction_ref="7", id_tag="04A1B2C3",
                                  started_at=now - timedelta(minutes=5), meter_start_wh=50_000.0,
                                  energy_wh=2_000.0)
    settings = api_settings(mosquitto, station, tmp_path, energy_site=f"site{station}",
                            ha_discovery=False, api_price_per_kwh=0.30)
    energy = Bus(mosquitto.settings("energy"), station=station, service=None)
    async with served_api(settings) as api, running(energy), async_playwright() as pw:
        for s in past:
            gw.publish(ch.SESSION, s, connector=2)
        energy.publish(ch.ENERGY_COST, SessionCost(
            transaction_ref="2", transaction_id=2, started_at=past[1].started_at,
            stopped_at=past[1].stopped_at, energy_wh=10_000.0, cost=1.876, final=True),
            connector=2)
        gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING),
                   connector=1)
        gw.publish(ch.TRANSACTION, running_tx, connector=1)
        energy.publish(ch.ENERGY_COST, SessionCost(
            transaction_ref="7", transaction_id=7, started_at=running_tx.started_at,
            energy_wh=2_000.0, cost=0.424, price_per_kwh=0.21), connector=1)

        auth = {"Authorization": f"Bearer {api.token}"}

        async def known() -> bool:  # both sessions and both costs reached the API
            async with httpx.AsyncClient(base_url=api.url, headers=auth, timeout=5) as client:
                sessions = (await client.get("/api/v1/sessions")).json()
                site = (await client.get("/api/v1/site")).json()
            return sessions["total"] == 2 and len(site["costs"]) == 2

        await eventually(known)
        password = (tmp_path / "api" / "initial-admin-password").read_text().strip()
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport=DESKTOP)).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await log_in(page, api.url, "admin", password)
        cost = page.locator(f"#c-{station}-1 .cost")
        # 0.424 at the tariff, not 2 kWh x 0.30 = 0.60 at the fixed price
        await expect(cost).to_have_text("0.42 EUR", timeout=10_000)
        await expect(cost).to_have_attribute("data-priced", "tariff")
        rows = page.locator("#history tbody tr")
        await expect(rows).to_have_count(2)
        cells = page.locator("#history tbody td.cost")
        await expect(cells.nth(0)).to_have_text("1.88")  # newest first: session 2, priced
        await expect(cells.nth(0)).to_have_attribute("data-priced", "tariff")
        await expect(cells.nth(1)).to_have_text("3.00 *")  # 10 kWh x 0.30: no tariff cost
        await expect(cells.nth(1)).to_have_attribute("data-priced", "fixed")
        await expect(page.locator("#history-totals")).to_contain_text(
            "* at the fixed price 0.30 EUR/kWh")
        await page.locator("#history").screenshot(path=str(shots(tmp_path) / "history-cost.png"))

        # A later running cost replaces it on the card.
        energy.publish(ch.ENERGY_COST, SessionCost(
            transaction_ref="7", transaction_id=7, started_at=running_tx.started_at,
            energy_wh=3_000.0, cost=0.634, price_per_kwh=0.21), connector=1)
        await expect(cost).to_have_text("0.63 EUR", timeout=10_000)
        # A cost of another (earlier) transaction on the connector is not this session's.
        energy.publish(ch.ENERGY_COST, SessionCost(
            transaction_ref="6", transaction_id=6, started_at=now - timedelta(hours=9),
            energy_wh=1_000.0, cost=9.99), connector=1)
        await expect(cost).to_have_attribute("data-priced", "fixed", timeout=10_000)
        await expect(cost).to_have_text("0.60 EUR")
        assert errors == [], errors
        await browser.close()



async def test_the_page_says_which_stations_are_unreachable(
        chromium: str, mosquitto: Broker, peers: Peers, station: str,  # noqa: F811
        tmp_path: Path) -> None:
    """energy/site's unreachable_stations (a station whose bridge to the site broker is down):
    the card says so and marks that station's car; the list empty again: the notice goes. The
    energy manager is played by a bus client as the `energy` user."""
    from voltbus_common.models import SiteState

    site = f"site{station}"
    settings = api_settings(mosquitto, station, tmp_path, energy_site=site, ha_discovery=False)
    energy = Bus(mosquitto.settings("energy"), station=site, service=None)
    peers.gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING),
                          connector=1)

    def state(unreachable: list[str]) -> SiteState:
        return SiteState(grid_power_w=3000.0, grid_current_a=[5.0, 4.0, 4.0], fuse_limit_a=25.0,
                         unreachable_stations=unreachable)

    async with served_api(settings) as api, running(energy), async_playwright() as pw:
        energy.publish(ch.ENERGY_SITE, state([station]))
        password = (tmp_path / "api" / "initial-admin-password").read_text().strip()
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport=DESKTOP)).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await log_in(page, api.url, "admin", password)
        notice = page.locator("#unreachable")
        await expect(notice).to_be_visible(timeout=15_000)
        await expect(notice).to_contain_text(f"No link to {station}: the bridge")
        car = page.locator("#flow .node.car")
        await expect(car).to_have_class(re.compile(r"\bunreachable\b"))
        await expect(car.locator(".sub")).to_have_text("unreachable")
        await page.locator("#energy-site").screenshot(
            path=str(shots(tmp_path) / "site-unreachable.png"))
        energy.publish(ch.ENERGY_SITE, state([]))
        await expect(notice).to_be_hidden(timeout=15_000)
        await expect(car.locator(".sub")).to_have_text("Charging")
        assert errors == [], errors
        await browser.close()
