"""Card readers against protocol-level peers: MFRC522 registers over SPI, PN532 frames on a pty,
a keyboard wedge's evdev events. Tags are upper-case hex; a held card reports once."""

from __future__ import annotations

import pytest

from tests.fixtures.mosquitto import Broker
from tests.fixtures.rfid_peers import KeyboardWedge, Mfrc522Chip, Pn532Board
from tests.hardware.helpers import rig
from voltbus_common.enums import CardType, ChargePointErrorCode
from voltbus_hardware.drivers.base import DeviceUnavailable
from voltbus_hardware.drivers.rfid_common import Presence
from voltbus_hardware.drivers.rfid_keyboard import KeyboardReader
from voltbus_hardware.drivers.rfid_mfrc522 import Mfrc522Reader
from voltbus_hardware.drivers.rfid_pn532 import Pn532Reader, UartTransport
from voltbus_hardware.drivers.simulated import SimRfid
from voltbus_hardware.registry import simulated_station


def test_presence_reports_once_and_tolerates_a_missed_poll() -> None:
    p = Presence(gone_after=2)
    seen = [p.update(x) for x in ["04A1", "04A1", None, "04A1", None, None, "04A1", "BEEF"]]
    assert seen == ["04A1", None, None, None, None, None, "04A1", "BEEF"]


@pytest.mark.parametrize("uid", ["04a1b2c3", "04112233445566"])
async def test_mfrc522_reads_4_and_7_byte_uids_once(mfrc522_chip: Mfrc522Chip, uid: str) -> None:
    reader = Mfrc522Reader(mfrc522_chip)
    assert await reader.read_tag() is None
    mfrc522_chip.card = bytes.fromhex(uid)
    assert await reader.read_tag() == uid.upper()
    assert [await reader.read_tag() for _ in range(5)] == [None] * 5  # held: once
    mfrc522_chip.card = None
    assert [await reader.read_tag() for _ in range(2)] == [None, None]
    mfrc522_chip.card = bytes.fromhex(uid)
    assert await reader.read_tag() == uid.upper()  # presented again


async def test_mfrc522_missing_chip_and_spi_error(mfrc522_chip: Mfrc522Chip) -> None:
    mfrc522_chip.regs[0x37] = 0x00  # nothing on the bus answers with a version
    with pytest.raises(DeviceUnavailable, match="no MFRC522"):
        await Mfrc522Reader(mfrc522_chip).read_tag()
    mfrc522_chip.regs[0x37] = 0x92
    reader = Mfrc522Reader(mfrc522_chip)
    await reader.read_tag()
    mfrc522_chip.broken = True
    with pytest.raises(DeviceUnavailable) as caught:
        await reader.read_tag()
    assert caught.value.code is ChargePointErrorCode.READER_FAILURE


async def test_pn532_uart_reads_once_per_presentation(pn532_board: Pn532Board) -> None:
    reader = Pn532Reader(UartTransport(pn532_board.port), timeout_s=0.3)
    assert await reader.read_tag() is None
    assert pn532_board.commands[:2] == [0x14, 0x32]  # SAMConfiguration, RFConfiguration
    pn532_board.card = bytes.fromhex("deadbeef")
    assert await reader.read_tag() == "DEADBEEF"
    assert await reader.read_tag() is None
    pn532_board.silent = True
    with pytest.raises(DeviceUnavailable, match="no answer"):
        await reader.read_tag()
    pn532_board.silent = False
    assert await reader.read_tag() is None  # re-initialised; the held card was already seen
    reader.close()


async def test_keyboard_wedge_hex_and_decimal(keyboard_wedge: KeyboardWedge) -> None:
    reader = KeyboardReader(keyboard_wedge.path)
    assert await reader.read_tag() is None
    keyboard_wedge.type_id("04a1b2c3")
    assert await reader.read_tag() == "04A1B2C3"
    decimal = KeyboardReader(keyboard_wedge.path, number_format="decimal")
    reader.close()
    keyboard_wedge.type_id("0077707971")  # a 10-digit decimal UID, as many wedges type it
    assert await decimal.read_tag() == f"{77707971:08X}"
    decimal.close()


async def test_keyboard_device_missing_is_reader_failure(tmp_path: object) -> None:
    reader = KeyboardReader("/dev/input/by-id/nope-event-kbd")
    with pytest.raises(DeviceUnavailable) as caught:
        await reader.read_tag()
    assert caught.value.code is ChargePointErrorCode.READER_FAILURE


async def test_reader_failure_reaches_the_bus_and_clears(
    mfrc522_chip: Mfrc522Chip, mosquitto: Broker, station: str
) -> None:
    hardware = simulated_station(station, 2)
    hardware.readers = [Mfrc522Reader(mfrc522_chip, name="front")]
    async with rig(mosquitto, station, hardware=hardware) as r:
        w = r.watches
        mfrc522_chip.card = bytes.fromhex("04a1b2c3")
        seen = await w["rfid"].next()
        mfrc522_chip.broken = True
        errors = {(await w["error"].until(lambda m: m.payload.code == "ReaderFailure")).connector
                  for _ in range(2)}
        mfrc522_chip.broken = False
        await w["error"].until(lambda m: m.payload.code == "NoError", within=10)
    assert (seen.payload.id_tag, seen.payload.reader) == ("04A1B2C3", "front")
    assert seen.payload.card_type is CardType.ISO14443  # an MFRC522 reads ISO 14443A cards
    assert errors == {1, 2}  # a station's reader serves every connector


async def test_the_reader_kind_is_the_card_type_on_the_bus(mosquitto: Broker, station: str) -> None:
    """A reader configured for vicinity cards says ISO15693 on hw/rfid (the idToken type OCPP
    2.0.1 sends); others say ISO14443. A 36-character id (2.0.1's idToken) is published too."""
    hardware = simulated_station(station, 1)
    vicinity, proximity = SimRfid("vicinity", CardType.ISO15693), SimRfid("proximity")
    hardware.readers = [vicinity, proximity]
    async with rig(mosquitto, station, hardware=hardware) as r:
        w = r.watches
        vicinity.present_card("E0040150A1B2C3D4")
        first = await w["rfid"].next()
        proximity.present_card("C" * 36)
        second = await w["rfid"].next()
    assert (first.payload.id_tag, first.payload.reader, first.payload.card_type) == (
        "E0040150A1B2C3D4", "vicinity", CardType.ISO15693)
    assert (second.payload.id_tag, second.payload.card_type) == ("C" * 36, CardType.ISO14443)
