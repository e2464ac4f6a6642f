"""The energy manager: follows the bus, runs the modes and the fuse guard every period, and
publishes one limit per connector plus the site state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import BridgeState, ChargeMode, ServiceState
from voltbus_common.models import (
    ChargeModeSetting,
    ChargeModeState,
    ChargingState,
    EnergyLimitCommand,
    MeterReading,
    OcppConnectorStatus,
    PhaseCommand,
    PhaseState,
    PlanSlot,
    SessionCost,
    SessionSummary,
    SiteState,
    TransactionState,
)
from voltbus_energy.cost import SessionMeter
from voltbus_energy.fuse import VOLTAGE_V, Demand, Grid, Site, allocate, house_load
from voltbus_energy.modes import PhaseChooser, PhaseTimers, PvSwitch, PvTimers, mode_cap
from voltbus_energy.plan import Plan, make_plan
from voltbus_energy.sources.base import GridReading, GridSource
from voltbus_energy.sources.battery import BatteryReading, BatterySource
from voltbus_energy.sources.simulated import phases_of
from voltbus_energy.tariff.prices import FixedTariff, Tariff, price_at

log = logging.getLogger(__name__)
_SECOND = timedelta(seconds=1)
STOPPED_A = 0.5  # below this on every phase the car has stopped drawing (the hardware's rule)


@dataclass
class PhaseSequence:
    """A 1p/3p switch in progress: stopping (paused at 0 A, waiting for the current to stop),
    pausing (the IEC 61851 pause), switching (phases/set sent, waiting for the confirmation)."""

    target: int
    step: str
    since: float  # when this step began (monotonic s)
    request_id: str = ""
    was_paused: bool = False  # the limit was 0 already (no new 0 to send)


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
    energy_wh: float | None = None  # the connector meter's register
    plan_start_wh: float | None = None  # the register when the plan began
    plan: Plan | None = None
    published: tuple[object, ...] = ()  # what the last mode state said (publish on change)
    sent_at: float = float("-inf")  # when its limit was last sent (monotonic s)
    resend: bool = False  # its gateway came (back) online: send the limit now
    gateway_limit_a: float | None = None  # the limit its gateway says is in force (charging)
    session: SessionMeter | None = None  # the running transaction's cost at the tariff
    cost_restore: SessionCost | None = None  # the retained cost from before a restart
    cost_sent_at: float = float("-inf")  # when its cost was last published (monotonic s)
    meter_at: float = float("-inf")  # when its last meter reading came (monotonic s)
    switchable: bool = False  # its hardware has a phase switch (hw/{c}/phases)
    hw_phases: int | None = None  # the phases its hardware confirms
    chooser: PhaseChooser = field(default_factory=PhaseChooser)
    phase_seq: PhaseSequence | None = None
    phase_switches: list[tuple[float, int]] = field(default_factory=list)  # (when, phases)

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
    resend_s: float = 10.0  # an unchanged limit is sent again this often
    phase_timers: PhaseTimers = field(default_factory=PhaseTimers)
    phase_switching: bool = True  # switch 1p/3p where the hardware has a phase switch
    # > 0: a raise waits until every cut sent before it is in force at its gateway (its
    # ocpp/{c}/charging says so), at most this long: across a bridge a raise to a station on
    # the site broker would otherwise land before a cut to a bridged one
    cut_confirm_s: float = 0.0
    # a station whose bridge to the site broker is down keeps, per connector, its last limit or
    # this (its gateway's VOLTBUS_ENERGY_LIMIT_FAILSAFE_A), whichever is higher, in the fuse share
    unreachable_reserve_a: float = 6.0


class EnergyManager:
    """One per site; talks only to the bus."""

    def __init__(self, bus: Bus, config: Config, connectors: list[ConnectorView],
                 grid: GridSource, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC),
                 tariff: Tariff | None = None,
                 pv_power: Callable[[], float | None] = lambda: None,
                 adopt: Callable[[str, int], ConnectorView | None] | None = None,
                 all_stations: bool = False,
                 battery: BatterySource | None = None, battery_first: bool = False,
                 battery_first_below_soc: float = 100.0) -> None:
        self.bus, self.config, self.grid_source, self.clock = bus, config, grid, clock
        # a connector seen on the bus (its retained status, a transaction, a meter) that is
        # not configured: adopt(station, connector) makes its view (None: leave it alone); with
        # all_stations, every station under the root is followed (a site broker that Pis
        # bridge to), else the configured ones
        self.adopt, self.all_stations = adopt, all_stations
        self.wall = wall
        self.tariff: Tariff = tariff or FixedTariff(0.30)
        self.connectors = {(c.station, c.connector): c for c in connectors}
        self.pv_power = pv_power
        self.battery = battery
        self.battery_first, self.battery_first_below_soc = battery_first, battery_first_below_soc
        self.grid: GridReading | None = None
        # the cars' currents when that grid reading came: a stale grid reading minus fresh car
        # currents would understate the house load
        self.grid_drawn: dict[str, tuple[float, float, float]] = {}
        self.grid_at = float("-inf")
        self.fail_safe = False
        self._site_fail_safe: bool | None = None
        self._wake = asyncio.Event()
        self._cuts: dict[str, tuple[ConnectorView, float, float]] = {}  # key: (view, A, sent)
        # the bridges' link states (their station level: "P1" or "P1,P2"), from the site
        # broker's {root}/{stations}/bridge/state; a station of a bridge that is down is
        # unreachable: its gateway is in fail-safe and hears nothing from here
        self.bridges: dict[str, BridgeState] = {}
        self._site_unreachable: list[str] | None = None

    def attach(self) -> None:
        """Subscribe to everything the decisions need."""
        self.grid_source.attach(self.bus, self.on_grid)
        if self.battery is not None:
            self.battery.attach(self.bus)
        self.bus.on(ch.BRIDGE_STATE, self._bridge_state, station="+")
        stations = {"+"} if self.all_stations else {c.station for c in self.connectors.values()}
        for station in sorted(stations):
            if self.adopt is not None:
                self.bus.on(ch.OCPP_STATUS, self._status, station=station)
            self.bus.on(ch.METER, self._meter, station=station)
            self.bus.on(ch.TRANSACTION, self._transaction, station=station)
            self.bus.on(ch.ENERGY_MODE_SET, self._mode_set, station=station)
            self.bus.on(ch.ENERGY_MODE, self._mode_restore, station=station)
            self.bus.on(ch.ENERGY_COST, self._cost_restore, station=station)
            self.bus.on(ch.SESSION, self._session, station=station)
            self.bus.on(ch.PHASES, self._phases, station=station)
            self.bus.on(ch.SERVICE_STATUS, self._gateway_status, station=station,
                        service="gateway")
            if self.config.cut_confirm_s > 0:
                self.bus.on(ch.CHARGING, self._charging, station=station)

    async def _charging(self, msg: Received[ChargingState]) -> None:
        """The limit in force at the gateway: what confirms a cut (and frees held raises)."""
        view = self.connectors.get((msg.station, msg.connector))
        if view is not None and msg.payload is not None:
            view.gateway_limit_a = msg.payload.current_limit_a
            if self._cuts:
                self._wake.set()

    def _cuts_pending(self, now: float) -> bool:
        """Whether a cut is not yet in force at its gateway (and not older than the wait)."""
        def done(view: ConnectorView, amps: float, sent: float) -> bool:
            in_force = view.gateway_limit_a
            return (not view.charging or now - sent >= self.config.cut_confirm_s
                    or (in_force is not None and in_force <= amps + 0.05))
        self._cuts = {k: c for k, c in self._cuts.items() if not done(*c)}
        return bool(self._cuts)

    async def _bridge_state(self, msg: Received[BridgeState]) -> None:
        if msg.payload is not None:
            self.bridge_link(msg.station, msg.payload)

    def bridge_link(self, stations: str, state: BridgeState) -> None:
        """A bridge's link (stations: its station level, comma-separated) up or down. Back up:
        its stations' limits are sent at once (their gateways are in fail-safe until then)."""
        before = self.unreachable()
        self.bridges[stations] = state
        after = self.unreachable()
        if after == before:
            return
        gone, back = sorted(set(after) - set(before)), sorted(set(before) - set(after))
        if gone:
            log.warning("bridge of %s down: unreachable, their last limits (at least %.1f A "
                        "each) stay reserved", ", ".join(gone), self.config.unreachable_reserve_a)
        if back:
            log.info("bridge of %s back: their limits are sent again", ", ".join(back))
            for view in self.connectors.values():
                if view.station in back:
                    view.resend = True
        self._wake.set()

    def unreachable(self) -> list[str]:
        """The stations this manager follows whose bridge is down, sorted."""
        configured = None if self.all_stations else {c.station for c in self.connectors.values()}
        return sorted({s for level, state in self.bridges.items() if state is BridgeState.DOWN
                       for s in level.split(",") if configured is None or s in configured})

    def reserved_a(self, view: ConnectorView) -> float:
        """What an unreachable connector may draw: its last limit, or the fail-safe its gateway
        falls to (after a restart the gateway knows no last limit), whichever is higher."""
        return max(view.limit_a or 0.0, self.config.unreachable_reserve_a)

    async def _gateway_status(self, msg: Received[ServiceState]) -> None:
        """A (re)started gateway knows no limit: send every limit of its station at once."""
        if msg.payload is ServiceState.ONLINE:
            for view in self.connectors.values():
                if view.station == msg.station:
                    view.resend = True
            self._wake.set()

    async def _status(self, msg: Received[OcppConnectorStatus]) -> None:
        self.seen(msg.station, msg.connector)

    def seen(self, station: str, connector: int) -> ConnectorView | None:
        """The view of a connector on the bus, adopted when it is new (connector 0 is none)."""
        view = self.connectors.get((station, connector))
        if view is None and connector >= 1 and self.adopt is not None:
            view = self.adopt(station, connector)
            if view is not None:
                self.connectors[(station, connector)] = view
                log.info("connector %s found on the bus: managed (%s A max, %d phases)",
                         view.key, f"{view.max_a:g}", len(view.phases))
                self._wake.set()
        return view

    def on_grid(self, reading: GridReading) -> None:
        """A new grid reading: decide at once (an overload must not wait a period)."""
        self.grid, self.grid_at = reading, self.clock()
        self.grid_drawn = {c.key: c.drawn_a for c in self.connectors.values()}
        self._wake.set()

    def _find(self, msg: Received[ChargeModeSetting]) -> ConnectorView | None:
        view = self.connectors.get((msg.station, msg.connector))
        if view is None:
            self.bus.reject(msg.topic, f"connector {msg.connector} is not managed here")
        return view

    def meter_reading(self, station: str, connector: int, reading: MeterReading) -> None:
        """A connector meter's reading (what it draws per phase, its energy register)."""
        view = self.seen(station, connector)
        if view is not None:
            view.drawn_a = phases_of(reading)
            view.energy_wh = reading.energy_wh
            view.meter_at = self.clock()
            if view.session is not None:
                meter = view.session
                meter.add(self.tariff.slots(meter.last_ts, max(reading.ts, meter.last_ts)
                                            + _SECOND), reading.energy_wh, reading.ts)
            if view.setting.mode is ChargeMode.PLAN and view.plan_start_wh is None:
                view.plan_start_wh = view.energy_wh

    def transaction(self, station: str, connector: int, state: TransactionState | None) -> None:
        """A transaction began (state) or ended (None)."""
        view = self.seen(station, connector)
        if view is not None:
            view.charging = state is not None
            if state is not None:
                self._start_cost(view, state)
            self._wake.set()

    # --- 1p/3p phase switching ------------------------------------------------------------------

    async def _phases(self, msg: Received[PhaseState]) -> None:
        view = self.seen(msg.station, msg.connector)
        if view is not None and msg.payload is not None:
            self.phase_state(view, msg.payload)

    def phase_state(self, view: ConnectorView, state: PhaseState) -> None:
        """The hardware's phases (and its answer to a phases/set of ours)."""
        view.switchable = state.switchable and state.phases is not None
        if state.phases is not None:
            view.hw_phases = state.phases
            view.phases = (0, 1, 2) if state.phases == 3 else (0,)
        seq = view.phase_seq
        if seq is not None and seq.step == "switching" and state.request_id == seq.request_id:
            now = self.clock()
            view.phase_seq, view.chooser.switched_at = None, now
            if state.phases == seq.target:
                view.phase_switches.append((now, seq.target))
                log.info("connector %s: switched to %d phase(s)", view.key, seq.target)
            else:
                log.warning("connector %s: phase switch to %d not made: %s", view.key,
                            seq.target, state.reason)
                view.status = f"phase switch to {seq.target} refused: {state.reason}"[:200]
            self._wake.set()

    def _phase_step(self, view: ConnectorView, cap: float, share_w: float, now: float) -> float:
        """Run the connector's switch sequence; the cap it may take meanwhile (0 while it runs).

        pause (0 A through the normal limit path) -> the current stops -> the IEC 61851 pause
        -> phases/set -> the confirmed phases -> resume. A step that takes too long ends the
        sequence (the car resumes on the phases it has); a refusal too."""
        t = self.config.phase_timers
        if not (self.config.phase_switching and view.switchable and view.hw_phases is not None):
            return cap
        seq = view.phase_seq
        want = view.chooser.want(view.setting.mode, share_w, view.hw_phases, now, t)
        if seq is None:
            if not view.charging or want == view.hw_phases:
                return cap
            seq = view.phase_seq = PhaseSequence(want, "stopping", now,
                                                 was_paused=view.limit_a == 0.0)
            log.info("connector %s: switching to %d phase(s): pausing", view.key, want)
        if not view.charging and seq.step != "switching":
            view.phase_seq = None  # the session ended: nothing to switch for
            return cap
        if seq.step == "stopping":
            paused = seq.was_paused or view.sent_at >= seq.since  # 0 A is on its way
            if paused and view.meter_at > seq.since and max(view.drawn_a) < STOPPED_A:
                seq.step, seq.since = "pausing", now
            elif now - seq.since > t.stop_timeout_s:
                return self._phase_abort(view, "the current did not stop", now, cap)
        if seq.step == "pausing" and now - seq.since >= t.pause_s:
            seq.step, seq.since = "switching", now
            seq.request_id = f"energy-{view.connector}-{len(view.phase_switches) + 1}-" \
                             f"{int(now * 1000) % 100000}"
            self.bus.publish(ch.PHASES_SET, PhaseCommand.model_validate(
                {"phases": seq.target, "request_id": seq.request_id}),
                             station=view.station, connector=view.connector)
        elif seq.step == "switching" and now - seq.since > t.confirm_timeout_s:
            return self._phase_abort(view, "no confirmation from the hardware", now, cap)
        view.status = f"switching to {seq.target} phase(s): {seq.step}"
        return 0.0

    def _phase_abort(self, view: ConnectorView, why: str, now: float, cap: float) -> float:
        seq = view.phase_seq
        log.warning("connector %s: phase switch given up: %s", view.key, why)
        view.phase_seq, view.chooser.switched_at = None, now
        view.status = f"phase switch to {seq.target if seq else '?'} given up: {why}"
        return cap

    # --- session cost at the tariff ------------------------------------------------------------

    def _start_cost(self, view: ConnectorView, state: TransactionState) -> None:
        """Count the cost of this transaction (from the retained count if it is the same)."""
        meter = view.session
        ref = state.transaction_ref or (None if state.transaction_id is None
                                        else str(state.transaction_id))
        # A transaction is known by its start (its id may come later, from the central system).
        if meter is not None and meter.started_at == state.started_at:
            meter.transaction_ref, meter.transaction_id = ref, state.transaction_id
            return
        if meter is not None:  # a new one began before the old one's session came
            self._publish_cost(view, final=True)
        restored = view.cost_restore
        view.cost_restore = None
        if restored is not None and not restored.final \
                and restored.started_at == state.started_at:
            view.session = SessionMeter(ref, state.transaction_id, state.started_at,
                                        state.meter_start_wh,
                                        state.meter_start_wh + restored.energy_wh, restored.ts,
                                        cost=restored.cost, unpriced_wh=restored.unpriced_wh)
            log.info("connector %s: session cost restored (%.2f for %.0f Wh)", view.key,
                     restored.cost, restored.energy_wh)
        else:
            view.session = SessionMeter(ref, state.transaction_id, state.started_at,
                                        state.meter_start_wh, state.meter_start_wh,
                                        state.started_at)
        self._publish_cost(view)

    async def _cost_restore(self, msg: Received[SessionCost]) -> None:
        """The retained cost from before a restart (used if its transaction still runs)."""
        view = self.seen(msg.station, msg.connector)
        if view is not None and msg.payload is not None and view.session is None:
            view.cost_restore = msg.payload

    async def _session(self, msg: Received[SessionSummary]) -> None:
        view = self.connectors.get((msg.station, msg.connector))
        if view is not None and msg.payload is not None:
            self.session_ended(view, msg.payload)

    def session_ended(self, view: ConnectorView, s: SessionSummary) -> None:
        """The gateway's summary: count up to its meterStop, then publish the final cost."""
        meter = view.session
        if meter is None or meter.started_at != s.started_at:
            return  # not the one counted (e.g. a retained summary of an older session)
        meter.transaction_ref = s.transaction_ref or meter.transaction_ref
        meter.transaction_id = s.transaction_id if s.transaction_id is not None \
            else meter.transaction_id
        end = max(s.stopped_at, meter.last_ts)
        meter.add(self.tariff.slots(meter.last_ts, end + _SECOND), s.meter_stop_wh, end)
        self._publish_cost(view, final=True, stopped_at=s.stopped_at)

    def _publish_cost(self, view: ConnectorView, *, final: bool = False,
                      stopped_at: datetime | None = None) -> None:
        meter = view.session
        if meter is None:
            return
        wall = self.wall()
        here = price_at(self.tariff.slots(wall, wall + _SECOND), wall)
        self.bus.publish(ch.ENERGY_COST, SessionCost(
            transaction_ref=meter.transaction_ref, transaction_id=meter.transaction_id,
            started_at=meter.started_at, stopped_at=stopped_at,
            energy_wh=round(meter.energy_wh, 3), cost=round(meter.cost, 6),
            unpriced_wh=round(meter.unpriced_wh, 3),
            price_per_kwh=here.price_per_kwh if here else None, final=final),
            station=view.station, connector=view.connector)
        view.cost_sent_at = self.clock()
        if final:
            view.session = None

    async def _meter(self, msg: Received[MeterReading]) -> None:
        if msg.payload is not None:
            self.meter_reading(msg.station, msg.connector, msg.payload)

    async def _transaction(self, msg: Received[TransactionState]) -> None:
        self.transaction(msg.station, msg.connector, msg.payload)

    async def _mode_set(self, msg: Received[ChargeModeSetting]) -> None:
        if msg.payload is None or self._find(msg) is None:
            return
        problem = self.set_mode(msg.station, msg.connector, msg.payload)
        if problem:
            self.bus.reject(msg.topic, problem)

    def set_mode(self, station: str, connector: int, setting: ChargeModeSetting) -> str | None:
        """Take a new mode (and plan); the reason when it cannot be taken."""
        view = self.connectors.get((station, connector))
        if view is None:
            return f"connector {connector} is not managed here"
        if setting.mode is ChargeMode.PLAN and (setting.plan_energy_wh is None
                                                or setting.plan_departure is None):
            return "plan mode needs plan_energy_wh and plan_departure"
        view.setting, view.restored = setting, True
        view.plan_start_wh = view.energy_wh  # a new plan counts from here
        log.info("connector %s: mode %s", view.key, view.setting.mode)
        self._publish_mode(view)
        self._wake.set()
        return None

    async def _mode_restore(self, msg: Received[ChargeModeState]) -> None:
        """The retained mode from before a restart, once."""
        view = self.seen(msg.station, msg.connector)
        if view is not None and msg.payload is not None and not view.restored:
            view.restored = True
            view.setting = ChargeModeSetting.model_validate(msg.payload.model_dump())
            view.plan_start_wh = msg.payload.plan_meter_start_wh

    # --- deciding ------------------------------------------------------------------------------

    def step(self, *, full: bool = True) -> dict[str, float]:
        """One decision: the limits that changed are published (an unchanged one again every
        resend_s, and all of a station's when its gateway comes online), and on a full step
        (once a period) the site state. The steps between, made at once on a grid reading, send
        no site state, so a meter that reports ten times a second cannot flood the bus."""
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
        unreachable = set(self.unreachable())
        grid = self.grid
        battery = self._battery()
        surplus_w = 0.0 if silent or grid is None else max(
            0.0, charge_w - grid.power_w + self.battery_surplus_w(battery))
        pv_views = [c for c in self.connectors.values() if c.charging
                    and c.setting.mode in (ChargeMode.PV, ChargeMode.MIN_PV)]
        pv_keys = {c.key for c in pv_views}
        pv_draw_w = sum(sum(c.drawn_a) * VOLTAGE_V for c in pv_views)
        wall = self.wall()
        demands = []
        for view in self.connectors.values():
            own_w = sum(view.drawn_a) * VOLTAGE_V if view.key in pv_keys else 0.0
            share_w = (surplus_w - pv_draw_w) / max(1, len(pv_views)) + own_w
            plan_active = view.setting.mode is ChargeMode.PLAN and self._plan(view, wall)
            cap = mode_cap(view.setting.mode, max_a=view.max_a, phases=len(view.phases),
                           surplus_w=share_w, pv=view.pv, now_s=now, timers=cfg.timers,
                           plan_active=plan_active)
            if view.setting.mode is not ChargeMode.PLAN:
                view.status = f"{view.setting.mode.value}: up to {cap:g} A"
            cap = self._phase_step(view, cap, share_w, now)
            if view.station in unreachable:
                view.status = (f"unreachable (its bridge is down): {self.reserved_a(view):g} A "
                               "kept reserved")
            elif view.charging:
                demands.append(Demand(view.key, view.phases, cap, view.setting.priority))
        # an unreachable station's connectors are no demand: they keep what they may draw
        # (reserved_a), taken off the site's headroom like the house load
        kept = {v.key: self.reserved_a(v) for v in self.connectors.values()
                if v.station in unreachable}
        reserve, reserve_w = [0.0, 0.0, 0.0], 0.0
        for view in self.connectors.values():
            if view.key in kept:
                for p in view.phases:
                    reserve[p] += kept[view.key]
                reserve_w += kept[view.key] * len(view.phases) * VOLTAGE_V
        if silent or grid is None:
            limits = allocate(Site(fuse_a=cfg.failsafe_a),
                              Grid((reserve[0], reserve[1], reserve[2]), reserve_w), demands)
        else:
            drawn = self.grid_drawn
            house = house_load(Grid(grid.current_a, grid.power_w), drawn)
            h = house.current_a
            limits = allocate(cfg.site, Grid((h[0] + reserve[0], h[1] + reserve[1],
                                              h[2] + reserve[2]), house.power_w + reserve_w),
                              demands)
        # lowered limits first (they end an overload), then raised ones, then the unchanged
        # ones that are due again: the outbox is sent in order, one acknowledged QoS 1 message
        # at a time, so a hundred re-sends must not stand in front of a cut
        sends = []
        if cfg.cut_confirm_s > 0:
            for view in self.connectors.values():
                if view.key in kept:
                    continue
                amps = limits.get(view.key, 0.0)
                if view.limit_a is not None and amps < view.limit_a:
                    self._cuts[view.key] = (view, amps, now)
        hold = cfg.cut_confirm_s > 0 and self._cuts_pending(now)
        for view in self.connectors.values():
            if view.key in kept:
                # nothing reaches it (a limit would wait in the site broker's queue): its
                # last limit stands, and is sent again when its bridge is back
                limits[view.key] = view.limit_a or 0.0
                continue
            amps = limits.get(view.key, 0.0)  # not charging: 0 until its session is seen
            before = view.limit_a
            if before is not None and amps < before:
                sends.append((0, view, amps))
            elif amps != before:
                if hold and amps > (before or 0.0):
                    # the raise waits for the cuts: its old limit stays promised, and is sent
                    # again when due (a gateway holds a limit only while it is refreshed)
                    if before is not None and (view.resend
                                               or now - view.sent_at >= cfg.resend_s):
                        sends.append((2, view, before))
                    continue
                sends.append((1, view, amps))
            elif view.resend or now - view.sent_at >= cfg.resend_s:
                sends.append((2, view, amps))
            view.limit_a = amps
        for _, view, amps in sorted(sends, key=lambda s: s[0]):
            reason = "fail-safe" if silent else (view.status or "")[:100]
            self.bus.publish(ch.ENERGY_LIMIT, EnergyLimitCommand(
                amps=amps, reason=reason, site=self.bus.station),
                station=view.station, connector=view.connector)
            view.sent_at, view.resend = now, False
        for view in self.connectors.values():
            self._publish_mode(view, only_if_changed=True)
            if full and view.session is not None and now - view.cost_sent_at >= cfg.resend_s:
                self._publish_cost(view)  # the running cost, every resend_s
        if full or silent != self._site_fail_safe or sorted(unreachable) != (
                self._site_unreachable):
            self._publish_site(silent, charge_w, surplus_w, battery)
        return limits

    def _battery(self) -> BatteryReading | None:
        if self.battery is None:
            return None
        try:
            return self.battery.reading()
        except Exception:  # a source's bug must not stop the fuse guard
            log.exception("battery source failed")
            return None

    def battery_surplus_w(self, battery: BatteryReading | None) -> float:
        """What the battery adds to the PV surplus (evcc's convention): its charging power,
        which the cars may take instead, unless battery first applies (configured, and its
        state of charge below the threshold or unknown); its discharging power is taken off,
        since the battery's energy never counts as surplus."""
        if battery is None:
            return 0.0
        if battery.power_w > 0:
            return -battery.power_w
        first = self.battery_first and (battery.soc_pct is None
                                        or battery.soc_pct < self.battery_first_below_soc)
        return 0.0 if first else -battery.power_w

    def _publish_site(self, silent: bool, charge_w: float, surplus_w: float,
                      battery: BatteryReading | None = None) -> None:
        cfg, grid, wall = self.config, self.grid, self.wall()
        self._site_fail_safe = silent
        self._site_unreachable = self.unreachable()
        here = price_at(self.tariff.slots(wall, wall + _SECOND), wall)
        self.bus.publish(ch.ENERGY_SITE, SiteState(
            grid_power_w=None if silent or grid is None else grid.power_w,
            grid_current_a=None if silent or grid is None else list(grid.current_a),
            pv_power_w=self.pv_power(), charge_power_w=charge_w, surplus_w=surplus_w,
            battery_power_w=None if battery is None else battery.power_w,
            battery_soc_pct=None if battery is None else battery.soc_pct,
            battery_status=None if self.battery is None else self.battery.status,
            fuse_limit_a=cfg.site.fuse_a, max_import_w=cfg.site.max_import_w,
            price_per_kwh=here.price_per_kwh if here else None,
            co2_g_per_kwh=here.co2_g_per_kwh if here else None,
            price_status=self.tariff.status, fail_safe=silent,
            unreachable_stations=self._site_unreachable))

    # --- plan mode -----------------------------------------------------------------------------

    def plan_power_w(self, view: ConnectorView) -> float:
        """The power a plan counts on: the connector's maximum within the site's fuse and cap."""
        site = self.config.site
        amps = min(view.max_a, site.fuse_a - site.margin_a)
        power = amps * len(view.phases) * VOLTAGE_V
        return power if site.max_import_w is None else min(power, site.max_import_w)

    def _plan(self, view: ConnectorView, wall: datetime) -> bool:
        """Replan from the energy still missing; True when the plan charges now."""
        setting = view.setting
        target, departure = setting.plan_energy_wh or 0.0, setting.plan_departure
        added = 0.0 if view.energy_wh is None or view.plan_start_wh is None \
            else max(0.0, view.energy_wh - view.plan_start_wh)
        if departure is None or wall >= departure:
            view.plan = None
            short = max(0.0, target - added)
            view.status = f"plan: departure passed, {added / 1000:.1f} kWh added" + (
                f", {short / 1000:.1f} kWh short" if short > 0 else "")
            return False
        view.plan = make_plan(self.tariff.slots(wall, departure), now=wall,
                              departure=departure, energy_wh=target - added,
                              power_w=self.plan_power_w(view),
                              objective="co2" if setting.plan_objective == "co2" else "cost")
        plan = view.plan
        if target - added < 1.0:  # within a watt-hour of the target
            view.status = f"plan: done, {added / 1000:.1f} kWh added"
            return False
        cost = "unknown cost" if plan.cost is None else f"cost {plan.cost:.2f}"
        view.status = (f"plan: {added / 1000:.1f} of {target / 1000:.1f} kWh, "
                       f"{len(plan.slots)} slots, {cost}"
                       + (f", {plan.missing_wh / 1000:.1f} kWh short" if plan.missing_wh else "")
                       + (" (charging)" if plan.active(wall) else ""))
        return plan.active(wall)

    def _publish_mode(self, view: ConnectorView, *, only_if_changed: bool = False) -> None:
        plan, added = view.plan, None
        if view.energy_wh is not None and view.plan_start_wh is not None:
            added = max(0.0, view.energy_wh - view.plan_start_wh)
        slots = [] if plan is None or view.setting.mode is not ChargeMode.PLAN else [
            PlanSlot(start=s.start, end=s.end, price_per_kwh=s.price_per_kwh,
                     co2_g_per_kwh=s.co2_g_per_kwh, energy_wh=round(s.energy_wh, 1))
            for s in plan.slots[:200]]
        # a slot in progress starts "now" and its end moves as the car charges: compare to the
        # minute, or every decision would send the mode state again
        said = (view.setting, view.limit_a, view.status, view.hw_phases,
                tuple((round(s.start.timestamp() / 60), round(s.end.timestamp() / 60))
                      for s in slots))
        if only_if_changed and said == view.published:
            return
        view.published = said
        in_plan = plan is not None and bool(slots)
        self.bus.publish(ch.ENERGY_MODE, ChargeModeState(
            **view.setting.model_dump(), limit_a=view.limit_a, status=view.status,
            plan_slots=slots, plan_cost=plan.cost if in_plan and plan else None,
            plan_co2_g=plan.co2_g if in_plan and plan else None,
            plan_added_wh=added if view.setting.mode is ChargeMode.PLAN else None,
            plan_missing_wh=plan.missing_wh if in_plan and plan else None,
            plan_meter_start_wh=view.plan_start_wh
            if view.setting.mode is ChargeMode.PLAN else None,
            phases=view.hw_phases if view.switchable else None,
            phase_switching=view.phase_seq is not None),
            station=view.station, connector=view.connector)

    async def run(self) -> None:
        """Decide every period, and at once on a new grid reading or session."""
        self.attach()
        await self.bus.wait_connected()
        last_full = float("-inf")
        while True:
            full = self.clock() - last_full >= self.config.period_s * 0.95
            self.step(full=full)
            if full:
                last_full = self.clock()
            self._wake.clear()
            wait_s = max(0.0, last_full + self.config.period_s - self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):  # not wait_for: it can swallow a stop (3.11)
                    await self._wake.wait()
