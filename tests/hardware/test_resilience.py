"""Faults around the service: broker restart, a broker that lost its retained state, restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fixtures.mosquitto import Broker, running
from tests.fixtures.services import ServiceGroup
from tests.hardware.helpers import FAST, Watch, rig
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import PilotState, ServiceState
from voltbus_common.models import RelayCommand, SimPlug
from voltbus_hardware.registry import simulated_station
from voltbus_hardware.service import serve_station
from voltbus_hardware.sim_registers import SimRegisterStore


@pytest.mark.expected_errors  # aiomqtt/paho may log "add_writer ... Bad file descriptor" from
# asyncio for a socket closed by the restart; it is the library's, and harmless (reported)
async def test_broker_restart_keeps_the_service_working(own_mosquitto: Broker,
                                                        station: str) -> None:
    async with rig(own_mosquitto, station) as r:
        await r.watches["pilot"].until(lambda m: m.payload.state is PilotState.A)
        own_mosquitto.restart()
        # A command sent while a subscriber is still reconnecting is gone (not retained), as
        # with any MQTT client: send it again until the service reacts.
        for _ in range(20):
            r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
            try:
                await r.watches["pilot"].until(lambda m: m.payload.state is PilotState.B,
                                               within=1)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("the service never came back")
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await r.watches["meter"].until(lambda m: m.payload.power_w > 0, within=10)


async def test_state_is_published_again_after_reconnect(own_mosquitto: Broker,
                                                        station: str) -> None:
    """A broker without its retained store (new volume) still learns pilot, relay and error."""
    async with rig(own_mosquitto, station) as r:
        await r.watches["error"].next()
        own_mosquitto.stop()
        for path in (own_mosquitto.directory / "data").glob("*"):
            path.unlink()  # the retained store is gone
        own_mosquitto.start()
        await r.hw_bus.wait_connected(20)
        late = Bus(own_mosquitto.settings("operator"), station=station, service=None)
        pilots, relays = Watch(late, ch.PILOT), Watch(late, ch.RELAY)
        errors = Watch(late, ch.HW_ERROR)
        task = asyncio.create_task(late.run())
        try:
            pilot, relay, error = await asyncio.gather(pilots.next(10), relays.next(10),
                                                       errors.next(10))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert pilot.payload.state is PilotState.A
    assert relay.payload.closed is False
    assert error.payload.code == "NoError"


async def test_simulated_registers_survive_a_restart(mosquitto: Broker, station: str,
                                                     tmp_path: Path) -> None:
    store = SimRegisterStore(tmp_path / "hardware" / "sim-registers.json")
    first = simulated_station(station, 1)
    first.connectors[1].evse.sim.energy_wh = 4242.0  # type: ignore[attr-defined]
    bus = Bus(mosquitto.settings("hardware"), station=station, service="hardware")
    task = asyncio.create_task(serve_station(bus, first, FAST, registers=store))
    await bus.wait_connected(5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    second = simulated_station(station, 1)
    store.restore(second)
    assert second.connectors[1].evse.sim.energy_wh == 4242.0  # type: ignore[attr-defined]


async def test_a_killed_simulator_comes_back_with_the_register_it_published(
        station: str, tmp_path: Path) -> None:
    """No clean stop (SIGKILL): the register of the last reading that left the simulated meter
    is on disk already, so a restart never goes below it (test_resync saw it go 0.06 Wh back)."""
    path = tmp_path / "hardware" / "sim-registers.json"
    first = simulated_station(station, 1)
    SimRegisterStore(path).restore(first)
    first.connectors[1].evse.sim.energy_wh = 5000.0615  # type: ignore[attr-defined]
    meter = first.connectors[1].meter
    assert meter is not None
    published = await meter.read()
    second = simulated_station(station, 1)  # the process was killed: nothing else saved
    SimRegisterStore(path).restore(second)
    assert second.connectors[1].evse.sim.energy_wh == published.energy_wh  # type: ignore[attr-defined]


async def test_a_simulated_register_never_goes_back_after_a_sigkill(
        mosquitto: Broker, station: str, services: ServiceGroup, tmp_path: Path) -> None:
    """The real service, charging, SIGKILLed (no clean save) and started again: its first
    reading is not below the last one it published (it went back to the value of the last
    clean stop, or the initial one: the power-cut suite's `meter-register-decreased`)."""
    env = {**mosquitto.env("hardware"), "VOLTBUS_STATIONS": station,
           "VOLTBUS_METER_INTERVAL_S": "0.1", "VOLTBUS_DATA_DIR": str(tmp_path / "data")}
    watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
    status = Watch(watcher, ch.SERVICE_STATUS, service="hardware")
    meters = Watch(watcher, ch.METER)
    operator = Bus(mosquitto.settings("operator"), station=station, service=None)
    gateway = Bus(mosquitto.settings("gateway"), station=station, service=None)
    async with running(watcher, operator, gateway):
        proc = services.start("hardware", env)
        await status.until(lambda m: m.payload is ServiceState.ONLINE, within=15)
        operator.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        gateway.publish(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await meters.until(lambda m: m.payload.power_w > 0, within=10)
        await asyncio.sleep(0.5)  # a few readings with the register moving
        proc.kill()
        await status.until(lambda m: m.payload is ServiceState.OFFLINE, within=10)
        before = [m.payload.energy_wh for m in meters.drain() if not m.retain]
        services.start("hardware", env)
        after = await meters.until(lambda m: not m.retain, within=15)
    assert len(before) >= 3
    assert before[-1] > before[0]  # it was charging
    assert after.payload.energy_wh >= before[-1]
