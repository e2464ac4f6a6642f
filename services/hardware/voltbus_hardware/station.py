"""The drivers that make up one station, and the all-simulated station (no station file)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from voltbus_hardware.drivers.base import (
    Buzzer,
    CableLock,
    Evse,
    Led,
    Meter,
    Relay,
    RfidReader,
    SupportsClose,
)
from voltbus_hardware.drivers.simulated import (
    Clock,
    SimBuzzer,
    SimConnector,
    SimEvse,
    SimLed,
    SimLock,
    SimMeter,
    SimRelay,
    SimRfid,
    initial_register_wh,
)

log = logging.getLogger(__name__)


@dataclass
class ConnectorHardware:
    """The devices of one connector."""

    id: int
    evse: Evse
    relay: Relay
    meter: Meter | None = None
    led: Led | None = None
    max_current_a: float = 32.0
    lock: CableLock | None = None

    def devices(self) -> Iterator[object]:
        """Every driver object of this connector."""
        yield from (d for d in (self.evse, self.relay, self.meter, self.led, self.lock)
                    if d is not None)


@dataclass
class StationHardware:
    """The devices of one station: connectors by id, card readers, a buzzer."""

    id: str
    connectors: dict[int, ConnectorHardware]
    readers: list[RfidReader] = field(default_factory=list)
    buzzer: Buzzer | None = None
    resources: list[object] = field(default_factory=list)

    def close(self) -> None:
        """Release every serial port, pin and input device (each once)."""
        seen: set[int] = set()
        devices = [d for c in self.connectors.values() for d in c.devices()]
        for device in [*devices, *self.readers, self.buzzer, *self.resources]:
            if isinstance(device, SupportsClose) and id(device) not in seen:
                seen.add(id(device))
                with contextlib.suppress(Exception):
                    device.close()


def simulated_connector(station: str, connector: int, *, max_current_a: float = 32.0,
                        clock: Clock = time.monotonic) -> ConnectorHardware:
    """A connector whose EVSE, relay, meter, LED and cable lock are one simulated EV and
    charge point."""
    sim = SimConnector(energy_wh=initial_register_wh(station, connector),
                       max_current_a=max_current_a, clock=clock)
    return ConnectorHardware(connector, SimEvse(sim), SimRelay(sim), SimMeter(sim), SimLed(),
                             max_current_a=max_current_a, lock=SimLock(sim))


def simulated_station(station: str, connectors: int, *, max_current_a: float = 32.0,
                      clock: Clock = time.monotonic) -> StationHardware:
    """A station of `connectors` simulated connectors, one simulated reader and a buzzer."""
    return StationHardware(
        station,
        {n: simulated_connector(station, n, max_current_a=max_current_a, clock=clock)
         for n in range(1, connectors + 1)},
        readers=[SimRfid("sim")],
        buzzer=SimBuzzer(),
    )
