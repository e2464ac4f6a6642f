"""The simulator through the whole service on the real broker: a session walk, each sim command."""

from __future__ import annotations

import pytest

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import rig
from voltbus_common import channels as ch
from voltbus_common.enums import ChargePointErrorCode, LedPattern, PilotState, ServiceState
from voltbus_common.models import (
    CurrentLimitCommand,
    LedCommand,
    RelayCommand,
    SimEv,
    SimFault,
    SimPlug,
    SimTap,
)
from voltbus_hardware.drivers.base import Rgb
from voltbus_hardware.drivers.simulated import SimBuzzer, SimLed

P = PilotState


async def test_initial_state_is_published_retained(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station, connectors=2) as r:
        w = r.watches
        assert (await w["status"].next()).payload is ServiceState.ONLINE
        pilots = {(await w["pilot"].next()).connector for _ in range(2)}
        relays = [await w["relay"].next() for _ in range(2)]
        errors = [await w["error"].next() for _ in range(2)]
        meter = await w["meter"].next()
    assert pilots == {1, 2}
    assert all(m.payload.closed is False and m.retain is False for m in relays)
    assert {e.payload.code for e in errors} == {ChargePointErrorCode.NO_ERROR}
    assert meter.payload.energy_wh > 100_000  # a realistic register, not zero
    assert meter.payload.power_w == 0


async def test_session_walk(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station) as r:
        w = r.watches
        await w["pilot"].until(lambda m: m.payload.state is P.A)
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is P.B)

        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await w["relay"].until(lambda m: m.payload.closed)
        await w["pilot"].until(lambda m: m.payload.state is P.C)
        first = await w["meter"].until(lambda m: m.payload.power_w > 0)
        assert first.payload.current_a == [16.0, 16.0, 16.0]  # EV default 16 A, 3 phases
        assert first.payload.voltage_v == [230.0, 230.0, 230.0]
        assert first.payload.power_w == pytest.approx(3 * 16 * 230)
        later = await w["meter"].until(
            lambda m: m.payload.energy_wh >= first.payload.energy_wh + 1.0)
        assert later.payload.energy_wh > first.payload.energy_wh

        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=10), connector=1)
        limited = await w["meter"].until(lambda m: m.payload.current_a[0] == 10.0)
        assert limited.payload.power_w == pytest.approx(3 * 10 * 230)

        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=0), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is P.B)  # paused: EV waits
        paused = await w["meter"].until(lambda m: m.payload.power_w == 0)
        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=32), connector=1)
        await w["meter"].until(lambda m: m.payload.current_a[0] == 16.0)  # EV max now binds
        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=4), connector=1)  # below 6 A
        note = await w["rejected"].next()
        assert "charging paused" in note.payload.reason
        await w["meter"].until(lambda m: m.payload.power_w == 0)  # applied the safe way
        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=12), connector=1)
        await w["meter"].until(lambda m: m.payload.current_a[0] == 12.0)

        r.send(ch.SIM_PLUG, SimPlug(plugged=False), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is P.A)
        await w["relay"].until(lambda m: not m.payload.closed)  # safety: unplug opens
        stopped = await w["meter"].until(lambda m: m.payload.power_w == 0)
        again = await w["meter"].next()
    assert stopped.payload.energy_wh > paused.payload.energy_wh
    assert again.payload.energy_wh == stopped.payload.energy_wh  # no current, no energy


async def test_sim_ev_max_current_phases_and_full_battery(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station) as r:
        w = r.watches
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is P.B)
        r.send(ch.SIM_EV, SimEv(max_current_a=8, phases=1), connector=1)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        one = await w["meter"].until(lambda m: m.payload.power_w > 0)
        assert one.payload.current_a == [8.0, 0.0, 0.0]
        assert one.payload.power_w == pytest.approx(8 * 230)
        w["relay"].drain()

        r.send(ch.SIM_EV, SimEv(full=True), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is P.B)  # SuspendedEV-like
        full = await w["meter"].until(lambda m: m.payload.power_w == 0)
        assert full.payload.current_a == [0.0, 0.0, 0.0]
        relay_msgs = [m for m in w["relay"].drain() if not m.payload.closed]
        assert relay_msgs == []  # the relay stays closed: the EV just stopped drawing

        r.send(ch.SIM_EV, SimEv(full=False, phases=3), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is P.C)
        back = await w["meter"].until(lambda m: m.payload.power_w > 0)
    assert back.payload.current_a == [8.0, 8.0, 8.0]


async def test_sim_tap_publishes_rfid_once_and_beeps(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station) as r:
        r.send(ch.SIM_TAP, SimTap(id_tag="04A1B2C3"))
        seen = await r.watches["rfid"].next()
        buzzer = r.station.buzzer
        r.send(ch.SIM_TAP, SimTap(id_tag="DEADBEEF"))
        second = await r.watches["rfid"].next()
    assert (seen.payload.id_tag, seen.payload.reader) == ("04A1B2C3", "sim")
    assert seen.retain is False
    assert second.payload.id_tag == "DEADBEEF"
    assert isinstance(buzzer, SimBuzzer)
    assert buzzer.beeps == 2


async def test_ground_failure_gives_pilot_f_error_and_opens_relay(
    mosquitto: Broker, station: str
) -> None:
    async with rig(mosquitto, station) as r:
        w = r.watches
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is P.B)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await w["relay"].until(lambda m: m.payload.closed)
        r.send(ch.SIM_FAULT, SimFault(code=ChargePointErrorCode.GROUND_FAILURE, info="RCD"),
               connector=1)
        err = await w["error"].until(lambda m: m.payload.code != "NoError")
        await w["pilot"].until(lambda m: m.payload.state is P.F)
        await w["relay"].until(lambda m: not m.payload.closed)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)  # refused while F
        refused = await w["rejected"].next()
        r.send(ch.SIM_FAULT, SimFault(code=ChargePointErrorCode.NO_ERROR), connector=1)
        cleared = await w["error"].until(lambda m: m.payload.code == "NoError")
        await w["pilot"].until(lambda m: m.payload.state is P.B)
    assert (err.payload.code, err.payload.info) == (ChargePointErrorCode.GROUND_FAILURE, "RCD")
    assert "pilot is F" in refused.payload.reason
    assert cleared.payload.info is None


async def test_meter_fault_stops_readings_then_recovers(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station) as r:
        w = r.watches
        before = await w["meter"].next()
        r.send(ch.SIM_FAULT, SimFault(code=ChargePointErrorCode.POWER_METER_FAILURE),
               connector=1)
        err = await w["error"].until(lambda m: m.payload.code != "NoError")
        w["meter"].drain()
        r.sim().advance()
        with pytest.raises(TimeoutError):  # never a made-up reading while the meter is down
            await w["meter"].next(within=0.5)
        r.send(ch.SIM_FAULT, SimFault(code=ChargePointErrorCode.NO_ERROR), connector=1)
        await w["error"].until(lambda m: m.payload.code == "NoError")
        after = await w["meter"].next()
    assert err.payload.code is ChargePointErrorCode.POWER_METER_FAILURE
    assert after.payload.energy_wh == before.payload.energy_wh


async def test_led_command_reaches_the_led(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station, connectors=2) as r:
        r.send(ch.LED_SET, LedCommand(color="#00ff80", pattern=LedPattern.BLINK), connector=2)
        r.send(ch.LED_SET, LedCommand(color="blue", pattern=LedPattern.SOLID), connector=1)
        r.send(ch.SIM_TAP, SimTap(id_tag="SYNC"))  # handled after the LED commands
        await r.watches["rfid"].next()
        led1, led2 = r.station.connectors[1].led, r.station.connectors[2].led
    assert isinstance(led1, SimLed)
    assert isinstance(led2, SimLed)
    assert (led2.color, led2.pattern) == (Rgb(0, 255, 128), LedPattern.BLINK)
    assert (led1.color, led1.pattern) == (Rgb(0, 0, 255), LedPattern.SOLID)
