"""Modbus register maps as data, pure: where a value is, its type and scale, and how to read a
set of them in few requests. Shared by every service that reads a Modbus meter (the hardware
service's connector meters, the energy manager's grid meter); no I/O here.

Here, not in the hardware service, so that services need not import each other.
"""

from __future__ import annotations

import struct
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

RegType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32"]
WORDS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
         "float32": 2}
_FORMAT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q",
           "uint64": "Q", "float32": "f"}
MAX_BLOCK = 64  # registers per request


class Register(BaseModel):
    """One value: where it is and how to turn its words into a number."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    address: Annotated[int, Field(ge=0, le=0xFFFF)]
    type: RegType
    scale: float = 1.0
    function_code: Literal[3, 4] | None = None

    @property
    def words(self) -> int:
        """How many 16-bit registers the value spans."""
        return WORDS[self.type]


def decode(words: list[int], reg: Register, word_order: str) -> float:
    """The scaled value of one register from its 16-bit words."""
    ordered = words if word_order == "big" else list(reversed(words))
    raw = b"".join(w.to_bytes(2, "big") for w in ordered)
    value = float(struct.unpack(">" + _FORMAT[reg.type], raw)[0])
    return value * reg.scale


def plan_blocks(regs: list[Register], default_fc: int,
                max_gap: int = 0) -> list[tuple[int, int, int]]:
    """(function code, start, count) requests that cover every register."""
    blocks: list[tuple[int, int, int]] = []
    for reg in sorted(regs, key=lambda r: (r.function_code or default_fc, r.address)):
        fc, end = reg.function_code or default_fc, reg.address + reg.words
        if blocks:
            bfc, start, count = blocks[-1]
            if bfc == fc and reg.address - (start + count) <= max_gap and end - start <= MAX_BLOCK:
                blocks[-1] = (fc, start, max(count, end - start))
                continue
        blocks.append((fc, reg.address, reg.words))
    return blocks
