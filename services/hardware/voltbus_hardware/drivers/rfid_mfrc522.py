"""MFRC522 on SPI: REQA/WUPA then anticollision (cascade level 1) through the chip's FIFO.

Register access and the Transceive sequence follow the NXP MFRC522 data sheet (section 8.1.2
SPI address byte, 10.3 commands). The SPI device is injected: `spidev.SpiDev` on a Pi, a chip
model in tests. A held card is reported once (Presence).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Protocol, Self

from voltbus_common.enums import CardType, ChargePointErrorCode
from voltbus_hardware.config import Mfrc522Config
from voltbus_hardware.drivers.base import DeviceUnavailable
from voltbus_hardware.drivers.rfid_common import Presence, hex_id

# registers
COMMAND, COM_IEN, COM_IRQ, ERROR, FIFO_DATA, FIFO_LEVEL, CONTROL, BIT_FRAMING = (
    0x01, 0x02, 0x04, 0x06, 0x09, 0x0A, 0x0C, 0x0D)
MODE, TX_CONTROL, TX_ASK, T_MODE, T_PRESCALER, T_RELOAD_H, T_RELOAD_L, VERSION = (
    0x11, 0x14, 0x15, 0x2A, 0x2B, 0x2C, 0x2D, 0x37)
# commands
IDLE, TRANSCEIVE, SOFT_RESET = 0x00, 0x0C, 0x0F
WUPA, SEL_CL1, SEL_CL2, CASCADE_TAG = 0x52, 0x93, 0x95, 0x88
KNOWN_VERSIONS = {0x88, 0x90, 0x91, 0x92, 0x12}  # clones report 0x12 or 0x88


def crc_a(data: list[int]) -> list[int]:
    """ISO/IEC 14443-3 CRC_A (init 0x6363), low byte first."""
    crc = 0x6363
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = (crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)
    return [crc & 0xFF, crc >> 8]


class Spi(Protocol):
    """What the driver needs of spidev.SpiDev."""

    def xfer2(self, data: list[int]) -> list[int]:
        """Full-duplex transfer with CS held."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


class NoCard(Exception):
    """Nothing answered in the field."""


class Mfrc522Reader:
    """An MFRC522 polled for ISO 14443A cards (4- and 7-byte UIDs)."""

    card_type = CardType.ISO14443

    def __init__(self, spi: Spi, *, name: str = "mfrc522", reset: Any = None) -> None:
        self.spi, self.name, self.reset = spi, name, reset
        self._ready = False
        self._lock = threading.Lock()
        self.presence = Presence()

    @classmethod
    def from_config(cls, cfg: Mfrc522Config, *, pin_factory: Any = None) -> Self:
        """From an `rfid: [{type: mfrc522, spi_bus: 0, spi_device: 0}]` entry."""
        import spidev  # only on a Pi: pip install spidev

        spi = spidev.SpiDev()
        spi.open(cfg.spi_bus, cfg.spi_device)
        spi.max_speed_hz = 1_000_000
        reset = None
        if cfg.reset_pin is not None:
            from gpiozero import DigitalOutputDevice
            reset = DigitalOutputDevice(cfg.reset_pin, initial_value=True,
                                        pin_factory=pin_factory)
        return cls(spi, name=cfg.name, reset=reset)

    def _write(self, reg: int, value: int) -> None:
        self.spi.xfer2([(reg << 1) & 0x7E, value])

    def _read(self, reg: int) -> int:
        return self.spi.xfer2([((reg << 1) & 0x7E) | 0x80, 0])[1]

    def _init(self) -> None:
        self._write(COMMAND, SOFT_RESET)
        version = self._read(VERSION)
        if version not in KNOWN_VERSIONS:
            raise DeviceUnavailable(f"{self.name}: no MFRC522 (version {version:#04x})",
                                    ChargePointErrorCode.READER_FAILURE)
        for reg, value in ((T_MODE, 0x8D), (T_PRESCALER, 0x3E), (T_RELOAD_L, 30),
                           (T_RELOAD_H, 0), (TX_ASK, 0x40), (MODE, 0x3D)):
            self._write(reg, value)
        self._write(TX_CONTROL, self._read(TX_CONTROL) | 0x03)  # antenna on
        self._ready = True

    def _transceive(self, data: list[int], last_bits: int = 0) -> list[int]:
        self._write(COM_IEN, 0x77 | 0x80)
        self._write(COM_IRQ, 0x7F)  # clear all interrupt bits
        self._write(FIFO_LEVEL, 0x80)  # flush
        self._write(COMMAND, IDLE)
        for byte in data:
            self._write(FIFO_DATA, byte)
        self._write(COMMAND, TRANSCEIVE)
        self._write(BIT_FRAMING, 0x80 | last_bits)  # StartSend
        for _ in range(2000):
            irq = self._read(COM_IRQ)
            if irq & 0x30:  # RxIRq | IdleIRq: an answer
                break
            if irq & 0x01:  # TimerIRq: nothing in the field
                raise NoCard
        else:
            raise DeviceUnavailable(f"{self.name}: chip does not finish",
                                    ChargePointErrorCode.READER_FAILURE)
        self._write(BIT_FRAMING, 0)
        if self._read(ERROR) & 0x1B:  # buffer overflow, collision, parity, protocol
            raise NoCard
        count = self._read(FIFO_LEVEL)
        return [self._read(FIFO_DATA) for _ in range(count)]

    def _cascade(self, level: int) -> tuple[list[int], bool]:
        """Anticollision + select on one cascade level: (4 uid bytes, more levels follow)."""
        answer = self._transceive([level, 0x20])
        if len(answer) != 5 or answer[0] ^ answer[1] ^ answer[2] ^ answer[3] != answer[4]:
            raise NoCard  # collision or noise: try again next poll
        select = [level, 0x70, *answer]
        sak = self._transceive([*select, *crc_a(select)])
        if len(sak) != 3 or crc_a(sak[:1]) != sak[1:]:
            raise NoCard
        return answer[:4], bool(sak[0] & 0x04)

    def _poll(self) -> str | None:
        with self._lock:
            if not self._ready:
                self._init()
            try:
                atqa = self._transceive([WUPA], last_bits=7)  # WUPA also wakes halted cards
                if len(atqa) != 2:
                    return None
                part, more = self._cascade(SEL_CL1)
                uid = part
                if more and part[0] == CASCADE_TAG:  # 7-byte UID: CT + 3 bytes, then 4 more
                    rest, _ = self._cascade(SEL_CL2)
                    uid = part[1:] + rest
            except NoCard:
                return None
            return hex_id(bytes(uid))

    async def read_tag(self) -> str | None:
        """A newly presented card, once per presentation."""
        try:
            uid = await asyncio.to_thread(self._poll)
        except OSError as exc:
            self._ready = False
            raise DeviceUnavailable(f"{self.name}: SPI: {exc.strerror or exc}",
                                    ChargePointErrorCode.READER_FAILURE) from None
        except DeviceUnavailable:
            self._ready = False
            raise
        return self.presence.update(uid)

    def close(self) -> None:
        """Release SPI and the reset pin."""
        self.spi.close()
        if self.reset is not None:
            self.reset.close()
