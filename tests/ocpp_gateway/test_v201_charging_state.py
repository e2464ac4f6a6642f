"""2.0.1 transactionInfo.chargingState (E02/E06, TransactionEventRequest): with the hardware
service's simulator and the dev central system over a real WebSocket, every change of a running
transaction's charging state is one TransactionEvent Updated ChargingStateChanged carrying the
new state, at once, with the seqNo after the last; the Started and Ended events carry the state
they happened in, and nothing is sent while the state stays. The dev CSMS's
charging-state-unchanged rule (a ChargingStateChanged repeating the last state or without one)
holds throughout."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import Rig as HwRig
from tests.ocpp_gateway.test_billing import TAG, charge_point
from voltbus_common import channels as ch
from voltbus_common.enums import PilotState
from voltbus_common.models import GatewayCommand, SimEv, SimPlug, SimTap


def events(csms: Csms, station: str) -> list[dict[str, Any]]:
    return [m.payload for m in csms.received(station, "TransactionEvent")]


def states(csms: Csms, station: str) -> list[tuple[str, str, str | None]]:
    """(eventType, triggerReason, chargingState) of every TransactionEvent so far."""
    return [(e["eventType"], e["triggerReason"], e["transactionInfo"].get("chargingState"))
            for e in events(csms, station)]


async def changed_to(csms: Csms, station: str, state: str, count: int = 1) -> dict[str, Any]:
    return await csms.wait_for(station, "TransactionEvent", count=count, where=lambda p: (
        p["triggerReason"] == "ChargingStateChanged"
        and p["transactionInfo"].get("chargingState") == state))


async def set_variable(csms: Csms, station: str, component: str, variable: str,
                       value: str) -> None:
    answer = await csms.send_action(station, "SetVariables", {"setVariableData": [
        {"component": {"name": component}, "variable": {"name": variable},
         "attributeValue": value}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"


async def plugged_and_charging(hw: HwRig, csms: Csms, station: str) -> dict[str, Any]:
    """No periodic meter values (their events would come between); plug in, tap: Started (the
    relay still closing: EVConnected), then Charging once the relay closed and the EV draws."""
    await set_variable(csms, station, "SampledDataCtrlr", "TxUpdatedInterval", "0")
    hw.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
    await hw.watches["pilot"].until(lambda m: m.payload.state is PilotState.B)
    hw.send(ch.SIM_TAP, SimTap(id_tag=TAG))
    started = await csms.wait_for(station, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    await changed_to(csms, station, "Charging")
    return started


async def quiet(csms: Csms, station: str, seconds: float = 0.4) -> None:
    """Nothing more is sent meanwhile (the state did not change)."""
    before = len(events(csms, station))
    await asyncio.sleep(seconds)
    assert len(events(csms, station)) == before, states(csms, station)[before:]


async def test_each_charging_state_change_is_one_updated_event(
        mosquitto: Broker, csms: Csms, station: str, tmp_path: Path) -> None:
    """Plug, authorise, charge; the EV pauses (a full battery: pilot B with the relay closed)
    and resumes; the driver stops from the bus. Exactly Started(EVConnected), Charging,
    SuspendedEV, Charging, Ended(EVConnected), seqNo 0..4, one transaction id."""
    async with charge_point(mosquitto, csms, station, tmp_path / "data",
                            ocpp_version="2.0.1") as (hw, _gw, _w):
        started = await plugged_and_charging(hw, csms, station)
        await quiet(csms, station)
        hw.send(ch.SIM_EV, SimEv(full=True), connector=1)
        await changed_to(csms, station, "SuspendedEV")
        await quiet(csms, station)
        hw.send(ch.SIM_EV, SimEv(full=False), connector=1)
        await changed_to(csms, station, "Charging", count=2)
        await quiet(csms, station)
        hw.send(ch.COMMAND, GatewayCommand(command="stop", request_id="s1"), connector=1)
        ended = await csms.wait_for(station, "TransactionEvent",
                                    where=lambda p: p["eventType"] == "Ended")
        await quiet(csms, station)
    assert states(csms, station) == [
        ("Started", "Authorized", "EVConnected"),
        ("Updated", "ChargingStateChanged", "Charging"),
        ("Updated", "ChargingStateChanged", "SuspendedEV"),
        ("Updated", "ChargingStateChanged", "Charging"),
        ("Ended", ended["triggerReason"], "EVConnected")]
    assert ended["triggerReason"] in {"RemoteStop", "StopAuthorized"}
    tx_id = started["transactionInfo"]["transactionId"]
    assert {e["transactionInfo"]["transactionId"] for e in events(csms, station)} == {tx_id}
    assert [e["seqNo"] for e in events(csms, station)] == [0, 1, 2, 3, 4]
    assert not any(e.get("offline") for e in events(csms, station))
    assert csms.violations(station) == []


async def test_evse_suspension_unplugging_and_an_outage(
        mosquitto: Broker, csms: Csms, station: str, tmp_path: Path) -> None:
    """A current limit of 0 A: SuspendedEVSE (the EV's pilot falling back to B after it changes
    nothing). With TxStopPoint Authorized alone the transaction goes on unplugged: Idle; while
    the central system is down the EV comes back (still limited: SuspendedEVSE), each change
    queued durably and delivered once it is back, offline, in order; the card ends it."""
    async with charge_point(mosquitto, csms, station, tmp_path / "data",
                            ocpp_version="2.0.1") as (hw, _gw, _w):
        await set_variable(csms, station, "TxCtrlr", "TxStopPoint", "Authorized")
        await plugged_and_charging(hw, csms, station)
        hw.watches["pilot"].drain()
        hw.send(ch.COMMAND, GatewayCommand(command="set_current_limit", amps=0.0), connector=1)
        await changed_to(csms, station, "SuspendedEVSE")
        await hw.watches["pilot"].until(lambda m: m.payload.state is PilotState.B)
        await quiet(csms, station)
        hw.send(ch.SIM_PLUG, SimPlug(plugged=False), connector=1)
        await changed_to(csms, station, "Idle")
        await quiet(csms, station)
        await csms.stop()
        hw.watches["pilot"].drain()
        hw.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await hw.watches["pilot"].until(lambda m: m.payload.state is PilotState.B)
        await asyncio.sleep(0.3)
        await csms.start()
        back = await changed_to(csms, station, "SuspendedEVSE", count=2)
        assert back["offline"] is True
        await quiet(csms, station)
        hw.send(ch.SIM_TAP, SimTap(id_tag=TAG))
        ended = await csms.wait_for(station, "TransactionEvent",
                                    where=lambda p: p["eventType"] == "Ended")
    assert states(csms, station) == [
        ("Started", "Authorized", "EVConnected"),
        ("Updated", "ChargingStateChanged", "Charging"),
        ("Updated", "ChargingStateChanged", "SuspendedEVSE"),
        ("Updated", "ChargingStateChanged", "Idle"),
        ("Updated", "ChargingStateChanged", "SuspendedEVSE"),
        ("Ended", "StopAuthorized", "EVConnected")]
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert [e["seqNo"] for e in events(csms, station)] == list(range(6))
    assert csms.violations(station) == []
