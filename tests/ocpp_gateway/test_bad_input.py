"""Bad input on every topic the gateway subscribes: it says what was wrong and keeps running."""

from __future__ import annotations

import json

import pytest

from tests.ocpp_gateway.conftest import Rig
from voltbus_common import channels as ch

METER_OK = {"energy_wh": 1.0, "power_w": 0.0, "current_a": [0.0], "voltage_v": [230.0]}


@pytest.mark.parametrize(("channel", "connector", "raw", "reason"), [
    (ch.PILOT, "1", b"not json", "Invalid JSON"),
    (ch.PILOT, "1", b'{"state": "X"}', "state: Input should be"),
    (ch.PILOT, "9", b'{"state": "B"}', "unknown connector 9"),
    (ch.PILOT, "abc", b'{"state": "B"}', "'abc' is not a connector number"),
    (ch.METER, "1", json.dumps({**METER_OK, "energy_wh": -5}).encode(),
     "energy_wh: Input should be greater than or equal to 0"),
    (ch.METER, "1", json.dumps({**METER_OK, "power_w": "lots"}).encode(), "power_w"),
    (ch.METER, "1", json.dumps({**METER_OK, "current_a": [1.0, 2.0]}).encode(),
     "current_a must hold 1 or 3 phase values"),
    (ch.METER, "2", json.dumps(METER_OK).encode(), "unknown connector 2"),
    (ch.RELAY, "1", b'{"closed": "maybe"}', "closed"),
    (ch.RELAY, "3", b'{"closed": true}', "unknown connector 3"),
    (ch.HW_ERROR, "1", b'{"code": "Melted"}', "code: Input should be"),
    (ch.HW_ERROR, "4", b'{"code": "NoError"}', "unknown connector 4"),
    (ch.RFID, None, b'{"id_tag": "has space"}', "id_tag: String should match pattern"),
    (ch.RFID, None, b'{"id_tag": "' + b"1" * 37 + b'"}', "id_tag: String should have at most 36"),
    (ch.RFID, None, b"[]", "payload"),
])
async def test_bad_hardware_message_is_rejected_and_gateway_keeps_running(
        rig: Rig, channel: ch.Channel, connector: str | None, raw: bytes, reason: str) -> None:
    rig.pilot("A")
    await rig.start_gateway()
    await rig.status("Available")
    args = {"connector": connector} if connector else {}
    topic = channel.filter(rig.broker.root, station=rig.id, **args)
    rig.hw.publish_raw(topic, raw, qos=1)
    note = await rig.wait_rejected(reason)
    assert note.topic == topic
    rig.pilot("B")
    await rig.status("Preparing")


@pytest.mark.parametrize(("connector", "raw", "request_id", "command", "reason"), [
    ("1", b"not json", None, None, "Invalid JSON"),
    ("1", b'{"command": "fly", "request_id": "a"}', "a", None, "command: Input should be"),
    ("1", b'{"command": "start", "request_id": "b"}', "b", "start",
     "command 'start' needs field 'id_tag'"),
    ("1", b'{"command": "set_current_limit", "amps": 500, "request_id": "c"}', "c",
     "set_current_limit", "amps: Input should be less than or equal to 100"),
    ("1", b'{"command": "set_current_limit", "amps": "x", "request_id": "d"}', "d",
     "set_current_limit", "amps"),
    ("7", b'{"command": "stop", "request_id": "e"}', "e", "stop", "unknown connector 7"),
    ("1", b'{"command": "stop", "request_id": "f"}', "f", "stop",
     "no transaction running on connector 1"),
    ("0", b'{"command": "start", "id_tag": "T", "request_id": "g"}', "g", "start",
     "connector 0 is the whole station"),
    ("1", b'{"command": "set_current_limit", "amps": 40, "request_id": "h"}', "h",
     "set_current_limit", "above the station maximum 16 A"),
])
async def test_bad_command_is_answered_with_the_reason(
        rig: Rig, connector: str, raw: bytes, request_id: str | None, command: str | None,
        reason: str) -> None:
    rig.pilot("A")
    await rig.start_gateway()
    await rig.status("Available")
    topic = ch.COMMAND.topic(rig.broker.root, station=rig.id, connector=connector)
    rig.op.publish_raw(topic, raw, qos=1)
    result = await rig.wait("result")
    assert result.request_id == request_id
    assert (result.command.value if result.command else None) == command
    assert result.status.value == "Rejected"
    assert reason in result.reason
    # Still serving: a valid command gets its answer.
    rig.command(1, command="disable_charging", request_id="ok")
    done = await rig.wait("result", lambda p: p.request_id == "ok")
    assert done.status.value == "Accepted"


async def test_command_on_a_non_numeric_connector_is_rejected(rig: Rig) -> None:
    rig.pilot("A")
    await rig.start_gateway()
    await rig.status("Available")
    topic = ch.COMMAND.topic(rig.broker.root, station=rig.id, connector="x")
    rig.op.publish_raw(topic, b'{"command": "stop", "request_id": "i"}', qos=1)
    note = await rig.wait_rejected("connector 'x' is not a number")
    assert note.topic == topic


async def test_retained_command_is_not_replayed_at_start(rig: Rig) -> None:
    """A command someone published with retain would otherwise run at every restart."""
    rig.pilot("A")
    topic = ch.COMMAND.topic(rig.broker.root, station=rig.id, connector=1)
    rig.op.publish_raw(topic, b'{"command": "disable_charging", "request_id": "r"}', qos=1,
                       retain=True)
    assert await rig.op.drain()
    await rig.start_gateway()
    result = await rig.wait("result", lambda p: p.request_id == "r")
    assert result.status.value == "Rejected"
    assert "retained" in result.reason
    charging = await rig.wait("charging")
    assert charging.enabled is True
    rig.op.publish_raw(topic, b"", qos=1, retain=True)  # clear it from the broker
