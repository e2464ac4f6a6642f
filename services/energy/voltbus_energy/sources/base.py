"""The interface every site input implements, and the reading it produces."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from voltbus_common.bus import Bus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridReading:
    """A grid-connection reading: power (W, > 0 import) and current per phase (A, > 0 import)."""

    power_w: float
    current_a: tuple[float, float, float]


Sink = Callable[[GridReading], None]


class GridSource(Protocol):
    """A grid meter: calls the sink with every new reading."""

    def attach(self, bus: Bus, sink: Sink) -> None:
        """Start delivering readings (subscriptions are made on this bus)."""


class MeterUnavailable(Exception):
    """A polled meter did not answer, or answered nonsense; the message says which."""


class PolledMeter(Protocol):
    """A meter read on request (Modbus RTU, SunSpec over TCP)."""

    async def read(self) -> GridReading:
        """One reading, or MeterUnavailable."""


class Poller:
    """A GridSource that reads a PolledMeter every period; a failed read delivers nothing, so
    the manager's meter timeout brings the fail-safe limit."""

    def __init__(self, meter: PolledMeter, *, period_s: float = 1.0, name: str = "grid meter"
                 ) -> None:
        self.meter, self.period_s, self.name = meter, period_s, name
        self.failures = 0
        self._sink: Sink | None = None

    def attach(self, bus: Bus, sink: Sink) -> None:
        """Deliver readings to sink once `poll_forever` runs."""
        self._sink = sink

    async def poll_once(self) -> GridReading | None:
        """Read once; the reading went to the sink, None when the meter failed."""
        try:
            reading = await self.meter.read()
        except MeterUnavailable as exc:
            self.failures += 1
            if self.failures in (1, 10) or self.failures % 600 == 0:
                log.warning("%s: %s (%d failed reads in a row)", self.name, exc, self.failures)
            return None
        if self.failures:
            log.info("%s answers again after %d failed reads", self.name, self.failures)
        self.failures = 0
        if self._sink is not None:
            self._sink(reading)
        return reading

    async def poll_forever(self) -> None:
        """Read every period until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.poll_once()
            await asyncio.sleep(max(0.0, self.period_s - (loop.time() - started)))
