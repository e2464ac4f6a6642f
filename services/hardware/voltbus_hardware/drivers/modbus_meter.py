"""One generic Modbus RTU meter driver (minimalmodbus); each model is a register map file.

Several meters share one RS-485 line (`ModbusLine`): requests on a line are serialised by a
lock and run in a thread, so a slow meter never blocks the event loop. Registers are read in
as few requests as the map allows. Any failure (timeout, CRC error, port gone, NaN) raises
DeviceUnavailable: a meter that does not answer never yields a made-up reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from pathlib import Path
from typing import Annotated, Literal, Self

import minimalmodbus
import serial
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voltbus_common.enums import ChargePointErrorCode
from voltbus_common.models import MeterReading
from voltbus_common.registermap import Register, decode, plan_blocks
from voltbus_hardware.config import (
    ModbusMeterConfig,
    SerialLine,
)
from voltbus_hardware.drivers.base import DeviceUnavailable

log = logging.getLogger(__name__)
MODELS_DIR = Path(__file__).parent / "meter_models"
class Values(BaseModel):
    """The four things a MeterReading needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    voltage_v: Annotated[list[Register], Field(min_length=1, max_length=3)]
    current_a: Annotated[list[Register], Field(min_length=1, max_length=3)]
    power_w: Register
    energy_wh: Register


class RegisterMap(BaseModel):
    """A meter model: a file in meter_models/ or the user's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    function_code: Literal[3, 4] = 4
    word_order: Literal["big", "little"] = "big"
    max_gap: Annotated[int, Field(ge=0, le=60)] = Field(
        default=0, description="unused registers read through rather than a second request; "
                               "only for meters that answer for the gap")
    values: Values

    @classmethod
    def load(cls, model: str) -> Self:
        """A bundled model by name (eastron_sdm630) or a map file by path."""
        path = Path(model) if model.endswith((".yaml", ".yml")) else MODELS_DIR / f"{model}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))
            raise ValueError(f"unknown meter model {model!r} (bundled: {', '.join(known)}, "
                             "or a path to a .yaml register map)")
        try:
            return cls.model_validate(yaml.safe_load(path.read_text()))
        except ValidationError as exc:
            raise ValueError(f"register map {path}: {exc}") from None

    def registers(self) -> list[Register]:
        """Every register, in reading order."""
        v = self.values
        return [*v.voltage_v, *v.current_a, v.power_w, v.energy_wh]


def _short(exc: Exception) -> str:
    """A reason short enough for the error topic's 50-character info."""
    if isinstance(exc, minimalmodbus.NoResponseError):
        return "no answer (timeout)"
    if "Checksum" in str(exc):
        return "CRC error"
    if isinstance(exc, minimalmodbus.SlaveReportedException):
        return "meter reported an exception"
    if isinstance(exc, serial.SerialException | OSError):
        return "serial port unavailable"
    return type(exc).__name__


class ModbusLine:
    """One RS-485 port shared by several meters; one request at a time."""

    def __init__(self, port: str, *, baudrate: int = 9600, parity: str = "N", stopbits: int = 1,
                 timeout_s: float = 0.5) -> None:
        self.port, self.baudrate, self.parity = port, baudrate, parity
        self.stopbits, self.timeout_s = stopbits, timeout_s
        self.lock = threading.Lock()
        self._serial: serial.Serial | None = None
        self._instruments: dict[int, minimalmodbus.Instrument] = {}

    @classmethod
    def from_config(cls, cfg: SerialLine) -> Self:
        """From an entry under `serial:`."""
        return cls(cfg.port, baudrate=cfg.baudrate, parity=cfg.parity, stopbits=cfg.stopbits,
                   timeout_s=cfg.timeout_s)

    def instrument(self, address: int) -> minimalmodbus.Instrument:
        """The minimalmodbus instrument for a slave address, opening the port when needed."""
        if self._serial is None:
            self._serial = serial.Serial(self.port, self.baudrate, parity=self.parity,
                                         stopbits=self.stopbits, timeout=self.timeout_s)
            self._instruments.clear()
        if address not in self._instruments:
            inst = minimalmodbus.Instrument(self._serial, address)
            self._instruments[address] = inst
        return self._instruments[address]

    def read_blocks(self, address: int, blocks: list[tuple[int, int, int]]) -> dict[int, int]:
        """Register address -> word for every block (blocking; call in a thread)."""
        with self.lock:
            try:
                inst = self.instrument(address)
                words: dict[int, int] = {}
                for fc, start, count in blocks:
                    got = inst.read_registers(start, count, functioncode=fc)
                    words.update(zip(range(start, start + count), got, strict=True))
                return words
            except (serial.SerialException, OSError):
                self.close()  # the adapter may be gone: reopen on the next try
                raise

    def close(self) -> None:
        """Close the port."""
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
        self._serial = None
        self._instruments.clear()


class ModbusMeter:
    """A meter at one address on a ModbusLine, read through its register map."""

    def __init__(self, line: ModbusLine, address: int, model: RegisterMap) -> None:
        self.line, self.address, self.model = line, address, model
        self.blocks = plan_blocks(model.registers(), model.function_code, model.max_gap)

    @classmethod
    def from_config(cls, cfg: ModbusMeterConfig, *, line: ModbusLine) -> Self:
        """From a `meter: {type: modbus, model: ..., bus: ..., address: ...}` entry."""
        return cls(line, cfg.address, RegisterMap.load(cfg.model))

    async def read(self) -> MeterReading:
        """One reading, or DeviceUnavailable(PowerMeterFailure)."""
        try:
            words = await asyncio.to_thread(self.line.read_blocks, self.address, self.blocks)
        except (minimalmodbus.ModbusException, serial.SerialException, OSError,
                ValueError) as exc:
            log.debug("meter %s on %s: %r", self.address, self.line.port, exc)
            raise DeviceUnavailable(f"meter {self.address}: {_short(exc)}",
                                    ChargePointErrorCode.POWER_METER_FAILURE) from exc
        return self._reading(words)

    def _value(self, words: dict[int, int], reg: Register) -> float:
        value = decode([words[reg.address + i] for i in range(reg.words)], reg,
                       self.model.word_order)
        if not math.isfinite(value):
            raise DeviceUnavailable(f"meter {self.address}: register {reg.address} is {value}",
                                    ChargePointErrorCode.POWER_METER_FAILURE)
        return round(value, 3)

    def _reading(self, words: dict[int, int]) -> MeterReading:
        v = self.model.values
        try:
            return MeterReading(
                energy_wh=self._value(words, v.energy_wh),
                power_w=self._value(words, v.power_w),
                current_a=[self._value(words, r) for r in v.current_a],
                voltage_v=[self._value(words, r) for r in v.voltage_v])
        except ValidationError as exc:
            raise DeviceUnavailable(f"meter {self.address}: implausible reading: "
                                    f"{exc.errors()[0]['msg']}",
                                    ChargePointErrorCode.POWER_METER_FAILURE) from None
