"""What Home Assistant needs from the gateway (issue 13): the commanded limit across a restart
(and in the hardware at once), the reset command, the availability on the status topics, the
retained last session; on the real broker with the gateway talking WebSocket to the dev central
system."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ocpp.v16 import call

from tests.hardware.helpers import FAST
from tests.homeassistant.test_with_real_gateway import eventually
from tests.ocpp_gateway.conftest import Rig
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import CommandName, CommandStatus
from voltbus_common.homeassistant import StationDiscovery
from voltbus_hardware.drivers.simulated import SimEvse
from voltbus_hardware.registry import simulated_station
from voltbus_hardware.service import serve_station


@contextlib.asynccontextmanager
async def client(rig: Rig, user: str = "operator") -> AsyncIterator[Bus]:
    """A further bus client of the rig's broker (handlers registered before entering)."""
    bus = Bus(rig.broker.settings(user, stations=[rig.id]), station=rig.id, service=None)
    task = asyncio.create_task(bus.run())
    try:
        await bus.wait_connected(5)
        yield bus
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def retained(rig: Rig, channel: ch.Channel[Any], **args: int) -> Any:
    """What a client that connects now gets on channel (retained), or None within 1 s."""
    got: asyncio.Queue[Received[Any]] = asyncio.Queue()

    async def keep(msg: Received[Any]) -> None:
        await got.put(msg)

    bus = Bus(rig.broker.settings("operator", stations=[rig.id]), station=rig.id, service=None)
    bus.on(channel, keep, **args)
    task = asyncio.create_task(bus.run())
    try:
        msg = await asyncio.wait_for(got.get(), 5)
        assert msg.retain
        return msg.payload
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def ha_station(rig: Rig) -> StationDiscovery:
    """The discovery config HA gets for the rig's station."""
    return StationDiscovery(station=rig.id, connectors=(1,), max_current_a=16.0,
                            min_current_a=6.0, sw_version="test", model="test",
                            root=rig.broker.root)


async def press(rig: Rig, key: str) -> Any:
    """Press an HA button as HA does (the homeassistant MQTT user); the gateway's answer."""
    comps = {**ha_station(rig).station_components(), **ha_station(rig).connector_components(1)}
    comp = comps[key]
    async with client(rig, "homeassistant") as ha:
        ha.publish_raw(comp["command_topic"], comp["payload_press"].encode(), qos=1)
        return await rig.wait("result", lambda p: p.request_id == "homeassistant")


def _forget(rig: Rig) -> None:
    for seen in rig.seen.values():
        seen.clear()


async def test_command_limit_survives_a_restart(rig: Rig) -> None:
    await rig.start_gateway(connectors=2)
    first = await rig.wait("charging", connector=1)
    assert first.command_limit_a is None  # none set yet
    rig.command(1, command="set_current_limit", amps=10, request_id="l")
    assert (await rig.wait("result", lambda p: p.request_id == "l")).status.value == "Accepted"
    charging = await rig.wait("charging", lambda p: p.command_limit_a is not None, connector=1)
    assert (charging.command_limit_a, charging.current_limit_a) == (10.0, 10.0)
    other = await rig.wait("charging", connector=2)
    assert other.command_limit_a is None  # per connector

    await rig.stop_gateway()
    _forget(rig)
    await rig.start_gateway(connectors=2)
    again = await rig.wait("charging", lambda p: p.ts > charging.ts, connector=1)
    assert (again.command_limit_a, again.current_limit_a) == (10.0, 10.0)
    assert (await rig.wait("charging", lambda p: p.ts > charging.ts,
                           connector=2)).command_limit_a is None

    # In force again: the session after the restart charges at the kept limit (the hardware
    # gets a limit while a transaction runs), and a new command replaces the kept one.
    rig.pilot("C")
    rig.meter(100.0)
    rig.command(1, command="start", id_tag="TAG", request_id="s")
    await rig.csms.wait_for(rig.id, "StartTransaction")
    await rig.status("Charging")
    assert (await rig.wait("limit_set", lambda p: p.amps > 0, connector=1)).amps == 10.0
    rig.command(1, command="set_current_limit", amps=7, request_id="l2")
    await rig.wait("result", lambda p: p.request_id == "l2")
    await rig.stop_gateway()
    _forget(rig)
    await rig.start_gateway(connectors=2)
    kept = await rig.wait("charging", connector=1)
    assert kept.command_limit_a == 7.0


async def test_firmware_and_last_heartbeat_on_the_connection(rig: Rig) -> None:
    rig.csms.behaviour.heartbeat_interval_s = 10  # 0.1 s here
    await rig.start_gateway(firmware_version="9.8.7")
    registered = await rig.wait("connection", lambda p: p.registration is not None)
    assert registered.firmware_version == "9.8.7"
    await rig.csms.wait_for(rig.id, "Heartbeat")
    beat = await rig.wait("connection", lambda p: p.last_heartbeat is not None)
    assert (beat.connected, beat.firmware_version) == (True, "9.8.7")
    assert beat.since == registered.since  # a heartbeat is no link change
    assert beat.last_heartbeat >= registered.since
    later = await rig.wait("connection", lambda p: p.last_heartbeat is not None
                           and p.last_heartbeat > beat.last_heartbeat)
    assert later.since == registered.since
    assert len(rig.csms.actions(rig.id)) >= 2  # answered by the dev CSMS over WebSocket


async def test_transaction_ref_carries_the_201_uuid(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(1000.0)
    rig.pilot("B")
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Preparing")
    rig.tap("04A1B2C3")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    tx_id = started["transactionInfo"]["transactionId"]
    tx = await rig.wait("transaction", lambda p: p is not None and p.transaction_ref is not None)
    assert (tx.transaction_ref, tx.transaction_id) == (tx_id, None)  # not an integer
    rig.pilot("A")
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Ended")
    session = await rig.wait("session")
    assert (session.transaction_ref, session.transaction_id) == (tx_id, None)


async def test_transaction_ref_in_16_is_the_integer_as_text(rig: Rig) -> None:
    rig.meter(100.0)
    rig.pilot("C")
    await rig.start_gateway()
    rig.command(1, command="start", id_tag="TAG", request_id="s")
    start = await rig.csms.wait_for(rig.id, "StartTransaction")
    assert start["idTag"] == "TAG"
    tx = await rig.wait("transaction", lambda p: p is not None and p.transaction_id is not None)
    assert tx.transaction_ref == str(tx.transaction_id)
    rig.command(1, command="stop", request_id="x")
    session = await rig.wait("session")
    assert session.transaction_ref == str(session.transaction_id)
    assert session.transaction_id == tx.transaction_id


# --- reset (HA's button) ----------------------------------------------------------------------


async def charging(rig: Rig) -> Any:
    """A transaction runs on connector 1 (started by a command); its TransactionState."""
    rig.meter(100.0)
    rig.pilot("C")
    rig.command(1, command="start", id_tag="TAG", request_id="s")
    await rig.csms.wait_for(rig.id, "StartTransaction")
    return await rig.wait("transaction", lambda p: p is not None and p.transaction_id)


async def test_reset_button_soft_restarts_the_ocpp_session(rig: Rig) -> None:
    await rig.start_gateway()
    await charging(rig)
    answer = await press(rig, "station_reset")
    assert (answer.command, answer.status) == (CommandName.RESET, CommandStatus.ACCEPTED)
    stop = await rig.csms.wait_for(rig.id, "StopTransaction")
    assert stop["reason"] == "SoftReset"
    assert (await rig.wait("session")).stop_reason.value == "SoftReset"
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)  # the session restarted
    await rig.wait("connection", lambda p: not p.connected)
    await rig.wait("connection", lambda p: p.connected and p.registration is not None, count=2)
    assert rig._gw_task is not None
    assert not rig._gw_task.done()  # soft: the process stays
    assert rig.csms.violations(rig.id) == []


async def test_hard_reset_button_ends_the_gateway_for_its_supervisor(rig: Rig) -> None:
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "StatusNotification")
    answer = await press(rig, "station_reset_hard")
    assert (answer.command, answer.status) == (CommandName.RESET, CommandStatus.ACCEPTED)
    assert rig._gw_task is not None
    await asyncio.wait_for(asyncio.shield(rig._gw_task), 5)  # run() returned by itself
    assert rig.gateway is not None
    assert rig.gateway.reset_done


async def test_reset_goes_to_the_station_not_a_connector(rig: Rig) -> None:
    await rig.start_gateway()
    rig.command(1, command="reset", request_id="r1")
    answer = await rig.wait("result", lambda p: p.request_id == "r1")
    assert answer.status is CommandStatus.REJECTED
    assert "connector 0" in (answer.reason or "")
    await asyncio.sleep(0.3)
    assert len(rig.csms.received(rig.id, "BootNotification")) == 1


# --- availability on the status topics ----------------------------------------------------------


async def test_availability_per_connector_and_for_the_station(rig: Rig) -> None:
    csms = rig.csms
    await rig.start_gateway(connectors=2)
    first = await rig.wait("status", connector=1)
    assert (first.operative, first.scheduled_operative) == (True, None)
    station = await rig.wait("status", connector=0)
    assert (station.status.value, station.operative) == ("Available", True)

    # Connector 2 inoperative at once; connector 1 runs a transaction: scheduled.
    assert await csms.send(rig.id, call.ChangeAvailability(
        connector_id=2, type="Inoperative")) == {"status": "Accepted"}
    two = await rig.wait("status", lambda p: p.status.value == "Unavailable", connector=2)
    assert (two.operative, two.scheduled_operative) == (False, None)
    await charging(rig)
    assert await csms.send(rig.id, call.ChangeAvailability(
        connector_id=1, type="Inoperative")) == {"status": "Scheduled"}
    held = await rig.wait("status", lambda p: p.scheduled_operative is False, connector=1)
    assert (held.status.value, held.operative) == ("Charging", True)  # still charging
    rig.command(1, command="stop", request_id="x")
    done = await rig.wait("status", lambda p: p.status.value == "Unavailable", connector=1)
    assert (done.operative, done.scheduled_operative) == (False, None)

    # The station (connector 0), from Home Assistant's switch this time.
    comp = ha_station(rig).station_components()["station_available"]
    async with client(rig, "homeassistant") as ha:
        ha.publish_raw(comp["command_topic"], comp["payload_off"].encode(), qos=1)
        await rig.wait("result", lambda p: p.command is CommandName.CHANGE_AVAILABILITY)
    off = await rig.wait("status", lambda p: p.operative is False, connector=0)
    assert off.status.value == "Unavailable"
    await csms.wait_for(rig.id, "StatusNotification",
                        where=lambda p: p["connectorId"] == 0 and p["status"] == "Unavailable")

    # Kept across a restart, and there for a client that connects later (retained).
    await rig.stop_gateway()
    await rig.start_gateway(connectors=2)
    await rig.wait("status", lambda p: p.operative is False, connector=0, count=2)
    assert (await retained(rig, ch.OCPP_STATUS, connector=0)).operative is False
    later = await retained(rig, ch.OCPP_STATUS, connector=1)
    assert (later.status.value, later.operative) == ("Unavailable", False)
    assert csms.violations(rig.id) == []


# --- the retained last session ------------------------------------------------------------------


async def test_last_session_is_retained_across_a_gateway_restart(rig: Rig) -> None:
    await rig.start_gateway()
    tx = await charging(rig)
    rig.command(1, command="stop", request_id="x")
    event = await rig.wait("session")
    kept = await retained(rig, ch.LAST_SESSION, connector=1)
    assert kept == event
    assert (kept.transaction_id, kept.id_tag) == (tx.transaction_id, "TAG")
    await rig.stop_gateway()
    await rig.start_gateway()
    await rig.wait("status", count=2)
    assert await retained(rig, ch.LAST_SESSION, connector=1) == event  # not cleared


# --- the limit in the hardware at once ----------------------------------------------------------


async def test_restored_limit_reaches_the_real_hardware_at_start_and_when_it_is_back(
        rig: Rig) -> None:
    """Issue 13: a limit kept on disk (set_current_limit, a charging profile) is in the
    simulated EVSE's pilot offer as soon as the gateway starts and again once a restarted
    hardware service is online, not only when the next session starts."""
    hardware: dict[str, Any] = {}

    async def start_hardware() -> None:
        station = simulated_station(rig.id, 1, max_current_a=32.0)
        bus = Bus(rig.broker.settings("hardware", stations=[rig.id]), station=rig.id,
                  service="hardware")
        hardware["evse"] = station.connectors[1].evse
        hardware["task"] = asyncio.create_task(serve_station(bus, station, FAST))
        await bus.wait_connected(5)
        await eventually(lambda: offered() == 32.0, 5.0, "the hardware at its rating")

    async def stop_hardware() -> None:
        hardware["task"].cancel()
        await asyncio.gather(hardware["task"], return_exceptions=True)

    def offered() -> float:
        evse = hardware["evse"]
        assert isinstance(evse, SimEvse)
        return evse.sim.limit_a

    await start_hardware()
    try:
        await rig.start_gateway(max_current_a=32)
        await eventually(lambda: offered() == 32.0, 5.0, "no limit: the maximum")
        rig.command(1, command="set_current_limit", amps=10, request_id="l")
        await rig.wait("result", lambda p: p.request_id == "l")
        await eventually(lambda: offered() == 10.0, 5.0, "a limit set without a session: at once")

        # Gateway down while the hardware restarts at its rating; the gateway starts again.
        await rig.stop_gateway()
        await stop_hardware()
        await start_hardware()
        await rig.start_gateway(max_current_a=32)
        await eventually(lambda: offered() == 10.0, 5.0, "the restored limit at start-up")

        # The hardware service restarts under a running gateway.
        await stop_hardware()
        await start_hardware()
        await eventually(lambda: offered() == 10.0, 5.0,
                         "the limit again once the hardware is back")

        # A charging profile kept on disk: in force at once after a restart too.
        profile = {
            "chargingProfileId": 1, "stackLevel": 0,
            "chargingProfilePurpose": "ChargePointMaxProfile", "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 8.0}]}}
        assert await rig.csms.send(rig.id, call.SetChargingProfile(
            connector_id=0, cs_charging_profiles=profile)) == {"status": "Accepted"}
        await eventually(lambda: offered() == 8.0, 5.0, "a profile without a session: at once")
        await rig.stop_gateway()
        await stop_hardware()
        await start_hardware()
        await rig.start_gateway(max_current_a=32)
        await eventually(lambda: offered() == 8.0, 5.0, "the restored profile at start-up")
        assert rig.seen["session"] == []  # no session needed for any of it
    finally:
        await stop_hardware()
