"""A home battery: its power (W, > 0 discharging, < 0 charging) and state of charge (%).

Behind one small interface like the grid meter and PV: `attach(bus)` then `reading()`, the
latest reading or None (none yet, stale, or the source failing), and `status`, a line saying why
when there is none (shown on `energy/site` as `battery_status`). Sources: any MQTT topic with
JSON paths, and a SunSpec battery (model 802) over Modbus TCP. Bad input never
raises out of a source: a payload that does not fit is announced on the service's `rejected`
topic and the reading goes stale; a failed read leaves no reading and a status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from voltbus_common.bus import Bus
from voltbus_energy.sources.base import MeterUnavailable
from voltbus_energy.sources.jsonpath import PathError, number_at, parse_path
from voltbus_energy.sources.sunspec import SunSpecDevice, _int16, _scaled

log = logging.getLogger(__name__)
# SunSpec model 802 (battery base model): offsets inside the model's data (after ID and L)
BATTERY_MODEL = 802
BATTERY = {"SoC": 9, "W": 45, "SoC_SF": 54, "W_SF": 61}


@dataclass(frozen=True)
class BatteryReading:
    """Power (W, > 0 the battery discharges into the house) and state of charge (%, or None)."""

    power_w: float
    soc_pct: float | None = None


class BatterySource(Protocol):
    """A home battery's latest reading, and why there is none."""

    status: str | None

    def attach(self, bus: Bus) -> None:
        """Start following the battery (subscriptions are made on this bus)."""

    def reading(self) -> BatteryReading | None:
        """The latest reading, None when there is no fresh one (see status)."""


def _soc(value: float | None) -> float | None:
    if value is None:
        return None
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"state of charge {value:g} % is outside 0..100")
    return value


class MqttJsonBattery:
    """Battery readings from one topic: power by a JSON path, SoC by another (optional).

    `sign` -1 turns a source that counts charging as positive into this convention. A reading
    older than `timeout_s` counts as none (the battery's source went silent).
    """

    def __init__(self, topic: str, *, power_path: str, soc_path: str = "", sign: int = 1,
                 timeout_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not topic:
            raise ValueError("VOLTBUS_ENERGY_BATTERY_TOPIC is needed for the mqtt battery")
        self.topic, self.sign, self.timeout_s, self.clock = topic, sign, timeout_s, clock
        self.power = parse_path(power_path)
        self.soc = parse_path(soc_path) if soc_path else None
        self._last: BatteryReading | None = None
        self._at = float("-inf")
        self.status: str | None = "battery: no reading yet"

    def attach(self, bus: Bus) -> None:
        """Subscribe to the battery's topic."""
        async def handle(topic: str, raw: bytes, retain: bool) -> None:
            try:
                document = json.loads(raw)
                power = number_at(document, self.power) * self.sign
                soc = _soc(number_at(document, self.soc)) if self.soc is not None else None
            except (ValueError, PathError) as exc:  # JSONDecodeError is a ValueError
                self.status = f"battery: payload rejected ({str(exc)[:120]})"
                bus.reject(topic, f"battery: {exc}")
                return
            self._last, self._at, self.status = BatteryReading(power, soc), self.clock(), None

        bus.on_raw(self.topic, handle, qos=0)

    def reading(self) -> BatteryReading | None:
        """The latest reading while it is fresh."""
        if self._last is not None and self.clock() - self._at > self.timeout_s:
            self._last = None
            self.status = f"battery: no reading for {self.timeout_s:g} s"
        return self._last


class SunSpecBattery:
    """A SunSpec battery (model 802): `W` (> 0 discharging) and `SoC`, each by its SF."""

    def __init__(self, device: SunSpecDevice, *, sign: int = 1) -> None:
        self.device, self.sign = device, sign
        self._last: BatteryReading | None = None
        self.status: str | None = "battery: no reading yet"
        self.failures = 0

    def attach(self, bus: Bus) -> None:
        """Nothing to subscribe: `poll_forever` reads the device."""

    def reading(self) -> BatteryReading | None:
        """The last successful read (None after a failed one)."""
        return self._last

    async def read(self) -> BatteryReading:
        """One read of model 802, or MeterUnavailable."""
        model, w = await self.device.block((BATTERY_MODEL,), 62)
        if len(w) < 62:
            raise MeterUnavailable(f"SunSpec model {model.id} is too short ({model.length})")
        power = _scaled(_int16(w[BATTERY["W"]]), _int16(w[BATTERY["W_SF"]]))
        if power is None:
            raise MeterUnavailable(f"SunSpec model {model.id}: battery power not implemented")
        soc = _scaled(None if w[BATTERY["SoC"]] == 0xFFFF else w[BATTERY["SoC"]],
                      _int16(w[BATTERY["SoC_SF"]]))
        try:
            soc = _soc(soc)
        except ValueError as exc:
            raise MeterUnavailable(f"SunSpec model {model.id}: {exc}") from None
        return BatteryReading(round(power * self.sign, 3),
                              None if soc is None else round(soc, 2))

    async def poll_once(self) -> BatteryReading | None:
        """Read once; a failure leaves no reading and says why in status."""
        try:
            self._last = await self.read()
        except MeterUnavailable as exc:
            self._last = None
            self.failures += 1
            self.status = f"battery: {str(exc)[:150]}"
            if self.failures in (1, 10) or self.failures % 600 == 0:
                log.warning("battery: %s (%d failed reads in a row)", exc, self.failures)
            return None
        if self.failures:
            log.info("battery answers again after %d failed reads", self.failures)
        self.failures, self.status = 0, None
        return self._last

    async def poll_forever(self, period_s: float = 1.0) -> None:
        """Read every period until cancelled."""
        while True:
            await self.poll_once()
            await asyncio.sleep(period_s)

