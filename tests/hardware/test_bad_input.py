"""Bad input on every topic the hardware service subscribes to: it says why and keeps running."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import rig
from voltbus_common import channels as ch
from voltbus_common.models import RelayCommand, SimPlug
from voltbus_hardware.controller import ControllerConfig

CASES = [
    # (channel, connector, raw payload, expected words in the reason)
    (ch.RELAY_SET, "1", b"not json", "Invalid JSON"),
    (ch.RELAY_SET, "1", b'{"closed": "maybe"}', "closed"),
    (ch.RELAY_SET, "7", b'{"closed": true}', "unknown connector 7"),
    (ch.RELAY_SET, "0", b'{"closed": false}', "unknown connector 0"),
    (ch.RELAY_SET, "x", b'{"closed": true}', "not a connector number"),
    (ch.RELAY_SET, "1", b'{"closed": true}', "refused to close: pilot is A"),
    (ch.CURRENT_LIMIT_SET, "1", b"{}", "amps: Field required"),
    (ch.CURRENT_LIMIT_SET, "1", b'{"amps": -3}', "amps"),
    (ch.CURRENT_LIMIT_SET, "1", b'{"amps": 3}', "below the 6 A a pilot can offer: charging paused"),
    (ch.CURRENT_LIMIT_SET, "1", b'{"amps": 40}', "above connector 1's rating 32 A: limited to 32"),
    (ch.CURRENT_LIMIT_SET, "9", b'{"amps": 10}', "unknown connector 9"),
    (ch.LED_SET, "1", b'{"color": "green", "pattern": "disco"}', "pattern"),
    (ch.LED_SET, "1", b'{"color": "chartreuse", "pattern": "solid"}', "unknown color"),
    (ch.LED_SET, "3", b'{"color": "red", "pattern": "solid"}', "unknown connector 3"),
    (ch.SIM_PLUG, "1", b"[]", "payload"),
    (ch.SIM_PLUG, "5", b'{"plugged": true}', "unknown connector 5"),
    (ch.SIM_EV, "1", b'{"phases": 2}', "phases"),
    (ch.SIM_EV, "1", b'{"max_current_a": 1000}', "max_current_a"),
    (ch.SIM_FAULT, "1", b'{"code": "Meltdown"}', "code"),
    (ch.SIM_TAP, None, b'{"id_tag": ""}', "id_tag"),
    (ch.SIM_TAP, None, b'{"id_tag": "04A1", "reader": "door"}', "no simulated reader"),
]


@pytest.mark.parametrize(("channel", "connector", "raw", "reason"), CASES,
                         ids=[f"{c.pattern.split('/', 2)[-1]}-{r[:20]!r}" for c, _, r, _ in CASES])
async def test_bad_input_is_rejected_with_reason(
    mosquitto: Broker, station: str, channel: ch.Channel, connector: str | None, raw: bytes,
    reason: str,
) -> None:
    async with rig(mosquitto, station) as r:
        args = {} if connector is None else {"connector": connector}
        r.send_raw(channel, raw, **args)
        note = await r.watches["rejected"].next()
        assert reason in note.payload.reason
        assert note.payload.topic == channel.filter(mosquitto.root, station=station, **args)
        # Still alive and obeying: a valid session step works.
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await r.watches["relay"].until(lambda m: m.payload.closed)
    assert r.hw_bus.invalid_count == 1


async def test_bad_gateway_status_is_rejected_and_keeps_relay(
    mosquitto: Broker, station: str
) -> None:
    async with rig(mosquitto, station, config=ControllerConfig(meter_interval_s=0.1,
                                                              poll_interval_s=0.05)) as r:
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await r.watches["relay"].until(lambda m: m.payload.closed)
        status = ch.SERVICE_STATUS.topic(mosquitto.root, station=station, service="gateway")
        gw = r.gateway
        gw.publish_raw(status, b"sleepy", qos=1)
        note = await r.watches["rejected"].next()
        await asyncio.sleep(0.1)
        assert r.sim().relay_closed  # a garbled status is not the gateway's Last Will
    assert "online/offline" in note.payload.reason
