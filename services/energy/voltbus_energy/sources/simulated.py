"""A simulated grid meter: a settable house load plus what the cars' meters report."""

from __future__ import annotations

import asyncio

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.models import MeterReading
from voltbus_energy.fuse import VOLTAGE_V
from voltbus_energy.sources.base import GridReading, Sink


def phases_of(reading: MeterReading) -> tuple[float, float, float]:
    """A meter's current on L1..L3 (a single-phase meter is on L1)."""
    amps = [*reading.current_a, 0.0, 0.0]
    return (amps[0], amps[1], amps[2])


class SimGrid:
    """Grid = house load per phase (`set_house_a`) + every connector meter on the stations."""

    def __init__(self, stations: list[str], *, house_a: float = 2.0) -> None:
        self.stations = stations
        self.house_a = (house_a, house_a, house_a)
        self._cars: dict[tuple[str, int], tuple[float, float, float]] = {}
        self._sink: Sink | None = None

    def set_house_a(self, l1: float, l2: float, l3: float) -> None:
        """Test hook: the house's own load per phase (A)."""
        self.house_a = (l1, l2, l3)
        self._emit()

    def attach(self, bus: Bus, sink: Sink) -> None:
        """Follow the connector meters; each reading makes a grid reading."""
        self._sink = sink

        async def meter(msg: Received[MeterReading]) -> None:
            if msg.payload is not None:
                self._cars[(msg.station, msg.connector)] = phases_of(msg.payload)
                # after the other handlers of this reading: the manager must know the car's
                # new current when the grid reading that includes it comes, or it takes the
                # change for house load and the limits swing (a real grid meter reads apart)
                asyncio.get_running_loop().call_soon(self._emit)

        for station in self.stations:
            bus.on(ch.METER, meter, station=station)

    def _emit(self) -> None:
        if self._sink is None:
            return
        amps = [self.house_a[p] + sum(c[p] for c in self._cars.values()) for p in range(3)]
        self._sink(GridReading(sum(amps) * VOLTAGE_V, (amps[0], amps[1], amps[2])))
