"""2.0.1 TxCtrlr TxStartPoint/TxStopPoint (E01-E03/E06) against the dev central system: the
station shows the points it honours (PowerPathClosed: once authorised and plugged in, the relay
closing with it; EVConnected: at plug-in, the idToken following in an Updated Authorized (E02);
Authorized: at authorisation, the EV following (E03), EVConnectionTimeOut ending it; it stops on
EVConnected or Authorized no longer true), takes the lists it can honour and Rejects the others;
TxStopPoint Authorized keeps a transaction through unplugging until the card is presented
again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.ocpp_gateway.conftest import Rig


async def set_var(rig: Rig, variable: str, value: str) -> str:
    answer = await rig.csms.send_action(rig.id, "SetVariables", {"setVariableData": [
        {"component": {"name": "TxCtrlr"}, "variable": {"name": variable},
         "attributeValue": value}]})
    return str(answer["setVariableResult"][0]["attributeStatus"])


async def get_var(rig: Rig, variable: str) -> Any:
    answer = await rig.csms.send_action(rig.id, "GetVariables", {"getVariableData": [
        {"component": {"name": "TxCtrlr"}, "variable": {"name": variable}}]})
    return answer["getVariableResult"][0].get("attributeValue")


async def test_tx_start_and_stop_points(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201()
    assert await get_var(rig, "TxStartPoint") == "PowerPathClosed"
    assert await get_var(rig, "TxStopPoint") == "EVConnected,Authorized"
    for value in ("ParkingBayOccupancy", "DataSigned", "EVConnected,Bogus"):
        assert await set_var(rig, "TxStartPoint", value) == "Rejected", value
    for value in ("EnergyTransfer", "EVConnected", "Authorized", "EVConnected,Authorized",
                  "PowerPathClosed,Authorized", "PowerPathClosed"):
        assert await set_var(rig, "TxStartPoint", value) == "Accepted", value
    for value in ("PowerPathClosed", "EVConnected", "ParkingBayOccupancy,Authorized",
                  "EnergyTransfer"):
        assert await set_var(rig, "TxStopPoint", value) == "Rejected", value
    assert await set_var(rig, "TxStopPoint", "Authorized") == "Accepted"

    rig.pilot("B")
    await rig.status("Preparing")
    rig.tap("TAG")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    rig.pilot("A")  # unplugged: EVConnected is no stop point now
    await asyncio.sleep(0.5)
    events = [m.payload["eventType"] for m in csms.received(rig.id, "TransactionEvent")]
    assert "Ended" not in events
    rig.tap("TAG")  # Authorized ends: the transaction stops
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["transactionId"] == started["transactionInfo"][
        "transactionId"]
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert await set_var(rig, "TxStopPoint", "Authorized,EVConnected") == "Accepted"
    assert csms.violations(rig.id) == []


def events(rig: Rig) -> list[dict[str, Any]]:
    return [m.payload for m in rig.csms.received(rig.id, "TransactionEvent")]


async def started_at(rig: Rig, point: str, act: Callable[[], None]) -> dict[str, Any]:
    """Online with TxStartPoint set to point; act (plug in, tap) and the Started it makes."""
    await rig.online_201()
    assert await set_var(rig, "TxStartPoint", point) == "Accepted"
    act()
    return await rig.csms.wait_for(rig.id, "TransactionEvent",
                                   where=lambda p: p["eventType"] == "Started")


async def test_start_at_plug_in_then_authorised(rig: Rig) -> None:
    """E02: Started CablePluggedIn without idToken and the relay open (Preparing on the bus,
    transaction with id_tag null); the card adds the idToken (Updated Authorized) and only then
    the relay closes; the 1 Wh register check of the dev CSMS (energy-before-authorization)
    holds, and the session on the bus names the card."""
    csms = rig.csms
    started = await started_at(rig, "EVConnected", lambda: rig.pilot("B"))
    assert started["triggerReason"] == "CablePluggedIn"
    assert "idToken" not in started
    assert started["transactionInfo"]["chargingState"] == "EVConnected"
    early = await rig.wait("transaction", lambda p: p is not None)
    assert early.id_tag is None
    await rig.status("Preparing")
    await asyncio.sleep(0.3)
    assert not [m for m in rig.seen["relay_set"] if m.payload.closed]  # no power yet
    rig.tap("TAG")
    updated = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["triggerReason"] == "Authorized")
    assert updated["eventType"] == "Updated"
    assert updated["idToken"] == {"idToken": "TAG", "type": "ISO14443"}
    tx_id = started["transactionInfo"]["transactionId"]
    assert updated["transactionInfo"]["transactionId"] == tx_id
    await rig.wait("relay_set", lambda p: p.closed)
    assert (await rig.wait("transaction", lambda p: p is not None and p.id_tag == "TAG"))
    rig.relay(True)
    rig.pilot("C")
    await rig.status("Charging")
    rig.meter(400.0)
    rig.tap("TAG")
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["transactionId"] == tx_id
    session = await rig.wait("session")
    assert session.id_tag == "TAG"
    assert [e["seqNo"] for e in events(rig)] == list(range(len(events(rig))))
    assert csms.violations(rig.id) == []


async def test_start_at_plug_in_never_authorised(rig: Rig) -> None:
    """E02: an EV that leaves before any card ends its transaction (EVDisconnected); the bus
    session has id_tag null and no energy, and the relay never closed."""
    csms = rig.csms
    await started_at(rig, "EVConnected", lambda: rig.pilot("B"))
    rig.pilot("A")
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert "idToken" not in ended
    session = await rig.wait("session")
    assert session.id_tag is None
    assert session.energy_wh == 0.0
    assert not [m for m in rig.seen["relay_set"] if m.payload.closed]
    assert csms.violations(rig.id) == []


async def test_start_at_authorisation_then_plug_in(rig: Rig) -> None:
    """E03: Started Authorized with the idToken before the EV is there (relay open, Preparing);
    plugging in adds Updated CablePluggedIn and closes the relay; a second authorisation with no
    EV ends after EVConnectionTimeOut: Ended EVConnectTimeout / Timeout (bus: Other)."""
    csms = rig.csms
    started = await started_at(rig, "Authorized", lambda: rig.tap("TAG"))
    assert started["triggerReason"] == "Authorized"
    assert started["idToken"]["idToken"] == "TAG"
    await rig.status("Preparing")
    assert not [m for m in rig.seen["relay_set"] if m.payload.closed]
    rig.pilot("B")
    plugged = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["triggerReason"] == "CablePluggedIn")
    assert plugged["eventType"] == "Updated"
    await rig.wait("relay_set", lambda p: p.closed)
    rig.tap("TAG")
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Ended")
    rig.pilot("A")
    await rig.status("Available")
    # EVConnectionTimeOut 60 s x time scale 0.01: the EV does not come
    rig.tap("TAG2")
    second = await csms.wait_for(rig.id, "TransactionEvent", count=2,
                                 where=lambda p: p["eventType"] == "Started")
    ended = await csms.wait_for(rig.id, "TransactionEvent", count=2,
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["transactionId"] == second["transactionInfo"][
        "transactionId"]
    assert ended["triggerReason"] == "EVConnectTimeout"
    assert ended["transactionInfo"]["stoppedReason"] == "Timeout"
    session = await rig.wait("session", count=2)
    assert session.id_tag == "TAG2"
    assert session.stop_reason.value == "Other"
    assert csms.violations(rig.id) == []


async def energy_transfer_rig(rig: Rig, stop: str) -> None:
    """Online, TxStartPoint EnergyTransfer and TxStopPoint stop; plugged in (B) and authorised:
    the relay closes with no transaction yet (Preparing), none while the EV does not draw."""
    await rig.online_201()
    assert await set_var(rig, "TxStartPoint", "EnergyTransfer") == "Accepted"
    assert await set_var(rig, "TxStopPoint", stop) == "Accepted"
    rig.pilot("B")
    await rig.status("Preparing")
    rig.tap("TAG")
    await rig.wait("relay_set", lambda p: p.closed)
    rig.relay(True)
    await asyncio.sleep(0.5)
    assert events(rig) == []
    assert rig.seen["transaction"][-1].payload is None


async def test_start_and_stop_at_energy_transfer(rig: Rig) -> None:
    """E01.FR.06/E06.FR.07: the transaction starts when the EV draws (pilot C with the relay
    closed): Started ChargingStateChanged, chargingState Charging, with the idToken and the
    register then as Transaction.Begin; it ends when the EV stops drawing (pilot B): Ended
    ChargingStateChanged, chargingState SuspendedEV, stoppedReason StoppedByEV (bus: Other),
    the relay opening. The dev CSMS's tx-start-trigger rule holds."""
    csms = rig.csms
    await energy_transfer_rig(rig, "EnergyTransfer,Authorized,EVConnected")
    rig.meter(100.4, power_w=0.0)
    rig.pilot("C")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["triggerReason"] == "ChargingStateChanged"
    assert started["transactionInfo"]["chargingState"] == "Charging"
    assert started["idToken"] == {"idToken": "TAG", "type": "ISO14443"}
    assert started["meterValue"][0]["sampledValue"][0]["value"] == 100.4
    await rig.status("Charging")
    rig.meter(900.0)
    await asyncio.sleep(0.3)  # the gateway has the reading
    rig.pilot("B")  # the EV stops drawing: its energy transfer ends the transaction
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["triggerReason"] == "ChargingStateChanged"
    assert ended["transactionInfo"]["chargingState"] == "SuspendedEV"
    assert ended["transactionInfo"]["stoppedReason"] == "StoppedByEV"
    assert ended["transactionInfo"]["transactionId"] == started["transactionInfo"][
        "transactionId"]
    await rig.wait("relay_set", lambda p: not p.closed)
    session = await rig.wait("session")
    assert session.stop_reason.value == "Other"
    assert session.energy_wh == pytest.approx(900.0 - 100.4)
    assert csms.violations(rig.id) == []


async def test_energy_transfer_without_energy_starts_nothing(rig: Rig) -> None:
    """EnergyTransfer as start point: an EV that never draws has no transaction; the card
    presented again opens the relay (no TransactionEvent at all), and so does unplugging after
    a second authorisation. As a stop point, the relay opened by the hardware while charging
    ends the transaction: ChargingStateChanged, SuspendedEVSE, stoppedReason Other."""
    csms = rig.csms
    await energy_transfer_rig(rig, "Authorized,EnergyTransfer")
    rig.tap("TAG")  # presented again: given up
    await rig.wait("relay_set", lambda p: not p.closed)
    rig.relay(False)
    rig.tap("TAG")
    await rig.wait("relay_set", lambda p: p.closed, count=2)
    rig.relay(True)
    rig.pilot("A")  # the EV leaves without drawing
    await rig.wait("relay_set", lambda p: not p.closed, count=2)
    rig.relay(False)
    await rig.status("Available")
    await asyncio.sleep(0.3)
    assert events(rig) == []
    assert await set_var(rig, "TxStartPoint", "PowerPathClosed") == "Accepted"
    rig.pilot("B")
    rig.tap("TAG")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["triggerReason"] == "Authorized"
    await rig.wait("relay_set", lambda p: p.closed, count=3)
    rig.relay(True)
    rig.pilot("C")
    await rig.status("Charging")
    await asyncio.sleep(0.3)
    rig.relay(False)  # the EVSE's energy transfer ends: the relay opened by itself
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["triggerReason"] == "ChargingStateChanged"
    assert ended["transactionInfo"]["chargingState"] == "SuspendedEVSE"
    assert ended["transactionInfo"]["stoppedReason"] == "Other"
    assert csms.violations(rig.id) == []


async def test_start_and_stop_at_parking_bay_occupancy(rig: Rig) -> None:
    """E01.FR.01/E06.FR.01 with a bay detector (hw/1/bay): the vehicle driving in starts the
    transaction (Started EVDetected, chargingState Idle, no idToken, relay open); plug-in and
    the card follow as Updated CablePluggedIn and Authorized, then the relay closes; with
    TxStopPoint Authorized,ParkingBayOccupancy unplugging does not end it, the vehicle leaving
    does: Ended EVDeparted, stoppedReason EVDisconnected. The dev CSMS's rules hold."""
    csms = rig.csms
    rig.bay(False)
    await rig.online_201()
    await asyncio.sleep(0.3)  # the retained bay state reached the gateway
    assert await set_var(rig, "TxStartPoint", "ParkingBayOccupancy") == "Accepted"
    assert await set_var(rig, "TxStopPoint", "Authorized,ParkingBayOccupancy") == "Accepted"
    rig.bay(True)
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["triggerReason"] == "EVDetected"
    assert started["transactionInfo"]["chargingState"] == "Idle"
    assert "idToken" not in started
    rig.pilot("B")
    plugged = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["triggerReason"] == "CablePluggedIn")
    assert plugged["eventType"] == "Updated"
    assert not [m for m in rig.seen["relay_set"] if m.payload.closed]
    rig.tap("TAG")
    await csms.wait_for(rig.id, "TransactionEvent",
                        where=lambda p: p["triggerReason"] == "Authorized")
    await rig.wait("relay_set", lambda p: p.closed)
    rig.relay(True)
    rig.pilot("C")
    await rig.status("Charging")
    rig.meter(500.0)
    rig.pilot("A")  # unplugged: EVConnected is no stop point
    await asyncio.sleep(0.3)
    assert "Ended" not in [e["eventType"] for e in events(rig)]
    rig.bay(False)  # the vehicle leaves
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["triggerReason"] == "EVDeparted"
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert ended["transactionInfo"]["transactionId"] == started["transactionInfo"][
        "transactionId"]
    assert [e["seqNo"] for e in events(rig)] == list(range(len(events(rig))))
    assert csms.violations(rig.id) == []


async def points_offered(rig: Rig, request_id: int) -> set[str]:
    """The members TxStartPoint's valuesList offers, from a GetReport."""
    await rig.csms.send_action(rig.id, "GetReport", {"requestId": request_id,
                                                     "componentVariable": [
        {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"}}]})
    (item,) = (await rig.csms.wait_report(rig.id, request_id)).items("reportData")
    return set(item["variableCharacteristics"]["valuesList"].split(","))


async def test_values_list_offers_the_bay_only_with_a_detector(rig: Rig) -> None:
    """TxStartPoint's valuesList lists what SetVariables takes: ParkingBayOccupancy only once
    a connector's bay detector has published (hw/1/bay)."""
    await rig.online_201()
    assert await points_offered(rig, 21) == {"EVConnected", "Authorized", "PowerPathClosed",
                                             "EnergyTransfer"}
    rig.bay(False)
    await asyncio.sleep(0.3)
    assert "ParkingBayOccupancy" in await points_offered(rig, 22)
    assert await set_var(rig, "TxStartPoint", "ParkingBayOccupancy") == "Accepted"
    assert rig.csms.violations(rig.id) == []
