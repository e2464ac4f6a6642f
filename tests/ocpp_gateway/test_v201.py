"""The same station speaking OCPP 2.0.1 (VOLTBUS_OCPP_VERSION=2.0.1) to the dev central system in
2.0.1, schema validation on: boot, statuses per EVSE, Authorize, TransactionEvent
Started/Updated/Ended with seqNo 0, 1, 2, ... and RequestStopTransaction; the bus looks the same."""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from ocpp.v16.enums import RegistrationStatus

from tests.ocpp_gateway import test_processes
from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_processes import DevCsmsProcess, GatewayProcess
from voltbus_ocpp.protocol.wire_time import parse_time

devcsms_process = test_processes.devcsms_process  # the same process fixtures
gateway_process = test_processes.gateway_process


def energy(event: dict[str, Any]) -> list[float]:
    """The energy register values of a TransactionEvent."""
    return [float(v["value"]) for mv in event.get("meterValue", []) for v in mv["sampledValue"]
            if v.get("measurand", "Energy.Active.Import.Register") ==
            "Energy.Active.Import.Register"]


async def test_a_session_in_201_tap_meter_unplug(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(1000.0)
    rig.pilot("A")
    await rig.start_gateway(ocpp_version="2.0.1")
    boot = await csms.wait_for(rig.id, "BootNotification")
    assert boot["chargingStation"]["vendorName"] == "voltbus"
    assert csms.central.version(rig.id) == "2.0.1"
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["evseId"] == 1 and
                        p["connectorStatus"] == "Available")
    connection = await rig.wait("connection", lambda p: p.registration is not None)
    assert connection.registration.value == "Accepted"

    rig.pilot("B")
    await csms.wait_for(rig.id, "StatusNotification",
                        where=lambda p: p["connectorStatus"] == "Occupied")
    await rig.status("Preparing")  # the bus keeps its statuses whatever the version
    rig.tap("04A1B2C3")
    assert (await csms.wait_for(rig.id, "Authorize"))["idToken"] == {
        "idToken": "04A1B2C3", "type": "ISO14443"}
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert (started["seqNo"], started["evse"], started["triggerReason"]) == (
        0, {"id": 1, "connectorId": 1}, "Authorized")
    assert energy(started) == [1000.0]
    tx_id = started["transactionInfo"]["transactionId"]
    relay = await rig.wait("relay_set")
    assert relay.closed is True
    rig.relay(True)
    rig.pilot("C")
    await rig.status("Charging")
    rig.meter(1100.0)
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Updated"
                        and energy(p) == [1100.0])
    tx = await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 100.0)
    assert tx.id_tag == "04A1B2C3"

    rig.meter(1234.0)
    await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 234.0)
    rig.pilot("A")
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"] == {"transactionId": tx_id, "stoppedReason": "EVDisconnected",
                                        "chargingState": "Idle"}  # the EV is gone
    assert energy(ended) == [1234.0]
    session = await rig.wait("session")
    assert (session.meter_stop_wh, session.stop_reason.value) == (1234.0, "EVDisconnected")
    events = [m.payload for m in csms.received(rig.id, "TransactionEvent")]
    assert [e["seqNo"] for e in events] == list(range(len(events)))  # no gaps, none twice
    assert [e["eventType"] for e in events][::len(events) - 1] == ["Started", "Ended"]
    assert csms.violations(rig.id) == []


async def test_request_start_and_stop_transaction_in_201(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(500.0)
    rig.pilot("C")
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Preparing")
    assert await csms.send_action(rig.id, "RequestStartTransaction", {
        "idToken": {"idToken": "REMOTE", "type": "Central"}, "remoteStartId": 7,
        "evseId": 2}) == {"status": "Rejected"}  # this station has one EVSE
    assert await csms.send_action(rig.id, "RequestStartTransaction", {
        "idToken": {"idToken": "REMOTE", "type": "Central"}, "remoteStartId": 8,
        "evseId": 1}) == {"status": "Accepted"}
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["idToken"]["idToken"] == "REMOTE"
    tx_id = started["transactionInfo"]["transactionId"]
    answer = await csms.send_action(rig.id, "RequestStopTransaction", {"transactionId": tx_id})
    assert answer == {"status": "Accepted"}
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    assert await csms.send_action(rig.id, "RequestStopTransaction",
                                  {"transactionId": tx_id}) == {"status": "Rejected"}
    assert csms.violations(rig.id) == []


async def test_201_keeps_charging_offline_and_sends_every_event_once_in_order(rig: Rig) -> None:
    """Central system down mid-transaction: Updated events and the Ended pile up in the outbox;
    back online they arrive once each, in seqNo order without gaps, flagged offline, with the
    timestamps they were made at."""
    csms = rig.csms
    rig.meter(1000.0)
    rig.pilot("C")
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Preparing")
    rig.tap("TAG")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    tx_id = started["transactionInfo"]["transactionId"]
    await rig.status("Charging")

    await csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    rig.meter(1100.0)
    await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 100.0)
    await asyncio.sleep(1.5)  # periodic Updated events (every 0.6 s here) are queued
    rig.pilot("A")  # unplugged while offline: Ended is queued too
    session = await rig.wait("session")
    assert session.meter_stop_wh == 1100.0  # charging went on while offline
    await csms.start()
    ended = await csms.wait_for(rig.id, "TransactionEvent", timeout=10,
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["offline"] is True
    assert energy(ended) == [1100.0]
    assert parse_time(ended["timestamp"]) <= session.stopped_at + timedelta(milliseconds=1)
    events = [m.payload for m in csms.received(rig.id, "TransactionEvent")]
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
    assert [e["seqNo"] for e in events] == list(range(len(events)))  # once each, in order
    offline = [e for e in events if e.get("offline")]
    assert len(offline) >= 2
    assert [e["eventType"] for e in offline][-1] == "Ended"
    assert [e["eventType"] for e in events].count("Ended") == 1
    assert csms.violations(rig.id) == []


async def test_201_gateway_killed_mid_transaction_ends_it_once_on_restart(
        rig: Rig, devcsms_process: DevCsmsProcess, gateway_process: GatewayProcess) -> None:
    """SIGKILL while charging in 2.0.1: the restarted gateway sends the Ended (PowerLoss, the
    register read back from the retained meter) with the next seqNo of the same transaction."""
    csms = devcsms_process
    gateway_process.env["VOLTBUS_OCPP_VERSION"] = "2.0.1"
    rig.meter(2000.0)
    rig.pilot("B")
    gateway_process.start()

    async def event(where: Callable[[dict[str, Any]], bool], action: str) -> dict[str, Any]:
        async def poll() -> dict[str, Any]:
            while True:
                found = [m for m in await csms.messages(rig.id, action) if where(m)]
                if found:
                    return found[0]
                await asyncio.sleep(0.05)
        return await asyncio.wait_for(poll(), 15)

    await event(lambda p: p["connectorStatus"] == "Occupied", "StatusNotification")  # on the bus
    rig.tap("04A1B2C3")
    started = await event(lambda p: p["eventType"] == "Started", "TransactionEvent")
    rig.pilot("C")
    await rig.wait("relay_set", lambda p: p.closed is True)
    await event(lambda p: p["eventType"] == "Updated", "TransactionEvent")
    assert gateway_process.signal(signal.SIGKILL) == -9
    rig.meter(2345.0)  # the EV went on drawing while the gateway was down (retained)
    gateway_process.start()
    ended = await event(lambda p: p["eventType"] == "Ended", "TransactionEvent")
    tx_id = started["transactionInfo"]["transactionId"]
    assert ended["transactionInfo"] == {"transactionId": tx_id, "stoppedReason": "PowerLoss"}
    assert energy(ended) == [2345.0]
    await asyncio.sleep(0.3)
    events = await csms.messages(rig.id, "TransactionEvent")
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
    assert [e["seqNo"] for e in events] == list(range(len(events)))  # once each, in order
    assert [e["eventType"] for e in events].count("Ended") == 1
    assert len(await csms.messages(rig.id, "BootNotification")) == 2


async def test_201_device_model_variables_and_trigger_message(rig: Rig) -> None:
    """GetVariables/SetVariables on the variables the station reads (a change applies at once:
    the heartbeat interval), unknown ones named as such, the password never read back;
    TriggerMessage for Heartbeat and StatusNotification."""
    csms = rig.csms
    rig.pilot("A")
    await rig.start_gateway(ocpp_version="2.0.1")
    await csms.wait_for(rig.id, "StatusNotification")

    def item(component: str, variable: str, **extra: Any) -> dict[str, Any]:
        return {"component": {"name": component}, "variable": {"name": variable}, **extra}

    answer = await csms.send_action(rig.id, "GetVariables", {"getVariableData": [
        item("TxCtrlr", "StopTxOnEVSideDisconnect"), item("TxCtrlr", "NoSuchThing"),
        item("NoSuchCtrlr", "Enabled"), item("SecurityCtrlr", "BasicAuthPassword")]})
    assert [(r["attributeStatus"], r.get("attributeValue")) for r in
            answer["getVariableResult"]] == [("Accepted", "true"), ("UnknownVariable", None),
                                             ("UnknownComponent", None), ("Rejected", None)]
    answer = await csms.send_action(rig.id, "SetVariables", {"setVariableData": [
        item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="20"),
        item("TxCtrlr", "StopTxOnInvalidId", attributeValue="maybe"),
        item("SampledDataCtrlr", "TxUpdatedMeasurands",
             attributeValue="Voltage,Power.Active.Import")]})
    assert [r["attributeStatus"] for r in answer["setVariableResult"]] == [
        "Accepted", "Rejected", "Accepted"]
    assert rig.gateway is not None
    assert rig.gateway.config.heartbeat_interval_s == 0.2  # 20 s at the tests' time scale
    await csms.wait_for(rig.id, "Heartbeat", timeout=5)  # the new interval is in force

    assert await csms.send_action(rig.id, "TriggerMessage", {
        "requestedMessage": "StatusNotification", "evse": {"id": 1}}) == {"status": "Accepted"}
    await csms.wait_for(rig.id, "StatusNotification", count=2)
    assert await csms.send_action(rig.id, "TriggerMessage", {
        "requestedMessage": "StatusNotification", "evse": {"id": 9}}) == {"status": "Rejected"}
    assert await csms.send_action(rig.id, "TriggerMessage", {
        "requestedMessage": "SignV2GCertificate"}) == {"status": "NotImplemented"}
    assert csms.violations(rig.id) == []


async def test_201_change_availability_and_reset(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(100.0)
    rig.pilot("A")
    await rig.start_gateway(ocpp_version="2.0.1")
    await csms.wait_for(rig.id, "StatusNotification")
    assert await csms.send_action(rig.id, "ChangeAvailability", {
        "operationalStatus": "Inoperative", "evse": {"id": 1}}) == {"status": "Accepted"}
    await csms.wait_for(rig.id, "StatusNotification",
                        where=lambda p: p["connectorStatus"] == "Unavailable")
    await rig.status("Unavailable")
    assert await csms.send_action(rig.id, "ChangeAvailability", {
        "operationalStatus": "Operative", "evse": {"id": 7}}) == {"status": "Rejected"}
    assert await csms.send_action(rig.id, "ChangeAvailability", {
        "operationalStatus": "Operative"}) == {"status": "Accepted"}
    await rig.status("Available", count=2)

    rig.pilot("C")
    await rig.status("Preparing")
    rig.tap("TAG")
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Started")
    assert await csms.send_action(rig.id, "Reset", {"type": "OnIdle"}) == {
        "status": "Scheduled"}  # B12: after the transaction (test_v201_reset.py)
    assert await csms.send_action(rig.id, "Reset", {"type": "Immediate"}) == {
        "status": "Accepted"}
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == (
        "ResetCommand", "ImmediateReset")
    assert rig._gw_task is not None
    await asyncio.wait_for(asyncio.shield(rig._gw_task), 5)  # the station's run ended
    assert rig.gateway is not None
    assert rig.gateway.reset_done
    assert csms.violations(rig.id) == []


@pytest.mark.parametrize(("frame", "code"), [
    ('[2, "u1", "GetVariables", {"getVariableData": [{"component": {"name": "TxCtrlr"}, '
     '"variable": {"name": "StopTxOnInvalidId"}}], "extra": 1}]', "FormatViolation"),
    ('[2, "u1", "GetVariables", {}]', "OccurrenceConstraintViolation"),
    ('[2, "u1", "GetVariables", {"getVariableData": "all"}]', "TypeConstraintViolation"),
    ('[2, "u1", "Reset", {"type": "Sometime"}]', "PropertyConstraintViolation"),
    ('[2, "u1", "GetVariables", "x"]', "FormatViolation"),
    ('[2, "u1", "GetVariables"]', "RpcFrameworkError"),
    ('[2, "u1", "CostUpdated", {"totalCost": 1.5, "transactionId": "t1"}]', "NotImplemented"),
    ('[2, "u1", "Teleport", {}]', "NotSupported"),
    ('[7, "u1", "Reset", {}]', "MessageTypeNotSupported"),
])
async def test_201_bad_frames_get_201_callerror_codes(rig: Rig, frame: str, code: str) -> None:
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.csms.wait_for(rig.id, "StatusNotification")
    answer = await rig.csms.central.send_raw(rig.id, frame, "u1")
    assert answer[:3] == [4, "u1", code]
    # the connection stays up and the next CALL is answered
    assert await rig.csms.send_action(rig.id, "TriggerMessage", {
        "requestedMessage": "Heartbeat"}) == {"status": "Accepted"}


async def test_201_boot_pending_retries_and_answers_the_central_system_meanwhile(
        rig: Rig) -> None:
    """B02: a Pending boot is retried after the interval; meanwhile the station sends nothing
    else (its status, the security event wait) but answers what the central system asks
    (GetVariables, SetVariables); Accepted, the rest follows."""
    csms = rig.csms
    csms.behaviour.boot_status = RegistrationStatus.pending
    csms.behaviour.boot_interval_s = 30  # x time_scale 0.01: a boot every 0.3 s
    rig.pilot("A")
    await rig.start_gateway(ocpp_version="2.0.1")
    await csms.wait_for(rig.id, "BootNotification", count=2)  # pending: retried
    answer = await csms.send_action(rig.id, "GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
    assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"
    answer = await csms.send_action(rig.id, "SetVariables", {"setVariableData": [
        {"component": {"name": "TxCtrlr"}, "variable": {"name": "EVConnectionTimeOut"},
         "attributeValue": "45"}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    await csms.wait_for(rig.id, "BootNotification", count=3)
    assert set(csms.actions(rig.id)) == {"BootNotification"}  # nothing else while pending
    csms.behaviour.boot_status = RegistrationStatus.accepted
    await csms.wait_for(rig.id, "StatusNotification", timeout=5)
    await rig.wait("connection", lambda p: p.registration is not None
                   and p.registration.value == "Accepted")
    assert csms.violations(rig.id) == []


async def test_201_change_availability_of_a_connector_is_kept_across_a_restart(
        rig: Rig) -> None:
    """G03/G04: ChangeAvailability of EVSE 1's connector 1 (the EVSE: one connector each) is
    Accepted, another connectorId Rejected; the Inoperative state survives a gateway restart
    (reported Unavailable again after the boot) until made Operative."""
    csms = rig.csms
    rig.pilot("A")
    await rig.start_gateway(ocpp_version="2.0.1")
    await csms.wait_for(rig.id, "StatusNotification")

    def change(status: str, connector: int) -> dict[str, Any]:
        return {"operationalStatus": status, "evse": {"id": 1, "connectorId": connector}}

    assert await csms.send_action(rig.id, "ChangeAvailability", change("Inoperative", 2)) == {
        "status": "Rejected"}
    assert await csms.send_action(rig.id, "ChangeAvailability", change("Inoperative", 1)) == {
        "status": "Accepted"}
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["evseId"] == 1
                        and p["connectorStatus"] == "Unavailable")
    await rig.stop_gateway()
    before = len([m for m in csms.received(rig.id, "StatusNotification")
                  if m.payload["evseId"] == 1])
    await rig.start_gateway(ocpp_version="2.0.1")
    again = await csms.wait_for(rig.id, "StatusNotification", count=before + 1,
                                where=lambda p: p["evseId"] == 1)
    assert again["connectorStatus"] == "Unavailable", [
        m.payload for m in csms.received(rig.id, "StatusNotification")]
    assert await csms.send_action(rig.id, "ChangeAvailability", change("Operative", 1)) == {
        "status": "Accepted"}
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["evseId"] == 1
                        and p["connectorStatus"] == "Available", count=2)
    assert csms.violations(rig.id) == []


async def test_201_a_failed_transaction_event_is_retried_then_kept_once(rig: Rig) -> None:
    """E/OCPPCommCtrlr MessageAttempts (3) and MessageAttemptInterval: the central system
    answers the Ended twice with a CALLERROR; the station sends it again after the interval
    (times the attempts so far), the same event each time (seqNo, timestamp), and the third is
    taken; nothing after it (once answered, never again)."""
    csms = rig.csms
    await rig.online_201(pilot="B", energy_wh=1000.0)
    await rig.status("Preparing")
    rig.tap("TAG")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    tx_id = started["transactionInfo"]["transactionId"]
    await rig.wait("transaction", lambda p: p is not None and p.transaction_ref == tx_id)
    csms.behaviour.fail_next["TransactionEvent"] = 2
    rig.pilot("A")
    third = await csms.wait_for(rig.id, "TransactionEvent", count=3, timeout=10,
                                where=lambda p: p["eventType"] == "Ended")
    await asyncio.sleep(1.0)  # a fourth would come within the interval times 3
    tries = [m for m in csms.received(rig.id, "TransactionEvent")
             if m.payload["eventType"] == "Ended"]
    assert [m.payload for m in tries] == [third] * 3  # the same event, unchanged
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(tries)]
    assert gaps[0] >= 0.5, gaps  # 60 s x 0.01
    assert gaps[1] >= 1.1, gaps  # then twice that
    kept = csms.central.transactions201[rig.id][tx_id]
    assert [e.event_type for e in kept.events].count("Ended") == 1
    assert kept.seq_nos == list(range(len(kept.seq_nos)))
    assert rig.gateway is not None
    assert len(rig.gateway.queue) == 0
    assert csms.violations(rig.id) == []


async def test_201_trigger_message_transaction_event(rig: Rig) -> None:
    """F06 (OCTT TC_F_13/14): TriggerMessage TransactionEvent while a transaction charges is
    Accepted and followed by an Updated with triggerReason Trigger, its chargingState and a
    meterValue of context Trigger (the TxUpdatedMeasurands), for the EVSE asked or, without
    one, every EVSE with a transaction; the next seqNo each time. No transaction there, or an
    EVSE the station does not have: Rejected, nothing sent."""
    csms = rig.csms
    await rig.online_201(pilot="B", energy_wh=1000.0)
    await rig.status("Preparing")

    async def trigger(evse: dict[str, int] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"requestedMessage": "TransactionEvent"}
        if evse is not None:
            payload["evse"] = evse
        return await csms.send_action(rig.id, "TriggerMessage", payload)

    assert await trigger({"id": 1}) == {"status": "Rejected"}  # no transaction yet
    rig.tap("TAG")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    rig.relay(True)
    rig.pilot("C")
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["transactionInfo"].get(
        "chargingState") == "Charging")
    rig.meter(1100.0)
    await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 100.0)
    assert await trigger({"id": 9}) == {"status": "Rejected"}
    for n, evse in enumerate(({"id": 1}, None), start=1):
        assert await trigger(evse) == {"status": "Accepted"}
        event = await csms.wait_for(rig.id, "TransactionEvent", count=n,
                                    where=lambda p: p["triggerReason"] == "Trigger")
        assert event["eventType"] == "Updated"
        assert event["transactionInfo"] == {
            "transactionId": started["transactionInfo"]["transactionId"],
            "chargingState": "Charging"}
        contexts = {v["context"] for mv in event["meterValue"] for v in mv["sampledValue"]}
        assert contexts == {"Trigger"}
        assert energy(event) == [1100.0]
    events = [m.payload for m in csms.received(rig.id, "TransactionEvent")]
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert csms.violations(rig.id) == []
