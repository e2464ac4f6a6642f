"""The last card through the real hardware process (issue 13): `python -m voltbus_hardware` with
a station file naming a PN532 on UART, answered at the protocol level by a simulated board on a
pty. A tap becomes the retained `hw/rfid/last`, and Home Assistant's "Last RFID tag" (the
publisher's station view fed from it) shows it, also across a restart of the hardware service
and for an HA client that connects only after it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.mosquitto import Broker
from tests.fixtures.rfid_peers import Pn532Board
from tests.fixtures.services import ServiceGroup, wait_online
from tests.homeassistant.test_publisher import Configs, home_assistant, publisher, running
from tests.homeassistant.test_with_real_gateway import (
    HomeAssistantView,
    eventually,
    remembered,
)
from voltbus_common import channels as ch
from voltbus_common.homeassistant import mirror_topic
from voltbus_common.models import RfidSeen


async def test_a_tap_on_a_pn532_reaches_hw_rfid_last_and_ha_across_a_restart(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path,
        pn532_board: Pn532Board) -> None:
    path = tmp_path / "station.yaml"
    path.write_text(
        f"id: {station}\n"
        "connectors:\n"
        "  - {evse: {type: sim}, relay: {type: sim}}\n"
        f"rfid:\n  - {{type: pn532, name: front, interface: uart, port: {pn532_board.port}}}\n")
    env = {**mosquitto.env("hardware"), "VOLTBUS_STATIONS": station,
           "VOLTBUS_STATION_FILE": str(path), "VOLTBUS_DATA_DIR": str(tmp_path / "data"),
           "VOLTBUS_POLL_INTERVAL_S": "0.1", "GPIOZERO_PIN_FACTORY": "mock"}
    hardware = services.start("hardware", env)
    await wait_online(mosquitto, station, ("hardware",))

    bus, pub = publisher(mosquitto, station, connectors=[1])
    ha = home_assistant(mosquitto, station)
    seen = Configs(ha, pub)
    last_topic = ch.RFID_LAST.topic(mosquitto.root, station=station)
    state = remembered(ha, f"{mosquitto.root}/{station}/#",
                       mirror_topic(station, root=mosquitto.root))

    def last_card() -> RfidSeen | None:
        raw = state.get(last_topic)
        return None if not raw else RfidSeen.model_validate_json(raw)

    async with running(bus, ha):
        view = HomeAssistantView(await seen.all(1), state)
        comp = view.components["last_rfid"]
        hardware_status = comp["availability"][0]["topic"]
        pn532_board.card = bytes.fromhex("04a1b2c3")
        try:
            await eventually(lambda: view.state("last_rfid") == "04A1B2C3", 10,
                             "the tap in HA")
        except AssertionError:
            raise AssertionError(services.logs()) from None
        pn532_board.card = None
        first = last_card()
        assert first is not None
        assert (first.id_tag, first.reader) == ("04A1B2C3", "front")
        attributes = json.loads(view.state_attributes("last_rfid"))
        assert (attributes["id_tag"], attributes["reader"]) == ("04A1B2C3", "front")

        # The hardware service restarts: HA shows it unavailable meanwhile, then the same card
        # (nothing cleared it); the reader is opened again and reads the next card.
        hardware = await services.restart(hardware, mosquitto, station)
        await eventually(lambda: state.get(hardware_status) == b"online", 10, "online")
        assert last_card() == first
        assert view.state("last_rfid") == "04A1B2C3"
        pn532_board.card = bytes.fromhex("deadbeef")
        await eventually(lambda: view.state("last_rfid") == "DEADBEEF", 10, "the next tap")
        second = last_card()
        assert second is not None
        assert second.ts > first.ts
        assert view.check_all() == []

    # HA (re)starting later: both the contract's retained last card and HA's view hold it.
    late = home_assistant(mosquitto, station)
    later = remembered(late, last_topic, comp["state_topic"])
    async with running(late):
        await eventually(lambda: len(later) == 2, 5, "the retained last card")
    assert RfidSeen.model_validate_json(later[last_topic]) == second
    assert json.loads(later[comp["state_topic"]])["last_rfid"]["id_tag"] == "DEADBEEF"
    assert "Traceback" not in hardware.log()
