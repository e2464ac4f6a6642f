"""The energy manager: follows the bus, runs the modes and the fuse guard every period, and
publishes one limit per connector plus the site state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import ChargeMode
from voltbus_common.models import (
    ChargeModeSetting,
    ChargeModeState,
    EnergyLimitCommand,
    MeterReading,
    SiteState,
    TransactionState,
)
from voltbus_energy.fuse import VOLTAGE_V, Demand, Grid, Site, allocate, house_load
from voltbus_energy.modes import PvSwitch, PvTimers, mode_cap
from voltbus_energy.sources.base import GridReading, GridSource
from voltbus_energy.sources.simulated import phases_of

log = logging.getLogger(__name__)


@dataclass
class ConnectorView:
    """What the manager knows of one connector."""

    station: str
    connector: int
    phases: tuple[int, ...]
    max_a: float
    setting: ChargeModeSetting = field(
        default_factory=lambda: ChargeModeSetting(mode=ChargeMode.NOW))
    drawn_a: tuple[float, float, float] = (0.0, 0.0, 0.0)
    charging: bool = False
    pv: PvSwitch = field(default_factory=PvSwitch)
    limit_a: float | None = None
    status: str | None = None
    restored: bool = False

    @property
    def key(self) -> str:
        """Unique on the site."""
        return f"{self.station}/{self.connector}"


@dataclass(frozen=True)
class Config:
    """What the manager needs from the settings."""

    site: Site
    failsafe_a: float
    meter_timeout_s: float
    period_s: float
    timers: PvTimers


class EnergyManager:
    """One per site; talks only to the bus."""

    def __init__(self, bus: Bus, config: Config, connectors: list[ConnectorView],
                 grid: GridSource, *, clock: Callable[[], float] = time.monotonic,
                 pv_power: Callable[[], float | None] = lambda: None) -> None:
        self.bus, self.config, self.grid_source, self.clock = bus, config, grid, clock
        self.connectors = {(c.station, c.connector): c for c in connectors}
        self.pv_power = pv_power
        self.grid: GridReading | None = None
        self.grid_at = float("-inf")
        self.fail_safe = False
        self._wake = asyncio.Event()

    def attach(self) -> None:
        """Subscribe to everything the decisions need."""
        self.grid_source.attach(self.bus, self.on_grid)
        for station in {c.station for c in self.connectors.values()}:
            self.bus.on(ch.METER, self._meter, station=station)
            self.bus.on(ch.TRANSACTION, self._transaction, station=station)
            self.bus.on(ch.ENERGY_MODE_SET, self._mode_set, station=station)
            self.bus.on(ch.ENERGY_MODE, self._mode_restore, station=station)

    def on_grid(self, reading: GridReading) -> None:
        """A new grid reading: decide at once (an overload must not wait a period)."""
        self.grid, self.grid_at = reading, self.clock()
        self._wake.set()

    def _find(self, msg: Received[ChargeModeSetting]) -> ConnectorView | None:
        view = self.connectors.get((msg.station, msg.connector))
        if view is None:
            self.bus.reject(msg.topic, f"connector {msg.connector} is not managed here")
        return view

    async def _meter(self, msg: Received[MeterReading]) -> None:
        view = self.connectors.get((msg.station, msg.connector))
        if view is not None and msg.payload is not None:
            view.drawn_a = phases_of(msg.payload)

    async def _transaction(self, msg: Received[TransactionState]) -> None:
        view = self.connectors.get((msg.station, msg.connector))
        if view is not None:
            view.charging = msg.payload is not None
            self._wake.set()

    async def _mode_set(self, msg: Received[ChargeModeSetting]) -> None:
        view = self._find(msg)
        if view is None or msg.payload is None:
            return
        if msg.payload.mode is ChargeMode.PLAN and (msg.payload.plan_energy_wh is None
                                                    or msg.payload.plan_departure is None):
            self.bus.reject(msg.topic, "plan mode needs plan_energy_wh and plan_departure")
            return
        view.setting, view.restored = msg.payload, True
        log.info("connector %s: mode %s", view.key, view.setting.mode)
        self._publish_mode(view)
        self._wake.set()

    async def _mode_restore(self, msg: Received[ChargeModeState]) -> None:
        """The retained mode from before a restart, once."""
        view = self.connectors.get((msg.station, msg.connector))
        if view is not None and msg.payload is not None and not view.restored:
            view.restored = True
            view.setting = ChargeModeSetting.model_validate(msg.payload.model_dump())

    # --- deciding ------------------------------------------------------------------------------

    def step(self) -> dict[str, float]:
        """One decision: limits per connector (published) and the site state (published)."""
        now = self.clock()
        cfg = self.config
        silent = self.grid is None or now - self.grid_at > cfg.meter_timeout_s
        if silent != self.fail_safe:
            self.fail_safe = silent
            if silent:
                log.warning("grid meter silent for %.0f s: fail-safe limit %.1f A",
                            cfg.meter_timeout_s, cfg.failsafe_a)
            else:
                log.info("grid meter back: fuse guard resumes")
        charge_w = sum(sum(c.drawn_a) * VOLTAGE_V for c in self.connectors.values())
        grid = self.grid
        surplus_w = 0.0 if silent or grid is None else max(0.0, charge_w - grid.power_w)
        pv_views = [c for c in self.connectors.values() if c.charging
                    and c.setting.mode in (ChargeMode.PV, ChargeMode.MIN_PV)]
        demands = []
        for view in self.connectors.values():
            own_w = sum(view.drawn_a) * VOLTAGE_V if view in pv_views else 0.0
            share_w = (surplus_w - sum(sum(c.drawn_a) * VOLTAGE_V for c in pv_views)
                       ) / max(1, len(pv_views)) + own_w
            cap = mode_cap(view.setting.mode, max_a=view.max_a, phases=len(view.phases),
                           surplus_w=share_w, pv=view.pv, now_s=now, timers=cfg.timers)
            view.status = f"{view.setting.mode.value}: up to {cap:g} A"
            if view.charging:
                demands.append(Demand(view.key, view.phases, cap, view.setting.priority))
        if silent or grid is None:
            limits = allocate(Site(fuse_a=cfg.failsafe_a), Grid((0.0, 0.0, 0.0), 0.0), demands)
        else:
            drawn = {c.key: c.drawn_a for c in self.connectors.values()}
            house = house_load(Grid(grid.current_a, grid.power_w), drawn)
            limits = allocate(cfg.site, house, demands)
        for view in self.connectors.values():
            amps = limits.get(view.key, 0.0)  # not charging: 0 until its session is seen
            reason = "fail-safe" if silent else view.status
            self.bus.publish(ch.ENERGY_LIMIT, EnergyLimitCommand(amps=amps, reason=reason),
                             station=view.station, connector=view.connector)
            if amps != view.limit_a:
                view.limit_a = amps
                self._publish_mode(view)
        self.bus.publish(ch.ENERGY_SITE, SiteState(
            grid_power_w=None if silent or grid is None else grid.power_w,
            grid_current_a=None if silent or grid is None else list(grid.current_a),
            pv_power_w=self.pv_power(), charge_power_w=charge_w, surplus_w=surplus_w,
            fuse_limit_a=cfg.site.fuse_a, max_import_w=cfg.site.max_import_w,
            fail_safe=silent))
        return limits

    def _publish_mode(self, view: ConnectorView) -> None:
        self.bus.publish(ch.ENERGY_MODE, ChargeModeState(
            **view.setting.model_dump(), limit_a=view.limit_a, status=view.status),
            station=view.station, connector=view.connector)

    async def run(self) -> None:
        """Decide every period, and at once on a new grid reading or session."""
        self.attach()
        await self.bus.wait_connected()
        while True:
            self.step()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.period_s)
