"""The interface every site input implements, and the reading it produces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from voltbus_common.bus import Bus


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
