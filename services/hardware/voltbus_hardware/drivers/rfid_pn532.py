"""PN532 NFC/RFID reader over UART (HSU) or I2C: SAMConfiguration, then InListPassiveTarget polls.

Frames are the PN532 user manual's normal information frames (00 00 FF LEN LCS D4 ... DCS 00)
with an ACK before each answer. Passive activation retries are limited to one so a poll with no
card returns at once instead of waiting for a card forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, Self

import serial

from voltbus_common.enums import CardType, ChargePointErrorCode
from voltbus_hardware.config import Pn532Config
from voltbus_hardware.drivers.base import DeviceUnavailable
from voltbus_hardware.drivers.rfid_common import Presence, hex_id

ACK = bytes([0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00])
HOST, CHIP = 0xD4, 0xD5
SAM_CONFIGURATION, RF_CONFIGURATION, IN_LIST_PASSIVE_TARGET = 0x14, 0x32, 0x4A


def build_frame(command: int, data: bytes = b"") -> bytes:
    """A host-to-PN532 information frame."""
    body = bytes([HOST, command]) + data
    length = len(body)
    return (bytes([0x00, 0x00, 0xFF, length, (-length) & 0xFF]) + body
            + bytes([(-sum(body)) & 0xFF, 0x00]))


def parse_frame(raw: bytes) -> bytes:
    """The body (TFI onwards) of a PN532-to-host frame; ValueError on a bad frame."""
    start = raw.find(b"\x00\xff")
    if start < 0 or len(raw) < start + 4:
        raise ValueError("no frame start")
    length, lcs = raw[start + 2], raw[start + 3]
    if (length + lcs) & 0xFF:
        raise ValueError("bad length checksum")
    body = raw[start + 4:start + 4 + length]
    if len(body) < length or len(raw) < start + 5 + length:
        raise ValueError("short frame")
    if (sum(body) + raw[start + 4 + length]) & 0xFF:
        raise ValueError("bad data checksum")
    if body[0] != CHIP:
        raise ValueError("not a PN532 answer")
    return body


class Transport(Protocol):
    """Moves frames to and from the chip."""

    def exchange(self, frame: bytes, timeout_s: float) -> bytes:
        """Send a frame, check the ACK, return the answer frame."""
        ...

    def close(self) -> None:
        """Release the port or bus."""
        ...


class UartTransport:
    """HSU: the chip's serial interface; woken with a long preamble before the first command."""

    def __init__(self, port: str, baudrate: int = 115200) -> None:
        self.port, self.baudrate = port, baudrate
        self._serial: serial.Serial | None = None

    def exchange(self, frame: bytes, timeout_s: float) -> bytes:
        """Send, expect ACK, read the answer frame."""
        if self._serial is None:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=0.02)
            self._serial.write(b"\x55\x55" + b"\x00" * 14)  # HSU wake-up
        port = self._serial
        port.reset_input_buffer()
        port.write(frame)
        raw = self._read(port, len(ACK), timeout_s)
        if not raw.startswith(ACK):
            raise ValueError("no ACK")
        answer = raw[len(ACK):] + self._read(port, 7, timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:  # until the frame's own length is complete
            try:
                return parse_frame(answer)
            except ValueError as exc:
                if "short" not in str(exc) and "no frame" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                answer += port.read(64)

    @staticmethod
    def _read(port: serial.Serial, count: int, timeout_s: float) -> bytes:
        data, deadline = b"", time.monotonic() + timeout_s
        while len(data) < count and time.monotonic() < deadline:
            data += port.read(count - len(data))
        if len(data) < count:
            raise TimeoutError("no answer")
        return data

    def close(self) -> None:
        """Close the serial port."""
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
        self._serial = None


class I2cBus(Protocol):
    """What the driver needs of smbus2.SMBus: combined transfers of smbus2.i2c_msg, and close."""

    def i2c_rdwr(self, *msgs: Any) -> None:
        """Run the messages as one transaction; read messages get their buffers filled."""
        ...

    def close(self) -> None:
        """Release the bus."""
        ...


def _smbus(bus: int) -> I2cBus:
    from smbus2 import SMBus  # only on a Pi: pip install smbus2
    return SMBus(bus)


class I2cTransport:
    """I2C: each read starts with a ready byte (0x01 when the chip has something to say).

    `open_bus` makes the bus object (smbus2.SMBus by default, a chip model in tests); it is called
    again after close() so a reader recovers from a failed transfer.
    """

    def __init__(self, bus: int, address: int = 0x24, *,
                 open_bus: Callable[[int], I2cBus] = _smbus) -> None:
        self.bus_number, self.address, self._open_bus = bus, address, open_bus
        self._bus: I2cBus | None = open_bus(bus)

    def _port(self) -> I2cBus:
        if self._bus is None:
            self._bus = self._open_bus(self.bus_number)
        return self._bus

    def _read(self, count: int, timeout_s: float) -> bytes:
        from smbus2 import i2c_msg
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = i2c_msg.read(self.address, count + 1)
            self._port().i2c_rdwr(msg)
            data = bytes(msg)
            if data[0] == 0x01:
                return data[1:]
            time.sleep(0.005)
        raise TimeoutError("no answer")

    def exchange(self, frame: bytes, timeout_s: float) -> bytes:
        """Write the frame, read ACK, read the answer."""
        from smbus2 import i2c_msg
        self._port().i2c_rdwr(i2c_msg.write(self.address, frame))
        if not self._read(len(ACK), timeout_s).startswith(ACK):
            raise ValueError("no ACK")
        return parse_frame(self._read(64, timeout_s))

    def close(self) -> None:
        """Close the bus; the next exchange opens it again."""
        if self._bus is not None:
            with contextlib.suppress(Exception):
                self._bus.close()
        self._bus = None


class Pn532Reader:
    """A PN532 polled for ISO 14443A cards."""

    card_type = CardType.ISO14443

    def __init__(self, transport: Transport, *, name: str = "pn532",
                 timeout_s: float = 0.3) -> None:
        self.transport, self.name, self.timeout_s = transport, name, timeout_s
        self._ready = False
        self._lock = threading.Lock()
        self.presence = Presence()

    @classmethod
    def from_config(cls, cfg: Pn532Config, *,
                    open_i2c: Callable[[int], I2cBus] | None = None) -> Self:
        """From an `rfid: [{type: pn532, ...}]` entry; `open_i2c` makes the bus (default SMBus)."""
        if cfg.interface == "uart":
            assert cfg.port is not None  # the config requires it for uart
            return cls(UartTransport(cfg.port, cfg.baudrate), name=cfg.name)
        return cls(I2cTransport(cfg.i2c_bus, cfg.i2c_address, open_bus=open_i2c or _smbus),
                   name=cfg.name)

    def _command(self, command: int, data: bytes = b"") -> bytes:
        body = self.transport.exchange(build_frame(command, data), self.timeout_s)
        if body[1] != command + 1:
            raise ValueError(f"answer {body[1]:#x} to command {command:#x}")
        return body[2:]

    def _poll(self) -> str | None:
        with self._lock:
            if not self._ready:
                self._command(SAM_CONFIGURATION, bytes([0x01, 0x14, 0x01]))  # normal mode
                self._command(RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, 0x01]))  # 1 retry
                self._ready = True
            answer = self._command(IN_LIST_PASSIVE_TARGET, bytes([0x01, 0x00]))  # 106 kbps A
            if not answer or answer[0] == 0:
                return None
            uid_len = answer[5]
            return hex_id(answer[6:6 + uid_len])

    async def read_tag(self) -> str | None:
        """A newly presented card, once per presentation."""
        try:
            uid = await asyncio.to_thread(self._poll)
        except (TimeoutError, ValueError, serial.SerialException, OSError) as exc:
            self._ready = False
            self.transport.close()
            raise DeviceUnavailable(f"{self.name}: {exc}",
                                    ChargePointErrorCode.READER_FAILURE) from None
        return self.presence.update(uid)

    def close(self) -> None:
        """Release the port or bus."""
        self.transport.close()
