"""Parity: a simulated station and a station of real drivers publish identical message shapes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.fixtures.modbus_slave import MeterValues, ModbusSlave
from tests.fixtures.mosquitto import Broker
from tests.fixtures.rapi_peer import RapiBoard
from tests.fixtures.rfid_peers import Mfrc522Chip
from tests.hardware.helpers import Rig, rig
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.models import RelayCommand, SimFault, SimPlug, SimTap
from voltbus_hardware.config import parse_station
from voltbus_hardware.drivers.rfid_mfrc522 import Mfrc522Reader
from voltbus_hardware.registry import build_station

HW_CHANNELS = {"pilot": ch.PILOT, "meter": ch.METER, "relay": ch.RELAY, "error": ch.HW_ERROR,
               "rfid": ch.RFID}


def shape(value: Any) -> Any:
    """JSON structure with values replaced by their types (lists by their element shape)."""
    if isinstance(value, dict):
        # plugged_at is null until the service saw the pilot leave A (the real board's walk is
        # plugged in before the service's first successful read): either is the field's shape
        return {k: "str" if k == "plugged_at" and v is None else shape(v)
                for k, v in sorted(value.items())}
    if isinstance(value, list):
        return ["list", sorted({json.dumps(shape(v)) for v in value})]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return type(value).__name__


class RawTap:
    """Raw payloads and retain flags per hardware channel of one station, off the wire."""

    def __init__(self, bus: Bus, root: str, station: str) -> None:
        self.got: dict[str, list[tuple[Any, bool]]] = {name: [] for name in HW_CHANNELS}
        self.root = root
        for name, channel in HW_CHANNELS.items():
            bus.on_raw(channel.filter(root, station=station), self._make(name), qos=1)

    def _make(self, name: str) -> Any:
        async def put(topic: str, raw: bytes, retain: bool) -> None:
            self.got[name].append((json.loads(raw), retain))
        return put


async def _walk_sim(r: Rig) -> None:
    r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
    await r.watches["pilot"].until(lambda m: m.payload.state == "B")
    r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
    await r.watches["meter"].until(lambda m: m.payload.power_w > 0)
    r.send(ch.SIM_TAP, SimTap(id_tag="04A1B2C3"))
    await r.watches["rfid"].next()
    r.send(ch.SIM_FAULT, SimFault(code="GroundFailure", info="GFI tripped"), connector=1)
    await r.watches["error"].until(lambda m: m.payload.code == "GroundFailure")


async def _walk_real(r: Rig, board: RapiBoard, chip: Mfrc522Chip) -> None:
    board.plug(True)
    await r.watches["pilot"].until(lambda m: m.payload.state == "B")
    r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
    await r.watches["meter"].next()
    chip.card = bytes.fromhex("04a1b2c3")
    await r.watches["rfid"].next()
    board.fault_state = 6
    board.announce()
    await r.watches["error"].until(lambda m: m.payload.code == "GroundFailure")


async def test_simulator_and_real_drivers_publish_the_same_shapes(
    mosquitto: Broker, station: str, rapi_board: RapiBoard, modbus_slave: ModbusSlave,
    mfrc522_chip: Mfrc522Chip,
) -> None:
    await modbus_slave.start({1: ("eastron_sdm630", MeterValues())})
    cfg = parse_station({
        "serial": {"rs485": {"port": modbus_slave.port, "baudrate": 19200, "timeout_s": 0.2}},
        "connectors": [{"evse": {"type": "openevse", "port": rapi_board.port, "timeout_s": 0.3},
                        "relay": {"type": "evse"},
                        "meter": {"type": "modbus", "model": "eastron_sdm630", "bus": "rs485",
                                  "address": 1}}]})
    real_id = station + "r"
    real = build_station(cfg, real_id)
    real.readers.append(Mfrc522Reader(mfrc522_chip, name="sim"))
    listener = Bus(mosquitto.settings("operator"), station=station, service=None)
    sim_tap = RawTap(listener, mosquitto.root, station)
    real_tap = RawTap(listener, mosquitto.root, real_id)
    task = asyncio.create_task(listener.run())
    await listener.wait_connected(5)
    try:
        async with rig(mosquitto, station) as sim_rig, \
                rig(mosquitto, real_id, hardware=real) as real_rig:
            await asyncio.gather(_walk_sim(sim_rig), _walk_real(real_rig, rapi_board,
                                                                mfrc522_chip))
            await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    for name in HW_CHANNELS:
        sim_msgs, real_msgs = sim_tap.got[name], real_tap.got[name]
        assert sim_msgs, name
        assert real_msgs, name
        sim_shapes = {json.dumps(shape(p)) for p, _ in sim_msgs}
        real_shapes = {json.dumps(shape(p)) for p, _ in real_msgs}
        assert sim_shapes == real_shapes, name
        assert {retain for _, retain in sim_msgs} == {retain for _, retain in real_msgs}, name
    sim_meter = sim_tap.got["meter"][-1][0]
    real_meter = real_tap.got["meter"][-1][0]
    assert len(sim_meter["current_a"]) == len(real_meter["current_a"]) == 3
