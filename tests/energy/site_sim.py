"""A simulated site around a real EnergyManager: a house load, cars that draw up to the limit the
manager gives them, a grid meter that sees both, and clocks that run as fast as the test likes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from voltbus_common.bus import Bus
from voltbus_common.models import MeterReading, TransactionState
from voltbus_common.settings import BusSettings
from voltbus_energy.fuse import VOLTAGE_V, Site
from voltbus_energy.manager import Config, ConnectorView, EnergyManager
from voltbus_energy.modes import PvTimers
from voltbus_energy.sources.base import GridReading
from voltbus_energy.sources.simulated import SimGrid
from voltbus_energy.tariff.prices import Tariff, price_at


@dataclass
class Car:
    """A car on one connector: draws min(limit, its own maximum) on the connector's phases."""

    view: ConnectorView
    max_a: float = 32.0
    energy_wh: float = 10000.0
    drawn_a: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cost: float = 0.0
    charged: list[tuple[datetime, float]] = field(default_factory=list)  # (when, Wh)


class SiteSim:
    """Step the site: readings in, one decision, the cars follow the limits for dt seconds."""

    def __init__(self, connectors: Sequence[ConnectorView], *, fuse_a: float, start: datetime,
                 tariff: Tariff | None = None, max_import_w: float | None = None,
                 margin_a: float = 0.0) -> None:
        self.t, self.start = 0.0, start
        self.bus = Bus(BusSettings(stations=["site"]), station="site", service="energy",
                       outbox_limit=10_000_000)  # never connected: publishes stay queued
        config = Config(site=Site(fuse_a=fuse_a, max_import_w=max_import_w, margin_a=margin_a),
                        failsafe_a=6.0, meter_timeout_s=10.0, period_s=1.0, timers=PvTimers())
        self.manager = EnergyManager(self.bus, config, list(connectors), SimGrid(["site"]),
                                     clock=lambda: self.t, wall=self.now, tariff=tariff)
        self.cars = {c.key: Car(c) for c in connectors}
        self.house_a: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.limits: dict[str, float] = {}

    def now(self) -> datetime:
        """The simulated wall clock."""
        return self.start + timedelta(seconds=self.t)

    def plug_in(self, key: str) -> None:
        """A transaction starts on that connector."""
        car = self.cars[key]
        self.manager.transaction(car.view.station, car.view.connector, TransactionState(
            transaction_id=1, id_tag="TAG", started_at=self.now(), meter_start_wh=car.energy_wh))

    def grid(self) -> GridReading:
        """What the grid meter measures now."""
        amps = [self.house_a[p] + sum(c.drawn_a[p] for c in self.cars.values())
                for p in range(3)]
        return GridReading(sum(amps) * VOLTAGE_V, (amps[0], amps[1], amps[2]))

    def step(self, dt_s: float, *, meter_ok: bool = True) -> dict[str, float]:
        """One control period: readings (the grid's unless meter_ok is False), a decision, then
        dt_s seconds of charging."""
        for car in self.cars.values():
            self.manager.meter_reading(car.view.station, car.view.connector, MeterReading(
                energy_wh=car.energy_wh, power_w=sum(car.drawn_a) * VOLTAGE_V,
                current_a=list(car.drawn_a), voltage_v=[VOLTAGE_V] * 3))
        if meter_ok:
            self.manager.on_grid(self.grid())
        self.limits = self.manager.step()
        tariff, now = self.manager.tariff, self.now()
        here = price_at(tariff.slots(now, now + timedelta(seconds=1)), now)
        for key, car in self.cars.items():
            amps = min(self.limits.get(key, 0.0), car.max_a)
            car.drawn_a = (amps if 0 in car.view.phases else 0.0,
                           amps if 1 in car.view.phases else 0.0,
                           amps if 2 in car.view.phases else 0.0)
            wh = sum(car.drawn_a) * VOLTAGE_V * dt_s / 3600
            if wh > 0:
                car.energy_wh += wh
                car.charged.append((now, wh))
                car.cost += wh / 1000 * (here.price_per_kwh or 0.0 if here else 0.0)
        self.t += dt_s
        return self.limits
