"""A grid meter on RS-485 (Modbus RTU): a register map as data, read with minimalmodbus.

The register definitions are the shared ones (`voltbus_common.registermap`); a grid map needs
more than a connector meter's (the phase powers, for the sign of the currents), so the grid
maps live here: `grid_models/eastron_sdm630.yaml`, `eastron_sdm72d.yaml`, or a file of one's own.
Serial I/O runs in a thread, one request at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from pathlib import Path
from typing import Annotated, Literal, Self

import minimalmodbus
import serial
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voltbus_common.registermap import Register, decode, plan_blocks
from voltbus_energy.sources.base import GridReading, MeterUnavailable

MODELS_DIR = Path(__file__).parent / "grid_models"
Three = Annotated[list[Register], Field(min_length=3, max_length=3)]


class GridValues(BaseModel):
    """Currents per phase, optional phase powers (their sign signs the currents), total power."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    current_a: Three
    phase_power_w: Three | None = None
    power_w: Register


class GridRegisterMap(BaseModel):
    """A grid meter model: a file in grid_models/ or the user's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    function_code: Literal[3, 4] = 4
    word_order: Literal["big", "little"] = "big"
    max_gap: Annotated[int, Field(ge=0, le=60)] = 0
    values: GridValues

    @classmethod
    def load(cls, model: str) -> Self:
        """A bundled model by name (eastron_sdm630) or a map file by path."""
        path = Path(model) if model.endswith((".yaml", ".yml")) else MODELS_DIR / f"{model}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))
            raise ValueError(f"unknown grid meter model {model!r} (bundled: {', '.join(known)}, "
                             "or a path to a .yaml register map)")
        try:
            return cls.model_validate(yaml.safe_load(path.read_text()))
        except ValidationError as exc:
            raise ValueError(f"grid register map {path}: {exc}") from None

    def registers(self) -> list[Register]:
        """Every register."""
        v = self.values
        return [*v.current_a, *(v.phase_power_w or []), v.power_w]


class ModbusGridMeter:
    """The grid meter at one address on a serial port (a PolledMeter)."""

    def __init__(self, port: str, address: int, model: GridRegisterMap, *, baudrate: int = 9600,
                 parity: str = "N", stopbits: int = 1, timeout_s: float = 0.5) -> None:
        self.port, self.address, self.model = port, address, model
        self.baudrate, self.parity, self.stopbits, self.timeout_s = (baudrate, parity, stopbits,
                                                                    timeout_s)
        self.blocks = plan_blocks(model.registers(), model.function_code, model.max_gap)
        self._serial: serial.Serial | None = None
        self._lock = threading.Lock()

    def _read_words(self) -> dict[int, int]:
        with self._lock:
            try:
                if self._serial is None:
                    self._serial = serial.Serial(self.port, self.baudrate, parity=self.parity,
                                                 stopbits=self.stopbits, timeout=self.timeout_s)
                inst = minimalmodbus.Instrument(self._serial, self.address)
                words: dict[int, int] = {}
                for fc, start, count in self.blocks:
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

    def _value(self, words: dict[int, int], reg: Register) -> float:
        value = decode([words[reg.address + i] for i in range(reg.words)], reg,
                       self.model.word_order)
        if not math.isfinite(value):
            raise MeterUnavailable(f"meter {self.address}: register {reg.address} is {value}")
        return value

    async def read(self) -> GridReading:
        """One reading: currents signed by their phase's power (< 0 export)."""
        try:
            words = await asyncio.to_thread(self._read_words)
        except (minimalmodbus.ModbusException, serial.SerialException, OSError,
                ValueError) as exc:
            raise MeterUnavailable(f"meter {self.address} on {self.port}: "
                                   f"{type(exc).__name__}: {str(exc)[:80]}") from exc
        v = self.model.values
        amps = [abs(self._value(words, r)) for r in v.current_a]
        if v.phase_power_w is not None:
            powers = [self._value(words, r) for r in v.phase_power_w]
            amps = [-a if p < 0 else a for a, p in zip(amps, powers, strict=True)]
        return GridReading(round(self._value(words, v.power_w), 3),
                           (round(amps[0], 3), round(amps[1], 3), round(amps[2], 3)))
