"""A grid meter on any MQTT topic: power and per-phase currents picked by JSON paths.

Home Assistant, Shelly, Tasmota or a P1 reader can feed the energy manager this way. A payload
that does not fit is announced on the service's `rejected` topic and dropped.
"""

from __future__ import annotations

import json

from voltbus_common.bus import Bus
from voltbus_energy.sources.base import GridReading, Sink
from voltbus_energy.sources.jsonpath import PathError, number_at, parse_path


class MqttJsonGrid:
    """Grid readings from one topic; currents from 1 or 3 paths (1: the same on each phase)."""

    def __init__(self, topic: str, *, power_path: str, current_paths: list[str]) -> None:
        if not topic:
            raise ValueError("VOLTBUS_ENERGY_GRID_TOPIC is needed for the mqtt grid meter")
        if len(current_paths) not in (1, 3):
            raise ValueError("give 1 or 3 current paths")
        self.topic = topic
        self.power = parse_path(power_path)
        self.currents = [parse_path(p) for p in current_paths]

    def attach(self, bus: Bus, sink: Sink) -> None:
        """Subscribe to the meter's topic."""
        async def handle(topic: str, raw: bytes, retain: bool) -> None:
            try:
                document = json.loads(raw)
                power = number_at(document, self.power)
                amps = [number_at(document, p) for p in self.currents]
            except (ValueError, PathError) as exc:  # JSONDecodeError is a ValueError
                bus.reject(topic, f"grid meter: {exc}")
                return
            if len(amps) == 1:
                amps = amps * 3
            sink(GridReading(power, (amps[0], amps[1], amps[2])))

        bus.on_raw(self.topic, handle, qos=0)


class MqttJsonPower:
    """One power value (W) from a topic: the PV inverter or a battery."""

    def __init__(self, topic: str, *, path: str) -> None:
        self.topic = topic
        self.path = parse_path(path)
        self.power_w: float | None = None

    def attach(self, bus: Bus) -> None:
        """Subscribe; the latest value is in `power_w`."""
        async def handle(topic: str, raw: bytes, retain: bool) -> None:
            try:
                self.power_w = number_at(json.loads(raw), self.path)
            except (ValueError, PathError) as exc:
                bus.reject(topic, f"power: {exc}")

        bus.on_raw(self.topic, handle, qos=0)
