"""SunSpec over Modbus TCP (pymodbus client): a meter (models 201-204) at the grid connection,
an inverter (models 101-103) for PV production.

The device's map starts with "SunS" at 40000 (or 0, or 50000) and is a chain of models, each
`ID, L` then L registers, ending with ID 0xFFFF. Model 1 names the device. The integer models
carry a scale factor per group (value x 10^SF); a value of 0x8000 (int16) means "not
implemented". A grid meter's power is > 0 while importing; its phase currents are
signed like their phase power.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from voltbus_energy.sources.base import GridReading, MeterUnavailable

log = logging.getLogger(__name__)
BASES = (40000, 0, 50000)
SUNS = (0x5375, 0x6E53)
END = 0xFFFF
METERS = (201, 202, 203, 204)
INVERTERS = (101, 102, 103)
# offsets inside a model's data (after ID and L), from the SunSpec information model
METER = {"A": 0, "AphA": 1, "AphB": 2, "AphC": 3, "A_SF": 4, "W": 16, "WphA": 17, "WphB": 18,
         "WphC": 19, "W_SF": 20}
INVERTER = {"A": 0, "AphA": 1, "AphB": 2, "AphC": 3, "A_SF": 4, "W": 12, "W_SF": 13}


@dataclass(frozen=True)
class Model:
    """One model in the device's chain: its id, first data register and length."""

    id: int
    address: int
    length: int


def _int16(word: int) -> int | None:
    return None if word == 0x8000 else word - 0x10000 if word & 0x8000 else word


def _scaled(value: int | None, sf: int | None) -> float | None:
    return None if value is None or sf is None else value * 10.0 ** sf


def _text(words: list[int]) -> str:
    return b"".join(w.to_bytes(2, "big") for w in words).split(b"\0")[0].decode(
        "ascii", "replace").strip()


class SunSpecDevice:
    """A SunSpec device at host:port, unit id; finds its models once, then reads them."""

    def __init__(self, host: str, port: int = 502, *, unit: int = 1, timeout_s: float = 2.0
                 ) -> None:
        self.host, self.port, self.unit = host, port, unit
        self.client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0)
        self.models: dict[int, Model] = {}
        self.name = ""
        self._lock = asyncio.Lock()

    async def _read(self, address: int, count: int) -> list[int]:
        if not self.client.connected and not await self.client.connect():
            raise MeterUnavailable(f"SunSpec {self.host}:{self.port}: cannot connect")
        try:
            answer = await self.client.read_holding_registers(address, count=count,
                                                              device_id=self.unit)
        except ModbusException as exc:
            self.client.close()
            raise MeterUnavailable(f"SunSpec {self.host}:{self.port}: {exc}") from exc
        if answer.isError():
            raise MeterUnavailable(f"SunSpec {self.host}:{self.port}: read {address}+{count} "
                                   f"refused ({answer})")
        return list(answer.registers)

    async def discover(self) -> dict[int, Model]:
        """Walk the model chain (once; again after a failure)."""
        async with self._lock:
            if self.models:
                return self.models
            for base in BASES:
                try:
                    found = tuple(await self._read(base, 2)) == SUNS
                except MeterUnavailable:
                    if not self.client.connected:
                        raise
                    found = False
                if found:
                    break
            else:
                raise MeterUnavailable(f"SunSpec {self.host}:{self.port}: no 'SunS' marker at "
                                       f"{', '.join(map(str, BASES))}")
            models: dict[int, Model] = {}
            at = base + 2
            for _ in range(100):
                head = await self._read(at, 2)
                if head[0] == END:
                    break
                models.setdefault(head[0], Model(head[0], at + 2, head[1]))
                at += 2 + head[1]
            if 1 in models:
                common = await self._read(models[1].address, 32)
                self.name = f"{_text(common[:16])} {_text(common[16:32])}"
            log.info("SunSpec %s:%s unit %s: %s, models %s", self.host, self.port, self.unit,
                     self.name or "?", sorted(models))
            self.models = models
            return models

    async def block(self, choices: tuple[int, ...], count: int) -> tuple[Model, list[int]]:
        """The first present model of choices, and its first count data registers."""
        try:
            models = await self.discover()
            model = next((models[m] for m in choices if m in models), None)
            if model is None:
                raise MeterUnavailable(f"SunSpec {self.host}:{self.port}: none of the models "
                                       f"{choices} (has {sorted(models)})")
            return model, await self._read(model.address, min(count, model.length))
        except MeterUnavailable:
            self.models = {}  # the device may have changed: discover again next time
            raise

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


class SunSpecGridMeter:
    """A SunSpec meter (201-204) as the grid meter (a PolledMeter)."""

    def __init__(self, device: SunSpecDevice) -> None:
        self.device = device

    async def read(self) -> GridReading:
        """Total power and the phase currents, signed by the phase powers."""
        model, w = await self.device.block(METERS, 21)
        if len(w) < 21:
            raise MeterUnavailable(f"SunSpec model {model.id} is too short ({model.length})")
        a_sf, w_sf = _int16(w[METER["A_SF"]]), _int16(w[METER["W_SF"]])
        power = _scaled(_int16(w[METER["W"]]), w_sf)
        if power is None:
            raise MeterUnavailable(f"SunSpec model {model.id}: total power not implemented")
        amps = []
        for phase in ("A", "B", "C"):
            current = _scaled(_int16(w[METER[f"Aph{phase}"]]), a_sf)
            phase_w = _scaled(_int16(w[METER[f"Wph{phase}"]]), w_sf)
            amps.append(0.0 if current is None else
                        -abs(current) if phase_w is not None and phase_w < 0 else abs(current))
        if model.id == 201:  # single phase: all on L1
            amps = [amps[0], 0.0, 0.0]
        return GridReading(round(power, 3), (round(amps[0], 3), round(amps[1], 3),
                                             round(amps[2], 3)))


class SunSpecInverter:
    """A SunSpec inverter (101-103): its AC power is the PV production."""

    def __init__(self, device: SunSpecDevice) -> None:
        self.device = device
        self.power_w: float | None = None

    async def read_power_w(self) -> float:
        """AC power now (W, >= 0 while producing)."""
        model, w = await self.device.block(INVERTERS, 14)
        power = _scaled(_int16(w[INVERTER["W"]]), _int16(w[INVERTER["W_SF"]]))
        if power is None:
            raise MeterUnavailable(f"SunSpec model {model.id}: AC power not implemented")
        return round(power, 3)

    async def poll_forever(self, period_s: float = 1.0) -> None:
        """Keep `power_w` current; None while the inverter does not answer."""
        failures = 0
        while True:
            try:
                self.power_w = await self.read_power_w()
                failures = 0
            except MeterUnavailable as exc:
                self.power_w = None
                failures += 1
                if failures in (1, 10) or failures % 600 == 0:
                    log.warning("PV inverter: %s (%d failed reads)", exc, failures)
            await asyncio.sleep(period_s)
