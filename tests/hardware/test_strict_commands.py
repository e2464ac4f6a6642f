"""Type-confused commands never actuate (issue 15): strict fields, rejected on the bus with why."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import Watch, rig
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.channels import PayloadError
from voltbus_common.enums import PilotState, ServiceState
from voltbus_common.models import SimPlug

CONFUSED_BOOLS: list[object] = ["yes", 1, "on", 1.0, "true", 0, "false", None, [], {}]
CONFUSED_NUMBERS: list[object] = ["16", True, False, "NaN", [16], {"v": 16}]
CONFUSED_INTS: list[object] = [5.0, "5", True]

# Every actuator or command field in the contract, with the values that must not pass for it.
FIELDS: list[tuple[ch.Channel, dict[str, object], str, list[object]]] = [  # type: ignore[type-arg]
    (ch.RELAY_SET, {}, "closed", CONFUSED_BOOLS),
    (ch.CURRENT_LIMIT_SET, {}, "amps", CONFUSED_NUMBERS),
    (ch.LED_SET, {"color": "green", "pattern": "solid"}, "intensity_pct", CONFUSED_INTS),
    (ch.LED_SET, {"color": "green", "pattern": "blink"}, "blink_repeat", CONFUSED_INTS),
    (ch.LED_SET, {"color": "green"}, "pattern", [1, True, "SOLID"]),
    (ch.LED_SET, {"pattern": "solid"}, "color", [1, True, None]),
    (ch.LOCK_SET, {}, "locked", CONFUSED_BOOLS),
    (ch.COMMAND, {"command": "set_current_limit"}, "amps", CONFUSED_NUMBERS),
    (ch.COMMAND, {"command": "change_availability"}, "operative", CONFUSED_BOOLS),
    (ch.COMMAND, {"command": "start"}, "id_tag", [1234, True]),
    (ch.ENERGY_LIMIT, {}, "amps", CONFUSED_NUMBERS),
    (ch.ENERGY_MODE_SET, {"mode": "now"}, "priority", CONFUSED_INTS),
    (ch.ENERGY_MODE_SET, {"mode": "plan"}, "plan_energy_wh", CONFUSED_NUMBERS),
    (ch.SIM_PLUG, {}, "plugged", CONFUSED_BOOLS),
    (ch.SIM_EV, {}, "max_current_a", CONFUSED_NUMBERS),
    (ch.SIM_EV, {}, "phases", [3.0, "3", True]),
    (ch.SIM_EV, {}, "full", [v for v in CONFUSED_BOOLS if v is not None]),
    (ch.SIM_TAP, {}, "id_tag", [1234, True]),
]
CASES = [(c, base, name, value) for c, base, name, values in FIELDS for value in values]


@pytest.mark.parametrize(("channel", "base", "name", "value"), CASES,
                         ids=[f"{c.pattern.split('/', 2)[-1]}.{n}={v!r}" for c, _, n, v in CASES])
def test_type_confused_command_fields_are_invalid(channel: ch.Channel, base: dict[str, object],
                                                  name: str, value: object) -> None:
    with pytest.raises(PayloadError) as caught:
        channel.decode(json.dumps({**base, name: value}).encode())
    assert name in str(caught.value)


@pytest.mark.parametrize(("channel", "raw"), [
    (ch.RELAY_SET, {"closed": True}), (ch.RELAY_SET, {"closed": False}),
    (ch.CURRENT_LIMIT_SET, {"amps": 16}), (ch.CURRENT_LIMIT_SET, {"amps": 6.5}),
    (ch.LED_SET, {"color": "red", "pattern": "blink", "intensity_pct": 50, "blink_repeat": 3}),
    (ch.SIM_EV, {"phases": 1, "max_current_a": 10, "full": False}),
    (ch.COMMAND, {"command": "set_current_limit", "amps": 10}),
    (ch.LOCK_SET, {"locked": True}),
])
def test_well_typed_commands_still_pass(channel: ch.Channel, raw: dict[str, object]) -> None:
    assert channel.decode(json.dumps(raw).encode()) is not None  # a JSON integer is a number


async def test_confused_relay_set_never_closes_the_relay_of_the_real_service(
    mosquitto: Broker, station: str
) -> None:
    """`python -m voltbus_hardware` with the simulator: each confused value is rejected with
    its topic and reason, the relay stays open and no current flows; `true` then closes it."""
    env = {**os.environ, **mosquitto.env("hardware"), "VOLTBUS_STATIONS": station,
           "VOLTBUS_METER_INTERVAL_S": "0.1", "VOLTBUS_POLL_INTERVAL_S": "0.05"}
    watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
    gateway = Bus(mosquitto.settings("gateway"), station=station, service=None)
    status = Watch(watcher, ch.SERVICE_STATUS, service="hardware")
    pilots, relays, meters = Watch(watcher, ch.PILOT), Watch(watcher, ch.RELAY), Watch(watcher,
                                                                                        ch.METER)
    rejected = Watch(watcher, ch.SERVICE_REJECTED, service="hardware")
    tasks = [asyncio.create_task(b.run()) for b in (watcher, gateway)]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "voltbus_hardware",
                                                env=env, stderr=subprocess.PIPE)
    topic = ch.RELAY_SET.topic(mosquitto.root, station=station, connector=1)
    try:
        await watcher.wait_connected(5)
        await gateway.wait_connected(5)
        await status.until(lambda m: m.payload is ServiceState.ONLINE, within=15)
        watcher.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await pilots.until(lambda m: m.payload.state is PilotState.B)
        relays.drain()
        for value in ["yes", 1, "on", 1.0, "true", [True]]:
            gateway.publish_raw(topic, json.dumps({"closed": value}).encode(), qos=1)
            note = await rejected.next()
            assert note.payload.topic == topic
            assert note.payload.reason.startswith("closed: Input should be a valid boolean")
        for raw in (b"1", b'"on"', b"true"):  # not even an object
            gateway.publish_raw(topic, raw, qos=1)
            assert "payload" in (await rejected.next()).payload.reason
        meters.drain()
        reading = await meters.next()
        await asyncio.sleep(0.3)
        assert not [m for m in relays.drain() if m.payload.closed]
        assert reading.payload.power_w == 0
        assert all(m.payload.power_w == 0 for m in meters.drain())
        gateway.publish_raw(topic, b'{"closed": true}', qos=1)  # the service still obeys
        await relays.until(lambda m: m.payload.closed)
        await meters.until(lambda m: m.payload.power_w > 0)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert "Traceback" not in stderr


async def test_confused_sim_plug_does_not_plug_in(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station) as r:
        for value in ("yes", 1, 1.0):
            r.send_raw(ch.SIM_PLUG, json.dumps({"plugged": value}).encode(), connector=1)
            note = await r.watches["rejected"].next()
            assert note.payload.reason.startswith("plugged: Input should be a valid boolean")
        await asyncio.sleep(0.2)
        assert not r.sim().plugged
