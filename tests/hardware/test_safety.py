"""The safety rules, enforced by the controller for every driver (here: the simulator)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import FAST, Rig, rig
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import ChargePointErrorCode, PilotState
from voltbus_common.models import CurrentLimitCommand, RelayCommand, SimFault, SimPlug
from voltbus_hardware.registry import simulated_station


async def _charging(r: Rig, connector: int = 1) -> None:
    r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=connector)
    await r.watches["pilot"].until(lambda m: m.payload.state is PilotState.B
                                   and m.connector == connector)
    r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=connector)
    await r.watches["relay"].until(lambda m: m.payload.closed and m.connector == connector)


async def test_pilot_e_opens_relay(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station) as r:
        await _charging(r)
        r.send(ch.SIM_FAULT, SimFault(code=ChargePointErrorCode.EV_COMMUNICATION_ERROR),
               connector=1)
        await r.watches["pilot"].until(lambda m: m.payload.state is PilotState.E)
        opened = await r.watches["relay"].until(lambda m: not m.payload.closed)
        assert not r.sim().relay_closed
    assert opened.connector == 1


async def test_unplug_opens_relay_only_on_that_connector(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station, connectors=2) as r:
        await _charging(r, 1)
        await _charging(r, 2)
        r.send(ch.SIM_PLUG, SimPlug(plugged=False), connector=2)
        opened = await r.watches["relay"].until(lambda m: not m.payload.closed)
        await asyncio.sleep(0.2)
        assert r.sim(1).relay_closed
        assert not r.sim(2).relay_closed
    assert opened.connector == 2


async def test_overcurrent_beyond_margin_for_too_long_opens_relay(
    mosquitto: Broker, station: str
) -> None:
    async with rig(mosquitto, station) as r:
        await _charging(r)
        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=10), connector=1)
        await r.watches["meter"].until(lambda m: m.payload.current_a[0] == 10)
        r.sim().force_current(10.9)  # within the 1 A margin: tolerated
        await r.watches["meter"].until(lambda m: m.payload.current_a[0] == 10.9)
        await asyncio.sleep(FAST.overcurrent_time_s * 2)
        assert r.sim().relay_closed
        r.sim().force_current(14)  # beyond limit + margin
        loop = asyncio.get_running_loop()
        over_at = loop.time()
        opened = await r.watches["relay"].until(lambda m: not m.payload.closed)
        tripped_after = loop.time() - over_at
        err = await r.watches["error"].until(lambda m: m.payload.code != "NoError")
        # The gateway may close again after the fault (it decides); the fault then clears.
        r.sim().force_current(None)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        cleared = await r.watches["error"].until(lambda m: m.payload.code == "NoError")
    assert tripped_after >= FAST.overcurrent_time_s
    assert err.payload.code is ChargePointErrorCode.OVER_CURRENT_FAILURE
    assert "14.0 A" in (err.payload.info or "")
    assert opened.connector == 1
    assert cleared.payload.code is ChargePointErrorCode.NO_ERROR


async def test_brief_overcurrent_does_not_trip(mosquitto: Broker, station: str) -> None:
    cfg = dataclasses.replace(FAST, overcurrent_time_s=1.0)
    async with rig(mosquitto, station, config=cfg) as r:
        await _charging(r)
        r.sim().force_current(40)
        await r.watches["meter"].until(lambda m: m.payload.current_a[0] == 40)
        r.sim().force_current(None)
        await r.watches["meter"].until(lambda m: m.payload.current_a[0] == 16)
        await asyncio.sleep(0.3)
        assert r.sim().relay_closed


async def _gateway_goes_away(r: Rig, broker: Broker, station: str) -> None:
    gateway = Bus(broker.settings("gateway"), station=station, service="gateway")
    task = asyncio.create_task(gateway.run())
    await gateway.wait_connected(5)
    await asyncio.sleep(0.1)
    task.cancel()  # publishes `offline` on service/gateway/status, as its Last Will would
    await asyncio.gather(task, return_exceptions=True)


async def test_gateway_last_will_opens_relay(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station) as r:
        await _charging(r)
        await _gateway_goes_away(r, mosquitto, station)
        opened = await r.watches["relay"].until(lambda m: not m.payload.closed)
    assert opened.connector == 1


async def test_gateway_loss_can_be_configured_to_finish_the_session(
    mosquitto: Broker, station: str
) -> None:
    cfg = dataclasses.replace(FAST, gateway_loss_opens_relay=False)
    async with rig(mosquitto, station, config=cfg) as r:
        await _charging(r)
        await _gateway_goes_away(r, mosquitto, station)
        await r.watches["meter"].until(lambda m: m.payload.power_w > 0)
        await asyncio.sleep(0.3)
        assert r.sim().relay_closed


async def test_a_lost_gateway_keeps_the_relay_closed_for_the_hold_then_it_opens(
    mosquitto: Broker, station: str
) -> None:
    """A gateway that is not back within gateway_loss_relay_hold_s: the relay opens then (not
    at the confirmation), and the EVSE charged on meanwhile."""
    cfg = dataclasses.replace(FAST, gateway_loss_confirm_s=0.2, gateway_loss_relay_hold_s=1.5)
    loop = asyncio.get_running_loop()
    async with rig(mosquitto, station, config=cfg) as r:
        await _charging(r)
        await _gateway_goes_away(r, mosquitto, station)
        lost_at = loop.time()
        await asyncio.sleep(1.0)  # past the confirmation, within the hold
        assert r.sim().relay_closed
        drawn = await r.watches["meter"].until(lambda m: m.payload.power_w > 0)
        opened = await r.watches["relay"].until(lambda m: not m.payload.closed, within=5)
        held_s = loop.time() - lost_at
        assert not r.sim().relay_closed
    assert drawn.connector == opened.connector == 1
    assert 1.4 <= held_s <= 3.0, held_s


async def test_a_gateway_back_within_the_hold_finds_the_relay_still_closed(
    mosquitto: Broker, station: str
) -> None:
    cfg = dataclasses.replace(FAST, gateway_loss_confirm_s=0.2, gateway_loss_relay_hold_s=1.0)
    async with rig(mosquitto, station, config=cfg) as r:
        await _charging(r)
        await _gateway_goes_away(r, mosquitto, station)
        await asyncio.sleep(0.5)
        gateway = Bus(mosquitto.settings("gateway"), station=station, service="gateway")
        task = asyncio.create_task(gateway.run())  # `online` again: as its supervisor restarts it
        try:
            await gateway.wait_connected(5)
            await asyncio.sleep(1.5)  # past the hold
            opened = [m for m in r.watches["relay"].drain() if not m.payload.closed]
            assert r.sim().relay_closed
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert opened == []


async def test_the_pilot_carries_the_plug_in_identity(mosquitto: Broker, station: str) -> None:
    """plugged_at: set when the pilot leaves A, the same while the cable stays in (B, C, B),
    gone with the cable, a new one for the next plug-in."""
    async with rig(mosquitto, station) as r:
        await _charging(r)  # B, then the EV draws (C) once the relay is closed
        first = r.watches["pilot"].seen[-1].payload.plugged_at
        await r.watches["pilot"].until(lambda m: m.payload.state is PilotState.C)
        r.send(ch.RELAY_SET, RelayCommand(closed=False), connector=1)
        back = await r.watches["pilot"].until(lambda m: m.payload.state is PilotState.B)
        r.send(ch.SIM_PLUG, SimPlug(plugged=False), connector=1)
        out = await r.watches["pilot"].until(lambda m: m.payload.state is PilotState.A)
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        again = await r.watches["pilot"].until(lambda m: m.payload.state is PilotState.B)
        states = [(m.payload.state, m.payload.plugged_at) for m in r.watches["pilot"].seen]
    assert first is not None
    assert all(at == first for state, at in states if state is PilotState.C), states
    assert back.payload.plugged_at == first
    assert out.payload.plugged_at is None
    assert again.payload.plugged_at is not None
    assert again.payload.plugged_at > first


async def test_real_last_will_of_a_killed_gateway_opens_relay(
    own_mosquitto: Broker, station: str
) -> None:
    """The broker itself sends the Will when the gateway's connection dies without goodbye."""
    import os
    import sys

    script = (
        "import asyncio\n"
        "from voltbus_common.bus import Bus\n"
        "from voltbus_common.settings import BusSettings\n"
        f"bus = Bus(BusSettings(), station={station!r}, service='gateway')\n"
        "asyncio.run(bus.run())\n"
    )
    env = {**os.environ, **own_mosquitto.env("gateway"), "VOLTBUS_MQTT_KEEPALIVE_S": "5"}
    async with rig(own_mosquitto, station) as r:
        await _charging(r)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, env=env)
        try:
            w = Bus(own_mosquitto.settings("operator"), station=station, service=None)
            from tests.hardware.helpers import Watch
            gw_status = Watch(w, ch.SERVICE_STATUS, service="gateway")
            t = asyncio.create_task(w.run())
            await gw_status.until(lambda m: m.payload == "online", within=10)
            proc.kill()  # SIGKILL: no goodbye, the broker publishes the Will
            opened = await r.watches["relay"].until(lambda m: not m.payload.closed, within=15)
            t.cancel()
            await asyncio.gather(t, return_exceptions=True)
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
    assert opened.connector == 1


class _BrokenMeter:
    """A driver with a bug: raises something that is not DeviceUnavailable."""

    calls = 0

    async def read(self) -> None:
        _BrokenMeter.calls += 1
        raise ZeroDivisionError("driver bug")


@pytest.mark.expected_errors
async def test_a_driver_bug_is_logged_and_polling_goes_on(
    mosquitto: Broker, station: str, caplog: pytest.LogCaptureFixture
) -> None:
    hardware = simulated_station(station, 2)
    hardware.connectors[1].meter = _BrokenMeter()  # type: ignore[assignment]
    async with rig(mosquitto, station, hardware=hardware) as r:
        await r.watches["meter"].until(lambda m: m.connector == 2)
        await r.watches["meter"].until(lambda m: m.connector == 2)
        await _charging(r, 2)  # commands still work
    assert _BrokenMeter.calls >= 2
    assert "connector 1 meter: unexpected error" in caplog.text
