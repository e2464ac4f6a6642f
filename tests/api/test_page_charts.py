"""The page's charts, costs, phases, pause/resume and off-peak in Chromium, on phone and desktop.

Real parts: the API on uvicorn, Mosquitto (the test plays gateway and hardware on the bus), the
real influxd holding what the recorder would have written (its own line format). Screenshots go
to VOLTBUS_SCREENSHOTS (default: the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.api.conftest import Peers, api_settings, eventually
from tests.api.served import served_api
from tests.api.test_browser import CHROMIUM_ARGS, chromium  # noqa: F401 (fixture)
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common.bus import Received
from voltbus_common.enums import (
    CommandName,
    CommandStatus,
    ConnectorStatus,
    LimitSource,
    StopReason,
)
from voltbus_common.models import (
    ChargingState,
    CommandResult,
    GatewayCommand,
    MeterReading,
    OcppConnectorStatus,
    SessionSummary,
    TransactionState,
)
from voltbus_recorder import points

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("VOLTBUS_SCREENSHOTS") or tmp_path / "shots")
    where.mkdir(parents=True, exist_ok=True)
    return where


async def log_in(page: Page, url: str, user: str, password: str) -> None:
    await page.goto(url + "/")
    await page.fill("#login-user", user)
    await page.fill("#login-password", password)
    await page.click("#login-form button")
    await expect(page.locator("#who")).to_contain_text(user)


def month_sessions(now: datetime) -> list[SessionSummary]:
    """Two sessions earlier this month (or right at its start), one the month before."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    this_month = [first + timedelta(hours=1), max(first + timedelta(hours=5),
                                                    now - timedelta(days=2))]
    last_month = first - timedelta(days=10)
    made = []
    for start, wh, reason in ((last_month, 20_000.0, StopReason.LOCAL),
                              (this_month[0], 7_400.0, StopReason.EV_DISCONNECTED),
                              (this_month[1], 12_345.0, StopReason.REMOTE)):
        made.append(SessionSummary(transaction_id=len(made) + 1, id_tag="04A1B2C3",
                                   started_at=start, stopped_at=start + timedelta(hours=2),
                                   meter_start_wh=1000.0, meter_stop_wh=1000.0 + wh,
                                   energy_wh=wh, stop_reason=reason))
    return made


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_charts_costs_phases_pause_and_offpeak(
        chromium: str, mosquitto: Broker, influxdb: InfluxServer, peers: Peers,  # noqa: F811
        station: str, tmp_path: Path, viewport: dict[str, int]) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    started = now - timedelta(minutes=30)
    gw, hw = peers.gateway, peers.hardware
    db = influxdb.create_database()
    # What the recorder stored: the session's first 25 minutes of power (a ramp, one per 10 s)
    # and the finished sessions.
    ramp = [(started + timedelta(seconds=10 * i), 1000.0 + 40.0 * i) for i in range(150)]
    lines = [points.meter(station, 1, MeterReading(
        energy_wh=50_000.0 + i, power_w=w, current_a=[w / 690] * 3, voltage_v=[230.0] * 3, ts=t))
        for i, (t, w) in enumerate(ramp)]
    lines += [points.session(station, 1, s) for s in month_sessions(now)]
    assert influxdb.write(db, "\n".join(lines)).status_code == 204

    enabled = {"value": True}

    def gateway(msg: Received[GatewayCommand]) -> CommandResult:
        command = msg.payload.command
        if command in (CommandName.ENABLE_CHARGING, CommandName.DISABLE_CHARGING):
            enabled["value"] = command is CommandName.ENABLE_CHARGING
            gw.publish(ch.CHARGING, ChargingState(enabled=enabled["value"], current_limit_a=16.0),
                       connector=1)
        if command is CommandName.OVERRIDE_OFFPEAK:
            gw.publish(ch.CHARGING, ChargingState(enabled=True, current_limit_a=16.0,
                                                  offpeak_override=True), connector=1)
        return CommandResult(request_id=msg.payload.request_id, command=command,
                             status=CommandStatus.ACCEPTED)

    peers.policy = gateway
    gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING), connector=1)
    gw.publish(ch.TRANSACTION, TransactionState(transaction_id=9, id_tag="04A1B2C3",
                                                started_at=started, meter_start_wh=1_230_246.0,
                                                energy_wh=4_321.0), connector=1)  # register - start
    gw.publish(ch.CHARGING, ChargingState(enabled=True, current_limit_a=16.0), connector=1)
    hw.publish(ch.METER, MeterReading(energy_wh=1_234_567.0, power_w=7_360.0,
                                      current_a=[10.7, 10.6, 10.8],
                                      voltage_v=[229.0, 231.0, 230.0]), connector=1)
    settings = api_settings(mosquitto, station, tmp_path, api_price_per_kwh=0.35,
                            influx_url=influxdb.url, influx_database=db)
    where = shots(tmp_path)
    name = "phone" if viewport is PHONE else "desktop"
    async with served_api(settings) as api, async_playwright() as pw:
        password = (tmp_path / "api" / "initial-admin-password").read_text().strip()
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport=viewport, is_mobile=viewport is PHONE)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # A Content-Security-Policy refusal (say, of the chart library's styles) is a console error.
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and
                "401 (Unauthorized)" not in msg.text else None)
        failed: list[str] = []
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400
                else None)
        await log_in(page, api.url, "admin", password)
        card = page.locator(f"#c-{station}-1")

        # Live values: per-phase current and voltage, the meter's register, session cost.
        await expect(card.locator(".currents")).to_have_text("10.7 · 10.6 · 10.8 A")
        await expect(card.locator(".voltages")).to_have_text("229 · 231 · 230 V")
        await expect(card.locator(".register")).to_have_text(
            f"{1234.567:,.3f} kWh".replace(",", await thousands(page)))
        await expect(card.locator(".energy")).to_have_text("4.321 kWh")
        await expect(card.locator(".cost")).to_have_text("1.51 EUR")  # 4.321 kWh x 0.35
        await expect(card.locator(".power")).to_have_text("7.36 kW")

        # The session's power curve: InfluxDB's 25 minutes, then live readings on top.
        chart = card.locator(".power-chart")
        await expect(chart).to_have_attribute("data-source", "influxdb")
        await expect(chart.locator("canvas")).to_have_count(1)
        before = int(await chart.get_attribute("data-points") or 0)
        assert 100 <= before <= 300
        for i in range(3):
            hw.publish(ch.METER, MeterReading(energy_wh=1_234_600.0 + i, power_w=7_000.0 + i,
                                              current_a=[10.0] * 3, voltage_v=[230.0] * 3),
                       connector=1)
            await expect(card.locator(".power")).to_have_text(f"{(7000 + i) / 1000:.2f} kW")
        await expect(chart).to_have_attribute("data-points", str(before + 3))
        # Pointing at the curve shows the time and power there.
        await chart.locator(".u-over").hover()
        await expect(chart.locator(".u-legend .u-series").nth(1).locator(".u-value")
                     ).to_have_text(re.compile(r"^\d+\.\d\d kW$"))
        await expect(chart.locator(".u-legend .u-series").nth(0).locator(".u-value")
                     ).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))

        # This month's energy and cost: the two sessions that started in it (as the report).
        await expect(page.locator("#month-energy")).to_have_text(
            f"{19.745:.1f} kWh".replace(".", await decimal_point(page)))
        await expect(page.locator("#month-cost")).to_have_text(  # 2.59 + 4.32, and the
            "6.91 EUR + 1.52 EUR running" if started.month == now.month  # 4.356 kWh live
            else "6.91 EUR")
        await expect(page.locator("#price")).to_have_text("0.35 EUR/kWh")

        # History: stop reason and cost per session, newest first.
        rows = page.locator("#history tbody tr")
        await expect(rows).to_have_count(3)
        await expect(rows.nth(0).locator("td").nth(5)).to_have_text("4.32")
        await expect(rows.nth(0).locator("td").nth(6)).to_have_text("Remote")
        await expect(rows.nth(1).locator("td").nth(5)).to_have_text("2.59")
        await expect(rows.nth(1).locator("td").nth(6)).to_have_text("EVDisconnected")
        await expect(page.locator("#history thead th").nth(5)).to_have_text("Cost (EUR)")

        # Energy per day (last 30 days) and per month (last 12): bars from the same sessions.
        energy = page.locator("#energy-chart")
        await expect(energy.locator("canvas")).to_have_count(1)
        per_day = json.loads(await energy.get_attribute("data-buckets") or "{}")
        earlier = month_sessions(now)[0].started_at.strftime("%Y-%m-%d")
        assert per_day[earlier] == 20.0
        assert sum(per_day.values()) == pytest.approx(39.745)
        await page.click("#energy-month")
        await expect(page.locator("#energy-month")).to_have_attribute("aria-pressed", "true")
        await eventually(lambda: month_buckets(page, now))
        await page.click("#energy-day")

        # Pause, then resume: the gateway gets disable/enable charging, the card shows it.
        pause = card.locator(".pause")
        await expect(pause).to_have_text("Pause")
        await pause.click()
        await expect(pause).to_have_text("Resume")
        await expect(card.locator(".paused-note")).to_be_visible()
        await page.screenshot(path=str(where / f"{name}-paused.png"), full_page=True)
        await pause.click()
        await expect(pause).to_have_text("Pause")
        await expect(card.locator(".paused-note")).to_be_hidden()
        assert [c.payload.command for c in peers.commands] == [
            CommandName.DISABLE_CHARGING, CommandName.ENABLE_CHARGING]

        # Off-peak: the session waits for the window; "Charge now" overrides it.
        opens = now + timedelta(hours=3)
        gw.publish(ch.CHARGING, ChargingState(enabled=True, current_limit_a=16.0,
                                              offpeak_waiting=True, offpeak_until=opens),
                   connector=1)
        await expect(card.locator(".offpeak")).to_contain_text("waiting for off-peak (starts ")
        await expect(card.locator(".override")).to_be_visible()
        await page.screenshot(path=str(where / f"{name}-offpeak.png"), full_page=True)
        await card.locator(".override").click()
        await expect(card.locator(".offpeak")).to_have_text("off-peak overridden: charging now")
        await expect(card.locator(".override")).to_be_hidden()
        assert peers.commands[-1].payload.command is CommandName.OVERRIDE_OFFPEAK

        # The energy manager is lost: the gateway's fail-safe limit, and why.
        await expect(card.locator(".energy-lost")).to_be_hidden()
        gw.publish(ch.CHARGING, ChargingState(
            enabled=True, current_limit_a=6.0, limit_source=LimitSource.ENERGY_FAIL_SAFE,
            energy_limit_a=6.0, energy_fail_safe=True,
            energy_fail_safe_reason="no energy manager limit for 30 s"), connector=1)
        await expect(card.locator(".energy-lost")).to_have_text(
            "energy manager lost: fail-safe 6 A (no energy manager limit for 30 s)")
        await expect(card.locator(".limit")).to_have_text("6 A (fail-safe)")
        await card.screenshot(path=str(where / f"{name}-energy-lost.png"))
        gw.publish(ch.CHARGING, ChargingState(
            enabled=True, current_limit_a=11.0, limit_source=LimitSource.ENERGY_MANAGER,
            energy_limit_a=11.0), connector=1)
        await expect(card.locator(".energy-lost")).to_be_hidden()
        await expect(card.locator(".limit")).to_have_text("11 A")

        # Fits the screen: nothing wider than the viewport, the charts inside their boxes.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"]
        for box in (chart, energy):
            outer = await box.bounding_box()
            canvas = await box.locator("canvas").bounding_box()
            assert outer is not None
            assert canvas is not None
            assert canvas["x"] + canvas["width"] <= outer["x"] + outer["width"] + 1
        await page.screenshot(path=str(where / f"{name}.png"), full_page=True)
        await page.locator("#history").screenshot(path=str(where / f"{name}-history.png"))
        await card.screenshot(path=str(where / f"{name}-card.png"))
        await energy.screenshot(path=str(where / f"{name}-energy.png"))
        assert errors == []
        assert failed == [f"401 {api.url}/api/v1/auth/me"]  # before logging in, nothing else
        await browser.close()


async def month_buckets(page: Page, now: datetime) -> bool:
    data = await page.locator("#energy-chart").get_attribute("data-buckets")
    buckets = json.loads(data or "{}")
    return buckets.get(now.strftime("%Y-%m")) == pytest.approx(19.745) and len(buckets) == 2


async def decimal_point(page: Page) -> str:
    return str(await page.evaluate("(1.5).toLocaleString().charAt(1)"))


async def thousands(page: Page) -> str:
    return str(await page.evaluate("(1234).toLocaleString().replace(/[0-9]/g, '')"))
