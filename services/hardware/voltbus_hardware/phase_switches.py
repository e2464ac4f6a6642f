"""1p/3p phase switching: phases/set -> the phase-switch driver; `phases` says what it confirms.

The contactor on L2/L3 must never switch under load. A switch is made only while no current can
flow through it: the relay is open, or the EVSE offers 0 A (paused) and the meter, read right
then, shows no current. Anything else is refused with the reason on `phases` and on
service/hardware/rejected. While a switch runs, the connector's actuation lock is held, so a
current limit or a relay close that arrives meanwhile waits until the contactor has settled.
The IEC 61851 pause around the switch (the car sees the pause, then charges on the new phases)
is the energy manager's sequence; this module only guarantees the switch itself is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.models import PhaseCommand, PhaseState
from voltbus_hardware.card_readers import guarded
from voltbus_hardware.drivers.base import DeviceUnavailable, PhaseSwitch
from voltbus_hardware.station import StationHardware

log = logging.getLogger(__name__)
NO_SWITCH = "no phase switch configured"


class PhaseSwitches:
    """The phase switches of one station (connectors without one answer switchable: false)."""

    def __init__(self, bus: Bus, station: StationHardware, *,
                 load: Callable[[int], Awaitable[str | None]],
                 actuation: Callable[[int], asyncio.Lock],
                 set_fault: Callable[[int, str | None], None]) -> None:
        self.bus = bus
        self.station = station
        self.load = load  # connector -> why current may flow now (None: it cannot)
        self.actuation = actuation
        self.set_fault = set_fault
        self.switches: dict[int, PhaseSwitch | None] = {
            n: hw.phase_switch for n, hw in station.connectors.items()}
        self.states: dict[int, PhaseState] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def attach(self) -> None:
        """Subscribe to phases/set; call before bus.run()."""
        self.bus.on(ch.PHASES_SET, self._on_set)

    async def publish_initial(self) -> None:
        """What each switch says at start-up (switchable: false where there is none)."""
        for n, switch in self.switches.items():
            phases = None
            if switch is not None:
                try:
                    phases = await switch.phases()
                except DeviceUnavailable as exc:
                    self.set_fault(n, str(exc)[:50])
                    self._publish(n, None, None, str(exc)[:100])
                    continue
            self._publish(n, phases, None, None if switch is not None else NO_SWITCH)

    def republish(self) -> None:
        """The last state of each switch, unchanged (after a reconnect)."""
        for n, state in self.states.items():
            self.bus.publish(ch.PHASES, state, connector=n)

    def cancel(self) -> None:
        """Stop switches in progress."""
        for task in self.tasks:
            task.cancel()

    async def _on_set(self, msg: Received[PhaseCommand]) -> None:
        if msg.connector not in self.switches:
            self.bus.reject(msg.topic, f"unknown connector {msg.connector}: station "
                            f"{self.station.id} has {sorted(self.switches)}")
            return
        if msg.payload is None:
            return
        task = asyncio.create_task(guarded(self._switch(msg.connector, msg.payload, msg.topic),
                                           f"connector {msg.connector} phase switch"))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _switch(self, n: int, cmd: PhaseCommand, topic: str) -> None:
        switch = self.switches[n]
        before = self.states.get(n)
        now: int | None = None if before is None else before.phases
        if switch is None:
            self.bus.reject(topic, f"connector {n}: {NO_SWITCH}")
            self._publish(n, None, cmd.request_id, NO_SWITCH)
            return
        async with self.actuation(n):
            if now == cmd.phases:  # nothing to switch: the answer only
                self._publish(n, now, cmd.request_id, None)
                return
            why = await self.load(n)
            if why is not None:
                reason = f"refused: {why}"[:100]
                log.warning("connector %s: phase switch to %s refused: %s", n, cmd.phases, why)
                self.bus.reject(topic, reason)
                self._publish(n, now, cmd.request_id, reason)
                return
            try:
                got = await switch.set_phases(cmd.phases)
            except DeviceUnavailable as exc:
                log.warning("connector %s: phase switch to %s failed: %s", n, cmd.phases, exc)
                self.set_fault(n, str(exc)[:50])
                try:
                    now = await switch.phases()
                except DeviceUnavailable:
                    now = None
                self._publish(n, now, cmd.request_id, str(exc)[:100])
                return
        self.set_fault(n, None)
        log.info("connector %s: supply switched to %s phase(s)", n, got)
        self._publish(n, got, cmd.request_id, None if got == cmd.phases
                      else f"the switch says {got} phases")

    def _publish(self, n: int, phases: int | None, request_id: str | None,
                 reason: str | None) -> None:
        state = PhaseState.model_validate({
            "phases": phases, "switchable": self.switches[n] is not None,
            "request_id": request_id, "reason": reason})
        self.states[n] = state
        self.bus.publish(ch.PHASES, state, connector=n)
