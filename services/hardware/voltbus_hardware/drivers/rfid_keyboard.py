"""USB keyboard-wedge readers: the card id arrives as key presses ending with Enter.

Reads the kernel's evdev wire format (struct input_event) straight from the device file and
grabs the device (EVIOCGRAB) so the digits do not also land on a console. Readers type the UID
as hex, or as a decimal number (`format: decimal`, converted to hex).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from typing import Literal, Self

from voltbus_common.enums import CardType, ChargePointErrorCode
from voltbus_hardware.config import KeyboardReaderConfig
from voltbus_hardware.drivers.base import DeviceUnavailable

EVENT = struct.Struct("llHHi")  # struct input_event on 64-bit Linux: timeval, type, code, value
EV_KEY, KEY_DOWN = 0x01, 1
EVIOCGRAB = 0x40044590
KEY_ENTER, KEY_KPENTER = 28, 96
KEYS = {2: "1", 3: "2", 4: "3", 5: "4", 6: "5", 7: "6", 8: "7", 9: "8", 10: "9", 11: "0",
        30: "A", 48: "B", 46: "C", 32: "D", 18: "E", 33: "F",
        79: "1", 80: "2", 81: "3", 75: "4", 76: "5", 77: "6", 71: "7", 72: "8", 73: "9", 82: "0"}


class KeyboardReader:
    """An evdev input device that types card ids."""

    def __init__(self, device: str, *, name: str = "usb",
                 number_format: Literal["hex", "decimal"] = "hex",
                 card_type: CardType = CardType.ISO14443) -> None:
        self.device, self.name, self.number_format = device, name, number_format
        self.card_type = card_type
        self._fd: int | None = None
        self._typed = ""
        self._pending = b""

    @classmethod
    def from_config(cls, cfg: KeyboardReaderConfig) -> Self:
        """From an `rfid: [{type: keyboard, device: /dev/input/by-id/...}]` entry."""
        return cls(cfg.device, name=cfg.name, number_format=cfg.format, card_type=cfg.card_type)

    def _open(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.device, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                raise DeviceUnavailable(f"{self.device}: {exc.strerror}",
                                        ChargePointErrorCode.READER_FAILURE) from None
            with contextlib.suppress(OSError):  # not an input device (tests use a FIFO)
                fcntl.ioctl(self._fd, EVIOCGRAB, 1)
        return self._fd

    async def read_tag(self) -> str | None:
        """The next complete id typed, or None (never blocks)."""
        fd = self._open()
        try:
            self._pending += os.read(fd, EVENT.size * 64)
        except BlockingIOError:
            pass
        except OSError as exc:  # unplugged
            self.close()
            raise DeviceUnavailable(f"{self.device}: {exc.strerror}",
                                    ChargePointErrorCode.READER_FAILURE) from None
        while len(self._pending) >= EVENT.size:
            _, _, kind, code, value = EVENT.unpack_from(self._pending)
            self._pending = self._pending[EVENT.size:]
            if kind != EV_KEY or value != KEY_DOWN:
                continue
            if code in (KEY_ENTER, KEY_KPENTER):
                typed, self._typed = self._typed, ""
                if typed:
                    return self._convert(typed)
            elif code in KEYS:
                self._typed += KEYS[code]
        return None

    def _convert(self, typed: str) -> str:
        if self.number_format == "decimal" and typed.isdigit():
            value = int(typed)
            return f"{value:0{max(8, (value.bit_length() + 7) // 8 * 2)}X}"
        return typed.upper()

    def close(self) -> None:
        """Close the device."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
