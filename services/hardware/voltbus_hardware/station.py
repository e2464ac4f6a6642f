"""The drivers that make up one station (registry.py builds them, simulated or real)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from voltbus_hardware.drivers.base import (
    BayDetector,
    Buzzer,
    CableLock,
    Evse,
    Led,
    Meter,
    PhaseSwitch,
    Relay,
    RfidReader,
    SupportsClose,
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
    lock_required: bool = False  # the relay closes only while the lock confirms `locked`
    phase_switch: PhaseSwitch | None = None  # 1p/3p contactor on L2/L3
    bay: BayDetector | None = None  # parking bay occupancy detector

    def devices(self) -> Iterator[object]:
        """Every driver object of this connector."""
        yield from (d for d in (self.evse, self.relay, self.meter, self.led, self.lock,
                                self.phase_switch, self.bay) if d is not None)


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
