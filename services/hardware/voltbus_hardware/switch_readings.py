"""The meter register right after a relay switch (issue 10 §1): meterStart and meterStop.

Each read runs as a task of its own (an RS-485 read takes tens of ms, a lagging meter up to the
timeout) so that the bus never waits. After an opening the meter is re-read until it shows the
current stopped: a meter updates its registers a little after the current changes, and the
first read can be short by power times lag.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import MeterTrigger
from voltbus_common.models import MeterReading, RelayState, SwitchReading
from voltbus_hardware.card_readers import guarded
from voltbus_hardware.drivers.base import DeviceUnavailable, Meter

log = logging.getLogger(__name__)


class SwitchReadings:
    """Reads and publishes the meter of a connector after each of its relay switches."""

    def __init__(self, bus: Bus, *, timeout_s: float = 1.5, settled_power_w: float = 50.0,
                 retry_s: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.timeout_s, self.settled_power_w, self.retry_s = timeout_s, settled_power_w, retry_s
        self.clock = clock
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, connector: int, meter: Meter, state: RelayState) -> None:
        """Read `meter` now for the switch that `state` reports."""
        task = asyncio.create_task(guarded(self._read(connector, meter, state),
                                           f"connector {connector} switch reading"))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def finish(self) -> None:
        """Let reads in progress end (the register after the last opening matters), bounded."""
        if self.tasks:
            _, late = await asyncio.wait(list(self.tasks), timeout=self.timeout_s + 0.5)
            for task in late:
                task.cancel()

    async def _read(self, connector: int, meter: Meter, state: RelayState) -> None:
        deadline = self.clock() + self.timeout_s
        reading: MeterReading | None = None
        settled = False
        while not settled and self.clock() < deadline:
            try:
                reading = await meter.read()
            except DeviceUnavailable as exc:  # one CRC error must not cost the billing reading
                log.debug("connector %s: switch reading: %s", connector, exc)
            else:
                settled = state.closed or abs(reading.power_w) <= self.settled_power_w
                if settled:
                    break
            await asyncio.sleep(self.retry_s)
        if reading is None:
            log.warning("connector %s: no meter reading after the relay %s", connector,
                        "closed" if state.closed else "opened")
            return
        trigger = MeterTrigger.RELAY_CLOSED if state.closed else MeterTrigger.RELAY_OPENED
        fields = reading.model_dump(exclude={"trigger"})
        self.bus.publish(ch.METER, MeterReading(**fields, trigger=trigger), connector=connector)
        self.bus.publish(ch.SWITCH_READING, SwitchReading(
            **fields, trigger=trigger, relay_ts=state.ts, request_id=state.request_id,
            settled=settled), connector=connector)
