"""PN532 over I2C against a protocol-level chip (smbus2 i2c_msg transfers, status byte, ACK and
information frames): upper-case hex UIDs, once per presentation, every fault a ReaderFailure
that clears on the next poll, and the station file builds it on an injected bus."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.pn532_i2c_peer import Pn532I2cChip
from voltbus_common.enums import ChargePointErrorCode
from voltbus_common.settings import ConfigError
from voltbus_hardware.config import load_station_file
from voltbus_hardware.drivers.base import DeviceUnavailable
from voltbus_hardware.drivers.rfid_pn532 import I2cTransport, Pn532Reader
from voltbus_hardware.registry import build_station


def reader_on(chip: Pn532I2cChip) -> Pn532Reader:
    """The real driver on I2C bus 1, its bus object being the chip."""
    return Pn532Reader(I2cTransport(1, 0x24, open_bus=chip.open), timeout_s=0.2)


@pytest.mark.parametrize("uid", ["04a1b2c3", "04112233445566"])
async def test_reads_4_and_7_byte_uids_once_per_presentation(
    pn532_i2c_chip: Pn532I2cChip, uid: str
) -> None:
    chip = pn532_i2c_chip
    reader = reader_on(chip)
    assert await reader.read_tag() is None
    assert chip.commands == [0x14, 0x32, 0x4A]  # SAMConfiguration, RFConfiguration, poll
    chip.card = bytes.fromhex(uid)
    assert await reader.read_tag() == uid.upper()
    assert [await reader.read_tag() for _ in range(5)] == [None] * 5  # held: once
    chip.card = None
    assert [await reader.read_tag() for _ in range(2)] == [None, None]
    chip.card = bytes.fromhex(uid)
    assert await reader.read_tag() == uid.upper()  # presented again
    assert chip.commands.count(0x14) == 1  # configured once, not every poll
    assert chip.bad_frames == 0  # every frame the driver wrote had good checksums
    reader.close()


async def test_one_missed_poll_is_not_a_new_presentation(pn532_i2c_chip: Pn532I2cChip) -> None:
    chip = pn532_i2c_chip
    reader = reader_on(chip)
    chip.card = bytes.fromhex("deadbeef")
    assert await reader.read_tag() == "DEADBEEF"
    chip.card = None
    assert await reader.read_tag() is None
    chip.card = bytes.fromhex("deadbeef")
    assert await reader.read_tag() is None  # the card wobbled at the field's edge
    chip.card = bytes.fromhex("cafef00d")
    assert await reader.read_tag() == "CAFEF00D"  # a different card is news at once


@pytest.mark.parametrize(("fault", "message"), [
    ("corrupt", "bad data checksum"),
    ("nack", "no ACK"),
    ("never_ready", "no answer"),
    ("absent", "Remote I/O error"),
    ("power_cycle", "not a PN532 answer"),
])
async def test_fault_is_reader_failure_then_recovers(
    pn532_i2c_chip: Pn532I2cChip, fault: str, message: str
) -> None:
    chip = pn532_i2c_chip
    reader = reader_on(chip)
    chip.card = bytes.fromhex("04a1b2c3")
    assert await reader.read_tag() == "04A1B2C3"
    if fault == "corrupt":
        chip.corrupt_next = 1
    elif fault == "power_cycle":
        chip.power_cycle()  # brown-out: the chip forgot SAMConfiguration
    else:
        setattr(chip, fault, True)
    with pytest.raises(DeviceUnavailable, match=message) as caught:
        await reader.read_tag()
    assert caught.value.code is ChargePointErrorCode.READER_FAILURE
    assert chip.closed == 1  # the bus was released
    if fault in ("nack", "never_ready", "absent"):
        setattr(chip, fault, False)
    configs = chip.commands.count(0x14)
    assert await reader.read_tag() is None  # same card still held: not reported again
    assert chip.commands.count(0x14) == configs + 1  # re-initialised after the failure
    assert chip.opened == [1, 1]  # and the bus opened again
    chip.card = None
    await reader.read_tag()
    await reader.read_tag()
    chip.card = bytes.fromhex("04a1b2c3")
    assert await reader.read_tag() == "04A1B2C3"


async def test_slow_chip_is_waited_for(pn532_i2c_chip: Pn532I2cChip) -> None:
    chip = Pn532I2cChip(busy_reads=5)  # each ACK and answer behind five "busy" status bytes
    chip.card = bytes.fromhex("04112233445566")
    assert await reader_on(chip).read_tag() == "04112233445566"


STATION = ("connectors:\n  - {evse: {type: sim}, relay: {type: sim}}\n"
           "rfid:\n  - {type: pn532, name: front, interface: i2c, i2c_bus: 3, i2c_address: 0x28}\n")


async def test_station_file_builds_pn532_on_an_injected_bus(tmp_path: Path) -> None:
    chip = Pn532I2cChip(address=0x28)
    path = tmp_path / "station.yaml"
    path.write_text(STATION)
    station = build_station(load_station_file(path), "CP1", open_i2c=chip.open)
    [reader] = station.readers
    assert isinstance(reader, Pn532Reader)
    assert reader.name == "front"
    assert chip.opened == [3]
    chip.card = bytes.fromhex("04a1b2c3")
    assert await reader.read_tag() == "04A1B2C3"  # talks to 0x28, not the default 0x24


@pytest.mark.skipif(Path("/dev/i2c-3").exists(), reason="this machine has an I2C bus 3")
def test_station_file_without_the_i2c_bus_says_why(tmp_path: Path) -> None:
    path = tmp_path / "station.yaml"
    path.write_text(STATION)
    with pytest.raises(ConfigError) as caught:  # the real smbus2.SMBus(3): no /dev/i2c-3 here
        build_station(load_station_file(path), "CP1")
    assert "cannot create rfid type 'pn532' (rfid[0])" in str(caught.value)
    assert "i2c-3" in str(caught.value)
