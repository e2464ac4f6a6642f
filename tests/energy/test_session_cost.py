"""A session's cost at the live tariff: the energy manager prices each interval between two meter
registers at the price of its time. Pure checks of the interval split, then the whole chain as
processes: dev central system, simulated hardware, the real gateway and the energy manager with a
price feed whose price flips every second, so a session of a few seconds crosses several prices; the
final cost on energy/{c}/cost is checked against the meter readings and the session summary seen
on the bus, priced independently here."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.energy.test_with_gateway import start_energy, start_session
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from voltbus_common import channels as ch
from voltbus_common.bus import Received
from voltbus_common.enums import CommandName, ConnectorStatus
from voltbus_common.models import GatewayCommand, MeterReading, SessionCost
from voltbus_energy.cost import SessionMeter, interval_cost
from voltbus_energy.tariff.prices import PriceSlot

T = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
CHEAP, DEAR, SLOT_S = 0.10, 0.40, 1


def test_an_interval_across_a_price_change_is_split_by_time() -> None:
    slots = [PriceSlot(T, T + 10 * S, CHEAP), PriceSlot(T + 10 * S, T + 20 * S, DEAR),
             PriceSlot(T + 20 * S, T + 30 * S, None)]
    # 1 kWh over 5 s cheap and 5 s dear
    assert interval_cost(slots, T + 5 * S, T + 15 * S, 1000.0) == pytest.approx((0.25, 0.0))
    # 1 kWh over 5 s dear and 5 s without a price
    assert interval_cost(slots, T + 15 * S, T + 25 * S, 1000.0) == pytest.approx((0.2, 500.0))
    assert interval_cost(slots, T + 3 * S, T + 3 * S, 100.0) == pytest.approx((0.01, 0.0))
    meter = SessionMeter("1", 1, T, 5000.0, 5000.0, T)
    meter.add(slots, 5500.0, T + 10 * S)
    meter.add(slots, 5400.0, T + 5 * S)  # older: ignored
    meter.add(slots, 6500.0, T + 20 * S)
    assert (meter.energy_wh, meter.cost, meter.unpriced_wh) == pytest.approx((1500.0, 0.45, 0.0))
    meter.add(slots, 100.0, T + 21 * S)  # a new meter (register back): no negative cost
    meter.add(slots, 200.0, T + 25 * S)  # 100 Wh without a price
    assert (meter.energy_wh, meter.cost, meter.unpriced_wh) == pytest.approx((1600.0, 0.45, 100.0))


def _price(t: datetime) -> float:
    return CHEAP if int(t.timestamp()) // SLOT_S % 2 == 0 else DEAR


def _expected(points: list[tuple[datetime, float]]) -> float:
    """Each interval's energy spread evenly over its time, sampled finely (not the code's split)."""
    total = 0.0
    for (a, wa), (b, wb) in itertools.pairwise(points):
        steps, span = 200, (b - a).total_seconds()
        for k in range(steps):
            t = a + timedelta(seconds=span * (k + 0.5) / steps)
            total += (wb - wa) / steps / 1000 * _price(t)
    return total


async def test_the_session_cost_follows_the_live_price_through_the_real_gateway(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path) -> None:
    site = f"S{station}"
    now = datetime.now(UTC).replace(microsecond=0)
    first = int(now.timestamp()) // SLOT_S * SLOT_S - 3600
    rows = ["start,end,price_per_kwh"] + [
        f"{t},{t + SLOT_S},{CHEAP if t // SLOT_S % 2 == 0 else DEAR}"
        for t in range(first, first + 7200, SLOT_S)]
    prices = tmp_path / "prices.csv"
    prices.write_text("\n".join(rows) + "\n")
    await services.start_charge_point(mosquitto, station, tmp_path / "data",
                                      gateway_env={"VOLTBUS_MAX_CURRENT_A": "16"})
    operator, watch = await start_energy(services, mosquitto, station, site, {
        "VOLTBUS_DATA_DIR": str(tmp_path / "energy"), "VOLTBUS_ENERGY_FUSE_A": "32",
        "VOLTBUS_ENERGY_TARIFF": "feed", "VOLTBUS_ENERGY_TARIFF_SOURCE": str(prices),
        "VOLTBUS_ENERGY_TARIFF_FORMAT": "generic"})
    watch.follow(operator, ch.OCPP_STATUS, "status", connector=1)
    watch.follow(operator, ch.SESSION, "session", connector=1)
    watch.follow(operator, ch.ENERGY_COST, "cost", connector=1)
    readings: list[MeterReading] = []

    async def keep(msg: Received[MeterReading]) -> None:
        if msg.payload is not None and not msg.retain:
            readings.append(msg.payload)

    operator.on(ch.METER, keep, connector=1)
    task = asyncio.create_task(operator.run())
    try:
        await start_session(operator, watch)
        await watch.until(lambda s: s["status"].status is ConnectorStatus.CHARGING, "Charging")
        await watch.until(lambda s: s.get("cost") is not None and not s["cost"].final,
                          "the running cost")
        await asyncio.sleep(3.5)  # three price flips and more
        operator.publish(ch.COMMAND, GatewayCommand(command=CommandName.STOP), connector=1)
        await watch.until(lambda s: s.get("cost") is not None and s["cost"].final,
                          "the final cost")
        await watch.until(lambda s: s.get("session") is not None, "the session summary")
    except AssertionError:
        raise AssertionError(services.logs()) from None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    summary, cost = watch.latest["session"], watch.latest["cost"]
    assert isinstance(cost, SessionCost)
    assert (cost.started_at, cost.stopped_at) == (summary.started_at, summary.stopped_at)
    assert cost.transaction_id == summary.transaction_id
    assert cost.energy_wh == pytest.approx(summary.energy_wh, abs=0.01)
    assert summary.energy_wh > 5.0, summary  # it charged (11 kW for seconds: ~20 Wh)
    # The registers the manager saw: meterStart at the start, the readings, meterStop at the end.
    inside = [(r.ts, r.energy_wh) for r in readings
              if summary.started_at < r.ts < summary.stopped_at]
    points = [(summary.started_at, summary.meter_start_wh), *inside,
              (summary.stopped_at, summary.meter_stop_wh)]
    expected = _expected(points)
    assert cost.cost == pytest.approx(expected, rel=0.02, abs=2e-5), (points, cost)
    kwh = summary.energy_wh / 1000
    # Neither the cheap nor the dear price alone: the live one.
    assert kwh * CHEAP * 1.1 < cost.cost < kwh * DEAR * 0.9, (cost, kwh)
    assert cost.unpriced_wh == 0.0
