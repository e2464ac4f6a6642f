"""Polls one station's drivers into bus events and carries bus commands to the drivers.

One station costs four tasks whatever its number of connectors: a state loop (pilot, board
faults; woken at once by drivers that notice changes themselves), a meter loop (every meter
interval, one meter after the other, as an RS-485 bus needs), the card readers (card_readers.py)
and a re-publisher of state after reconnects; plus a short task per relay switch (the meter
read after it, switch_readings.py) and per cable-lock move (cable_locks.py). The safety rules
live here so that every driver obeys them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import ChargePointErrorCode, PilotState, ServiceState
from voltbus_common.models import (
    BayOccupancy,
    CurrentLimitCommand,
    HardwareError,
    LedCommand,
    PilotEvent,
    RelayCommand,
    RelayState,
    utcnow,
)
from voltbus_hardware.cable_locks import CableLocks
from voltbus_hardware.card_readers import CardReaders, guarded, wait_or_timeout
from voltbus_hardware.colors import parse_color
from voltbus_hardware.drivers.base import (
    DeviceUnavailable,
    SupportsCurrentLimit,
    SupportsWake,
    wakes_on_every_change,
)
from voltbus_hardware.drivers.simulated import MIN_PWM_CURRENT_A
from voltbus_hardware.phase_switches import PhaseSwitches
from voltbus_hardware.safety import OPEN_PILOTS, FaultSet, OvercurrentGuard
from voltbus_hardware.station import ConnectorHardware, StationHardware
from voltbus_hardware.switch_readings import SwitchReadings

log = logging.getLogger(__name__)
E = ChargePointErrorCode
MAX_BACKOFF_S = 60.0
# Below this (A on every phase, read right before) the phase contactor may switch: a paused car
# draws a few hundred mA at most for its own electronics.
PHASE_SWITCH_MAX_A = 0.5


@dataclass(frozen=True)
class ControllerConfig:
    """Timing and safety settings."""

    meter_interval_s: float = 1.0
    poll_interval_s: float = 0.25
    # When every polled device wakes the loop on each change (simulated hardware), polling is
    # only a safety net: idle, the loops wake this rarely instead of every poll_interval_s.
    idle_poll_s: float = 5.0
    overcurrent_margin_a: float = 2.0
    overcurrent_time_s: float = 5.0
    gateway_loss_opens_relay: bool = True
    # After this service's own REconnect, a gateway `offline` is the broker's memory (its Will,
    # sent because the broker restarted): wait this long for the gateway to reconnect too.
    gateway_loss_grace_s: float = 20.0
    # A live `offline` waits this long first: did our own connection drop too (broker stopping)?
    gateway_loss_confirm_s: float = 2.0
    # A gateway lost while a relay is closed (a crash, a SIGKILL, its supervisor restarting it):
    # the relay stays closed this long (counted from the `offline`) for the gateway to come back
    # and resume the transaction; the EVSE keeps the last current limit and this service the
    # overcurrent guard and the pilot/lock rules meanwhile. 0: open once the loss is confirmed.
    gateway_loss_relay_hold_s: float = 60.0
    # The reading after a relay switch (issue 10 §1): after an opening, re-read until the meter
    # shows the current stopped (a meter updates its registers a little after the fact), but
    # publish within this time, so a gateway waiting 2 s for meterStop gets it.
    switch_read_timeout_s: float = 1.5
    switch_settled_power_w: float = 50.0
    switch_retry_s: float = 0.1


@dataclass
class _Connector:
    """What the controller knows about one connector."""

    hw: ConnectorHardware
    guard: OvercurrentGuard
    limit_a: float
    pilot: PilotState | None = None
    relay_closed: bool = False
    faults: FaultSet = field(default_factory=FaultSet)
    shown: tuple[ChargePointErrorCode, str | None] | None = None
    meter_failures: int = 0
    meter_retry_at: float = 0.0
    relay_state: RelayState | None = None
    # the plug-in's identity (PilotEvent.plugged_at): when the pilot left A; None when no cable
    # is in, or when this service started with one already in
    plugged_at: datetime | None = None
    bay: bool | None = None  # the bay detector's last published value (None: none yet)
    # held while the phase contactor switches: a current limit or a relay close waits for it
    actuation: asyncio.Lock = field(default_factory=asyncio.Lock)


class StationController:
    """Hardware <-> bus for one station."""

    def __init__(self, bus: Bus, station: StationHardware, config: ControllerConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.station = station
        self.config = config
        self.clock = clock
        self.connectors = {
            n: _Connector(hw, OvercurrentGuard(config.overcurrent_margin_a,
                                               config.overcurrent_time_s), hw.max_current_a)
            for n, hw in station.connectors.items()}
        self.gateway_online: bool | None = None
        self._gateway_recheck: asyncio.Task[None] | None = None
        self._gateway_back = asyncio.Event()  # set by each gateway `online`
        self._state_wake = asyncio.Event()
        self.readers = CardReaders(bus, station, self._set_reader_fault,
                                   poll_interval_s=config.poll_interval_s,
                                   idle_poll_s=config.idle_poll_s, clock=clock)
        self.switch_readings = SwitchReadings(
            bus, timeout_s=config.switch_read_timeout_s,
            settled_power_w=config.switch_settled_power_w, retry_s=config.switch_retry_s,
            clock=clock)
        self.locks = CableLocks(bus, station,
                                relay_closed=lambda n: self.connectors[n].relay_closed,
                                set_fault=self._device_fault("lock", E.CONNECTOR_LOCK_FAILURE))
        self.phases = PhaseSwitches(bus, station, load=self._load_reason,
                                    actuation=lambda n: self.connectors[n].actuation,
                                    set_fault=self._device_fault("phase", E.POWER_SWITCH_FAILURE))

    def attach(self) -> None:
        """Subscribe to the commands; call before bus.run()."""
        self.bus.on(ch.RELAY_SET, self._on_relay_set)
        self.bus.on(ch.CURRENT_LIMIT_SET, self._on_current_limit)
        self.bus.on(ch.LED_SET, self._on_led)
        self.bus.on(ch.SERVICE_STATUS, self._on_gateway_status, service="gateway")
        for c in self.connectors.values():
            if isinstance(c.hw.evse, SupportsWake):
                c.hw.evse.set_wake(self._state_wake.set)
        self.readers.attach()
        self.locks.attach()
        self.phases.attach()

    async def run(self) -> None:
        """Publish the initial state, then poll until cancelled."""
        for c in self.connectors.values():
            await self._switch(c, closed=False, why="start-up")
            if isinstance(c.hw.evse, SupportsCurrentLimit):
                await self._apply_limit(c, c.limit_a)
            await self._poll_state(c)
            self._publish_error(c, force=True)
        await self.locks.publish_initial()
        await self.phases.publish_initial()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._republish_on_connect())
            group.create_task(self._state_loop())
            group.create_task(self._meter_loop())
            group.create_task(self.readers.run())

    async def shutdown(self) -> None:
        """Open every relay: a stopped hardware service cannot keep the safety rules."""
        if self._gateway_recheck is not None:
            self._gateway_recheck.cancel()
        self.locks.cancel()
        self.phases.cancel()
        for c in self.connectors.values():
            if c.relay_closed:
                await self._switch(c, closed=False, why="service stopping")
        await self.switch_readings.finish()  # the register after the last opening

    # --- commands --------------------------------------------------------------------------

    def _connector(self, msg: Received[Any]) -> _Connector | None:
        c = self.connectors.get(msg.connector)
        if c is None:
            self.bus.reject(msg.topic, f"unknown connector {msg.connector}: station "
                            f"{self.station.id} has {sorted(self.connectors)}")
        return c

    async def _on_relay_set(self, msg: Received[RelayCommand]) -> None:
        c = self._connector(msg)
        if c is None or msg.payload is None:
            return
        if msg.payload.closed:
            if c.pilot in OPEN_PILOTS or c.pilot is None:
                self.bus.reject(msg.topic, f"refused to close: pilot is {c.pilot} "
                                "(no EV connected or EVSE fault)")
                self._publish_relay(c)
                return
            if c.hw.lock_required and not self.locks.confirmed_locked(c.hw.id):
                self.bus.reject(msg.topic, "refused to close: the cable is not locked "
                                "(lock/set first; the lock's required_to_close)")
                self._publish_relay(c)
                return
            c.faults.clear("overcurrent")
            c.guard.reset()
            async with c.actuation:  # never while the phase contactor moves
                await self._switch(c, closed=True, why="relay/set",
                                   request_id=msg.payload.request_id)
        else:
            await self._switch(c, closed=False, why="relay/set",
                               request_id=msg.payload.request_id)
        self._publish_error(c)

    async def _on_current_limit(self, msg: Received[CurrentLimitCommand]) -> None:
        c = self._connector(msg)
        if c is None or msg.payload is None:
            return
        if not isinstance(c.hw.evse, SupportsCurrentLimit):
            self.bus.reject(msg.topic, f"connector {c.hw.id}'s EVSE "
                            f"({type(c.hw.evse).__name__}) cannot limit current")
            return
        amps, rating = msg.payload.amps, c.hw.max_current_a
        # Out of range is applied in the safe direction and announced, never ignored: a smart
        # charging limit of 3 A that were dropped would leave the EV at its old, higher current.
        if amps > rating:
            self.bus.reject(msg.topic, f"amps {amps:g} above connector {c.hw.id}'s rating "
                            f"{rating:g} A: limited to {rating:g} A")
            amps = rating
        elif 0 < amps < MIN_PWM_CURRENT_A:
            self.bus.reject(msg.topic, f"amps {amps:g} below the {MIN_PWM_CURRENT_A:g} A a pilot "
                            "can offer: charging paused (0 A)")
            amps = 0.0
        async with c.actuation:  # a raise waits until a phase switch has settled
            await self._apply_limit(c, amps)

    async def _apply_limit(self, c: _Connector, amps: float) -> None:
        evse = c.hw.evse
        assert isinstance(evse, SupportsCurrentLimit)
        try:
            await evse.set_current_limit(amps)
        except DeviceUnavailable as exc:
            log.warning("connector %s: current limit not applied: %s", c.hw.id, exc)
            c.faults.set("evse", exc.code, str(exc)[:50])
            self._publish_error(c)
            return
        c.limit_a = amps

    async def _on_led(self, msg: Received[LedCommand]) -> None:
        c = self._connector(msg)
        if c is None or msg.payload is None:
            return
        try:
            color = parse_color(msg.payload.color)
        except ValueError as exc:
            self.bus.reject(msg.topic, str(exc))
            return
        if c.hw.led is None:
            log.debug("connector %s has no LED; %s ignored", c.hw.id, msg.payload)
            return
        try:
            await c.hw.led.show(color, msg.payload.pattern)
        except DeviceUnavailable as exc:
            log.warning("connector %s: LED: %s", c.hw.id, exc)

    async def _on_gateway_status(self, msg: Received[ServiceState]) -> None:
        self.gateway_online = msg.payload is ServiceState.ONLINE
        if self.gateway_online:
            self._gateway_back.set()
        if self.gateway_online or not self.config.gateway_loss_opens_relay:
            return
        if self._gateway_recheck is None or self._gateway_recheck.done():
            self._gateway_recheck = asyncio.create_task(self._confirm_gateway_loss())

    async def _confirm_gateway_loss(self) -> None:
        """Open the relays unless the `offline` came from a broker restart: a stopping broker
        sends the gateway's Will to us just before it drops us too, and a restarted one may
        hand it back as retained state. Then the gateway gets the grace to say `online`, and
        a closed relay the hold (gateway_loss_relay_hold_s from the `offline`): a gateway
        restarted by its supervisor resumes the transaction (docs/reliability.md)."""
        hold_until = self.clock() + self.config.gateway_loss_relay_hold_s
        await asyncio.sleep(self.config.gateway_loss_confirm_s)
        while self.gateway_online is False and self.config.gateway_loss_opens_relay:
            await self.bus.connected.wait()
            left = self._gateway_grace_left()
            if left <= 0:
                await self._hold_for_gateway(hold_until)
                if self.gateway_online is False:
                    await self._open_for_lost_gateway()
                return
            log.info("gateway offline around our own reconnect: re-checking in %.1fs", left)
            await asyncio.sleep(left)

    async def _hold_for_gateway(self, until: float) -> None:
        """Keep closed relays closed until the gateway is back or `until` (self.clock())."""
        closed = [c.hw.id for c in self.connectors.values() if c.relay_closed]
        left = until - self.clock()
        if not closed or left <= 0:
            return
        log.warning("gateway offline: keeping the relay of connector(s) %s closed up to %.0f s "
                    "for it to come back (the EVSE keeps the last current limit)",
                    ", ".join(map(str, closed)), left)
        while self.gateway_online is False and self.clock() < until:
            self._gateway_back.clear()
            await wait_or_timeout(self._gateway_back, min(1.0, max(0.0, until - self.clock())))
        if self.gateway_online:
            log.info("gateway back within the hold: relays left as they are")

    def _gateway_grace_left(self) -> float:
        bus = self.bus
        if bus.connect_count < 2 or bus.connected_at is None:  # first connect: relays are open
            return 0.0
        return bus.connected_at + self.config.gateway_loss_grace_s - time.monotonic()

    async def _open_for_lost_gateway(self) -> None:
        for c in self.connectors.values():
            if c.relay_closed:
                await self._switch(c, closed=False, why="gateway offline")

    # --- relay and state ---------------------------------------------------------------

    async def _switch(self, c: _Connector, *, closed: bool, why: str,
                      request_id: str | None = None) -> None:
        """Switch, publish the settled pilot, then the relay state, then read the meter: when
        the position changed, or when a relay/set with a request_id asks for its answer (a
        re-sent command that changes nothing is no new meterStart; start-up opens an open
        relay)."""
        was_closed = c.relay_closed
        try:
            c.relay_closed = await c.hw.relay.set_closed(closed)
        except DeviceUnavailable as exc:
            (log.error if not closed else log.warning)(
                "connector %s: relay did not switch %s (%s): %s", c.hw.id,
                "closed" if closed else "OPEN", why, exc)
            c.faults.set("relay", E.POWER_SWITCH_FAILURE, str(exc)[:50])
            self._publish_error(c)
            return
        c.faults.clear("relay")
        if not c.relay_closed:
            c.guard.reset()
        log.info("connector %s: relay %s (%s)", c.hw.id, "closed" if c.relay_closed else "open",
                 why)
        # The pilot the new position gives (C once the EV draws, B after opening) goes out
        # before the relay state, so no subscriber sees "relay closed, pilot B" for a few ms
        # (the SuspendedEV flicker before Charging, issue 10 §1).
        await self._poll_state(c, react=False)
        c.relay_state = RelayState(closed=c.relay_closed, request_id=request_id)
        self._publish_relay(c)
        asked = c.relay_closed != was_closed or request_id is not None
        if asked and c.hw.meter is not None:
            self.switch_readings.start(c.hw.id, c.hw.meter, c.relay_state)
        if c.relay_closed and c.pilot in OPEN_PILOTS:
            await self._switch(c, closed=False, why=f"pilot {c.pilot}")

    def _publish_relay(self, c: _Connector) -> None:
        """The last switched state, unchanged (same ts: switch readings refer to it)."""
        if c.relay_state is None or c.relay_state.closed != c.relay_closed:
            c.relay_state = RelayState(closed=c.relay_closed)
        self.bus.publish(ch.RELAY, c.relay_state, connector=c.hw.id)

    def _publish_error(self, c: _Connector, *, force: bool = False) -> None:
        shown = c.faults.shown()
        if shown != c.shown or force:
            c.shown = shown
            self.bus.publish(ch.HW_ERROR, HardwareError(code=shown[0], info=shown[1]),
                             connector=c.hw.id)

    async def _poll_state(self, c: _Connector, *, react: bool = True) -> None:
        """Read pilot and board fault; publish changes; open on A/E/F unless `react` is off."""
        try:
            status = await c.hw.evse.status()
        except DeviceUnavailable as exc:
            c.faults.set("evse", exc.code, str(exc)[:50])
            self._publish_error(c)
            return
        c.faults.set("evse", status.error, status.info)
        if status.pilot != c.pilot:
            if status.pilot is PilotState.A:
                c.plugged_at = None
            elif c.pilot is PilotState.A:  # plugged in now (not at our start: unknown then)
                c.plugged_at = utcnow()
            c.pilot = status.pilot
            self.bus.publish(ch.PILOT, PilotEvent(state=status.pilot, plugged_at=c.plugged_at),
                             connector=c.hw.id)
            if status.pilot is PilotState.A:
                c.faults.clear("overcurrent")
            if react and status.pilot in OPEN_PILOTS and c.relay_closed:
                await self._switch(c, closed=False, why=f"pilot {status.pilot}")
        self._poll_bay(c)
        if (react and c.relay_closed and c.hw.lock_required
                and not await self.locks.still_locked(c.hw.id)):
            await self._switch(c, closed=False, why="cable lock lost")
        self._publish_error(c)

    def _poll_bay(self, c: _Connector) -> None:
        """Publish the bay detector's value when it changed (retained: the gateway reads it
        at start-up too)."""
        if c.hw.bay is None:
            return
        occupied = c.hw.bay.occupied()
        if occupied != c.bay:
            c.bay = occupied
            self.bus.publish(ch.BAY, BayOccupancy(occupied=occupied), connector=c.hw.id)

    async def _state_loop(self) -> None:
        polled: list[object] = [c.hw.evse for c in self.connectors.values()]
        polled += [c.hw.lock for c in self.connectors.values() if c.hw.lock_required]
        polled += [c.hw.bay for c in self.connectors.values() if c.hw.bay is not None]
        wait_s = (self.config.idle_poll_s if all(wakes_on_every_change(d) for d in polled)
                  else self.config.poll_interval_s)
        while True:
            self._state_wake.clear()
            for c in self.connectors.values():
                await guarded(self._poll_state(c), f"connector {c.hw.id} state")
            await wait_or_timeout(self._state_wake, wait_s)

    def _device_fault(self, key: str, code: ChargePointErrorCode) -> Callable[[int, str | None],
                                                                             None]:
        """A setter of one device's fault on a connector (None clears): a cable lock that did
        not confirm a move (ConnectorLockFailure), a phase switch (PowerSwitchFailure)."""
        def set_fault(connector: int, info: str | None) -> None:
            c = self.connectors[connector]
            if info is None:
                c.faults.clear(key)
            else:
                c.faults.set(key, code, info)
            self._publish_error(c)
        return set_fault

    async def _load_reason(self, connector: int) -> str | None:
        """Why current may flow through the connector's phase contactor now (None: it cannot).

        An open relay carries none. Through a closed one, only a paused EVSE (0 A applied) with
        the meter, read now, below PHASE_SWITCH_MAX_A on every phase is safe to switch."""
        c = self.connectors[connector]
        if not c.relay_closed:
            return None
        if not isinstance(c.hw.evse, SupportsCurrentLimit):
            return "the relay is closed and the EVSE cannot pause at 0 A"
        if c.limit_a > 0:
            return f"the relay is closed and the EVSE offers {c.limit_a:g} A (pause at 0 A first)"
        if c.hw.meter is None:
            return "the relay is closed and no meter can confirm no current flows"
        try:
            reading = await c.hw.meter.read()
        except DeviceUnavailable as exc:
            return f"the relay is closed and the meter does not answer ({exc})"
        amps = max(abs(a) for a in reading.current_a)
        if amps >= PHASE_SWITCH_MAX_A:
            return f"current flows ({amps:.1f} A)"
        return None

    def _set_reader_fault(self, source: str, info: str | None) -> None:
        """A station's reader serves every connector: its fault shows on each (None clears)."""
        for c in self.connectors.values():
            if info is None:
                c.faults.clear(source)
            else:
                c.faults.set(source, E.READER_FAILURE, info)
            self._publish_error(c)

    async def _republish_on_connect(self) -> None:
        """After every (re)connect, state again: a broker that lost its retained store (no
        persistence, a new volume) must not leave subscribers without pilot, relay or error."""
        while True:
            await self.bus.connected.wait()
            for c in self.connectors.values():
                if c.pilot is not None:
                    self.bus.publish(ch.PILOT, PilotEvent(state=c.pilot, plugged_at=c.plugged_at),
                                     connector=c.hw.id)
                self._publish_relay(c)
                self._publish_error(c, force=True)
                if c.bay is not None:
                    self.bus.publish(ch.BAY, BayOccupancy(occupied=c.bay), connector=c.hw.id)
            self.locks.republish()
            self.phases.republish()
            await self.bus.disconnected.wait()

    # --- meters --------------------------------------------------------------------------

    async def _meter_loop(self) -> None:
        interval = self.config.meter_interval_s
        due = self.clock()
        while True:
            for c in self.connectors.values():
                await guarded(self._read_meter(c), f"connector {c.hw.id} meter")
            due += interval
            now = self.clock()
            if due < now:  # fell behind (slow meters): skip, don't burst
                due = now + interval - (now - due) % interval
            await asyncio.sleep(due - now)

    async def _read_meter(self, c: _Connector) -> None:
        meter = c.hw.meter
        if meter is None or self.clock() < c.meter_retry_at:
            return
        try:
            reading = await meter.read()
        except DeviceUnavailable as exc:
            c.meter_failures += 1
            backoff = min(self.config.meter_interval_s * 2 ** c.meter_failures, MAX_BACKOFF_S)
            c.meter_retry_at = self.clock() + backoff
            if c.meter_failures == 1:
                log.warning("connector %s: meter unavailable: %s", c.hw.id, exc)
            c.faults.set("meter", E.POWER_METER_FAILURE, str(exc)[:50])
            self._publish_error(c)
            return
        if c.meter_failures:
            log.info("connector %s: meter answers again after %d failures", c.hw.id,
                     c.meter_failures)
            c.meter_failures, c.meter_retry_at = 0, 0.0
            c.faults.clear("meter")
            self._publish_error(c)
        self.bus.publish(ch.METER, reading, connector=c.hw.id)
        await self._check_overcurrent(c, max(reading.current_a))

    async def _check_overcurrent(self, c: _Connector, amps: float) -> None:
        if not c.relay_closed:
            return
        limit = min(c.limit_a, c.hw.max_current_a)
        if c.guard.update(self.clock(), amps, limit):
            log.warning("connector %s: %.1f A above limit %.1f A + %.1f A for %.1f s: opening",
                        c.hw.id, amps, limit, self.config.overcurrent_margin_a,
                        self.config.overcurrent_time_s)
            c.faults.set("overcurrent", E.OVER_CURRENT_FAILURE, f"{amps:.1f} A > {limit:g} A")
            await self._switch(c, closed=False, why="overcurrent")
            self._publish_error(c)

