"""`voltbus up`'s simulated house: the energy manager with a grid meter that sees a house.

A newcomer should see PV charging and the fuse guard at work without any hardware. This runs
the real energy manager (`voltbus_energy`, as `python -m voltbus_common.cli.house`) with its
grid meter replaced by `HouseGrid`: a house load that varies over the day (a base load with
some noise, a heat pump cycling on all phases, a kettle, a washing machine and an oven on one
phase each: the oven at noon and in the evening pushes L1 near the fuse, so the guard must
lower the cars), a PV curve from sunrise to sunset with passing clouds, and the cars' own
meters (as the energy service's `sim` grid does), and a home battery (`HouseBattery`) that
keeps the grid near zero: it charges from what the house would export and discharges into what
it would import, and its state of charge follows its power. Grid = house + cars - PV - battery,
per phase (PV and battery through one three-phase inverter, split evenly).

The simulated clock can run faster (`VOLTBUS_HOUSE_TIME_SCALE`, `voltbus up --time-scale`):
at 60 a day takes 24 minutes. It starts at `VOLTBUS_HOUSE_START` (HH:MM, default: the real
time of day). The battery: `VOLTBUS_HOUSE_BATTERY_WH` (10000; 0: none),
`VOLTBUS_HOUSE_BATTERY_W` (3000, its most in either direction), `VOLTBUS_HOUSE_BATTERY_SOC`
(50, % at the start). A connector with no mode retained yet starts in `minpv` (6 A plus the
surplus), so charging follows the sun from the first session.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.models import MeterReading

if TYPE_CHECKING:  # voltbus_energy is imported when the house runs, not with voltbus_common
    from voltbus_energy.sources.battery import BatteryReading

VOLTAGE_V = 230.0
SUNRISE_H, SUNSET_H = 7.0, 19.0


def _noise(key: float) -> float:
    """A smooth, repeatable value in [-1, 1] (no random state: the same time, the same load)."""
    return (math.sin(key * 1.7) + math.sin(key * 0.61 + 1.3) + math.sin(key * 0.23 + 4.1)) / 3


@dataclass(frozen=True)
class HouseModel:
    """The house and its PV over a day (pure: a function of the simulated time of day)."""

    pv_peak_w: float = 6000.0
    base_w: float = 350.0

    def pv_w(self, hour: float) -> float:
        """PV output at this hour of the day: a sine from sunrise to sunset, with clouds."""
        if not SUNRISE_H < hour < SUNSET_H:
            return 0.0
        sun = math.sin(math.pi * (hour - SUNRISE_H) / (SUNSET_H - SUNRISE_H))
        clouds = 0.8 + 0.2 * _noise(hour * 7.0)  # a passing cloud takes a fifth
        if 14.0 <= hour < 14.5:
            clouds *= 0.3  # one thick cloud after lunch: PV mode must not toggle on it
        return round(self.pv_peak_w * sun * clouds, 1)

    def house_a(self, hour: float) -> tuple[float, float, float]:
        """The house's own load per phase (A) at this hour."""
        l1, l2, l3 = (self.base_w * (1.0 + 0.3 * _noise(hour * 11.0 + 2.0 * p)) / 3 / VOLTAGE_V
                      for p in range(3))
        minute = (hour * 60.0) % 60.0
        if minute < 20:  # a heat pump: 20 minutes of each hour, 1.5 kW on three phases
            l1, l2, l3 = l1 + 2.2, l2 + 2.2, l3 + 2.2
        if 7.0 <= hour < 7.1 or 16.0 <= hour < 16.1:  # kettle, 2 kW
            l2 += 8.7
        if 10.0 <= hour < 11.5:  # washing machine, about 2 kW while heating
            l3 += 8.7 if minute < 30 else 1.0
        if 12.0 <= hour < 12.75 or 18.0 <= hour < 19.0:  # oven and hob: 4.6 kW on L1
            l1 += 20.0
        return (round(l1, 2), round(l2, 2), round(l3, 2))


@dataclass
class SimClock:
    """The simulated time: `start` at the first reading, running `scale` times faster."""

    start: datetime
    scale: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    _t0: float = field(default=-1.0)

    def now(self) -> datetime:
        if self._t0 < 0:
            self._t0 = self.monotonic()
        return self.start + timedelta(seconds=(self.monotonic() - self._t0) * self.scale)

    def hour(self) -> float:
        t = self.now()
        return t.hour + t.minute / 60 + t.second / 3600


@dataclass
class HouseBattery:
    """A home battery behind a hybrid inverter: it answers the house's net power (import
    without the battery) up to `max_w` in either direction, discharging down to `min_soc_pct`
    and charging up to 100 %; between two steps its state of charge follows the power it had,
    over the simulated time. A BatterySource for the energy manager (voltbus_energy.sources.
    battery: power > 0 discharging), so `energy/site` carries it and the surplus rule sees it."""

    capacity_wh: float = 10000.0
    max_w: float = 3000.0
    soc_pct: float = 50.0
    min_soc_pct: float = 10.0
    power_w: float = 0.0
    status: str | None = None
    _at: datetime | None = None

    def attach(self, bus: Bus) -> None:
        """Nothing to subscribe: HouseGrid steps it with each grid reading."""

    def reading(self) -> BatteryReading:
        """The battery's power and state of charge now (a BatteryReading)."""
        from voltbus_energy.sources.battery import BatteryReading

        return BatteryReading(self.power_w, round(self.soc_pct, 2))

    def step(self, now: datetime, net_w: float) -> float:
        """Charge or discharge since the last step at the power it had, then take up this net
        power (W, > 0 the house would import): the battery's new power (> 0 discharging)."""
        if self._at is not None:
            hours = max(0.0, (now - self._at).total_seconds() / 3600)
            self.soc_pct -= self.power_w * hours / self.capacity_wh * 100
            self.soc_pct = min(100.0, max(0.0, self.soc_pct))
        self._at = now
        if net_w > 0:
            power = min(net_w, self.max_w) if self.soc_pct > self.min_soc_pct else 0.0
        else:
            power = max(net_w, -self.max_w) if self.soc_pct < 100.0 else 0.0
        self.power_w = round(power, 1)
        return self.power_w


class HouseGrid:
    """A GridSource (voltbus_energy.sources.base): house + cars - PV - battery, a reading
    each period."""

    def __init__(self, stations: list[str], model: HouseModel, clock: SimClock, *,
                 period_s: float = 1.0, battery: HouseBattery | None = None) -> None:
        self.stations, self.model, self.clock, self.period_s = stations, model, clock, period_s
        self.battery = battery
        self.pv_power_w: float | None = None
        self.house: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._cars: dict[tuple[str, int], tuple[float, float, float]] = {}
        self._sink: Callable[..., None] | None = None

    def attach(self, bus: Bus, sink: Callable[..., None]) -> None:
        """Follow the connector meters; `run()` delivers the readings."""
        self._sink = sink

        async def meter(msg: Received[MeterReading]) -> None:
            if msg.payload is not None:
                amps = [*msg.payload.current_a, 0.0, 0.0]
                self._cars[(msg.station, msg.connector)] = (amps[0], amps[1], amps[2])

        for station in self.stations:
            bus.on(ch.METER, meter, station=station)

    def reading(self) -> tuple[float, tuple[float, float, float]]:
        """Grid power (W, > 0 import) and current per phase now."""
        hour = self.clock.hour()
        self.pv_power_w = pv = self.model.pv_w(hour)
        self.house = self.model.house_a(hour)
        amps = [self.house[p] + sum(c[p] for c in self._cars.values()) - pv / 3 / VOLTAGE_V
                for p in range(3)]
        if self.battery is not None:
            battery_w = self.battery.step(self.clock.now(), sum(amps) * VOLTAGE_V)
            amps = [a - battery_w / 3 / VOLTAGE_V for a in amps]
        current = (round(amps[0], 2), round(amps[1], 2), round(amps[2], 2))
        return round(sum(current) * VOLTAGE_V, 1), current

    async def run(self) -> None:
        from voltbus_energy.sources.base import GridReading

        while True:
            if self._sink is not None:
                power, current = self.reading()
                self._sink(GridReading(power, current))
            await asyncio.sleep(self.period_s)


def battery_from_env() -> HouseBattery | None:
    capacity = float(os.environ.get("VOLTBUS_HOUSE_BATTERY_WH", "10000") or 0)
    if capacity <= 0:
        return None
    return HouseBattery(capacity_wh=capacity,
                        max_w=float(os.environ.get("VOLTBUS_HOUSE_BATTERY_W", "3000") or 3000),
                        soc_pct=float(os.environ.get("VOLTBUS_HOUSE_BATTERY_SOC", "50") or 50))


def clock_from_env() -> SimClock:
    scale = float(os.environ.get("VOLTBUS_HOUSE_TIME_SCALE", "1") or 1)
    start = datetime.now().astimezone()
    text = os.environ.get("VOLTBUS_HOUSE_START", "").strip()
    if text:
        hour, minute = (int(x) for x in text.split(":"))
        start = start.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return SimClock(start, scale)


async def main() -> None:
    """The energy manager with the simulated house as its grid meter and PV."""
    from voltbus_common.enums import ChargeMode
    from voltbus_common.models import ChargeModeSetting
    from voltbus_common.settings import load_settings
    from voltbus_energy.__main__ import build_manager, build_tariff
    from voltbus_energy.settings import EnergySettings

    settings = load_settings(EnergySettings)
    bus = Bus(settings, station=settings.energy_site, service="energy")
    peak = float(os.environ.get("VOLTBUS_HOUSE_PV_PEAK_W", "6000") or 6000)
    battery = battery_from_env()
    grid = HouseGrid(settings.stations, HouseModel(pv_peak_w=peak), clock_from_env(),
                     battery=battery)
    tariff, feeds = build_tariff(settings)
    manager = build_manager(settings, bus, tariff, grid, battery=battery)
    manager.pv_power = lambda: grid.pv_power_w
    for view in manager.connectors.values():
        view.setting = ChargeModeSetting(mode=ChargeMode.MIN_PV)  # until a retained mode says
    async with bus, asyncio.TaskGroup() as group:
        group.create_task(manager.run())
        group.create_task(grid.run())
        for feed in feeds:
            group.create_task(feed.run())


def cli() -> int:
    """Entry point: the simulated house's energy manager until stopped; the exit code."""
    from voltbus_common.runtime import run

    return run(main, service="energy", log_level=os.environ.get("VOLTBUS_LOG_LEVEL", "INFO"))


if __name__ == "__main__":
    raise SystemExit(cli())
