"""2.0.1 Reset OnIdle (B12) against the dev central system: Scheduled while a transaction runs,
which goes on and ends by itself; then the station resets (the gateway's run ends as for a hard
Reset). Idle: Accepted and reset at once. A reset of one EVSE (evseId, B11/B12): Immediate ends
only its transaction (ImmediateReset) and the station goes on; OnIdle waits for that EVSE's
transaction; an unknown EVSE is Rejected."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.ocpp_gateway.conftest import Rig


async def test_reset_on_idle_waits_for_the_transaction_to_end(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201("C")
    await rig.status("Preparing")
    rig.tap("TAG")
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Started")
    assert await csms.send_action(rig.id, "Reset", {"type": "OnIdle", "evseId": 9}) == {
        "status": "Rejected"}  # no such EVSE
    assert await csms.send_action(rig.id, "Reset", {"type": "OnIdle"}) == {
        "status": "Scheduled"}
    assert await csms.send_action(rig.id, "Reset", {"type": "OnIdle"}) == {
        "status": "Scheduled"}  # asked twice: still one reset
    assert rig._gw_task is not None
    await asyncio.sleep(0.5)
    assert not rig._gw_task.done()  # the transaction goes on
    assert [m.payload["eventType"] for m in csms.received(rig.id, "TransactionEvent")
            ].count("Ended") == 0
    rig.meter(200.0)
    rig.pilot("A")  # the EV leaves: the transaction ends by itself, then the reset
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    await asyncio.wait_for(asyncio.shield(rig._gw_task), 5)  # the station's run ended
    assert rig.gateway is not None
    assert rig.gateway.reset_done
    assert csms.violations(rig.id) == []


async def test_reset_on_idle_when_idle_resets_at_once(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201()
    assert await csms.send_action(rig.id, "Reset", {"type": "OnIdle"}) == {"status": "Accepted"}
    assert rig._gw_task is not None
    await asyncio.wait_for(asyncio.shield(rig._gw_task), 5)
    assert rig.gateway is not None
    assert rig.gateway.reset_done
    assert csms.violations(rig.id) == []


async def two_charging(rig: Rig) -> list[str]:
    """Two EVSEs, each with a transaction; their transaction ids (EVSE 1, EVSE 2)."""
    for n in (1, 2):
        rig.meter(100.0, connector=n)
        rig.pilot("C", connector=n)
    await rig.start_gateway(ocpp_version="2.0.1", connectors=2)
    for n, tag in ((1, "TAG1"), (2, "TAG2")):
        await rig.status("Preparing", connector=n)
        rig.tap(tag)
        await rig.csms.wait_for(rig.id, "TransactionEvent", count=n,
                                where=lambda p: p["eventType"] == "Started")
        await rig.status("Charging", connector=n)
        await rig.wait("limit_set", connector=n, count=2)  # at start-up, at the start
        await rig.wait("relay_set", connector=n)
    return [m.payload["transactionInfo"]["transactionId"]
            for m in rig.csms.received(rig.id, "TransactionEvent")
            if m.payload["eventType"] == "Started"]


def evse_statuses(rig: Rig, evse: int, after: int = 0) -> list[str]:
    """The connectorStatus values the central system got for one EVSE, from the after-th
    StatusNotification of the station on."""
    return [m.payload["connectorStatus"] for m in rig.csms.received(
        rig.id, "StatusNotification")[after:] if m.payload["evseId"] == evse]


def hardware_told(rig: Rig, name: str, connector: int, after: int) -> list[Any]:
    """The commands on a watched hardware channel for one connector since the mark."""
    return [m.payload for m in rig.seen[name][after:] if m.connector == connector]


async def test_reset_immediate_of_one_evse(rig: Rig) -> None:
    """B12.FR.08: EVSE 1's transaction ends (ResetCommand, ImmediateReset); B11.FR.08: EVSE 1 is
    Unavailable while it resets (its hardware told limit, relay and LED again), then Occupied
    (the EV is still plugged in); EVSE 2 charges on, never Unavailable, its hardware untold."""
    csms = rig.csms
    tx1, tx2 = await two_charging(rig)
    statuses = len(csms.received(rig.id, "StatusNotification"))
    limits, relays = len(rig.seen["limit_set"]), len(rig.seen["relay_set"])
    on_1 = len(hardware_told(rig, "limit_set", 1, 0)), len(hardware_told(rig, "relay_set", 1, 0))
    before_1 = len(evse_statuses(rig, 1))
    assert await csms.send_action(rig.id, "Reset", {"type": "Immediate", "evseId": 1}) == {
        "status": "Accepted"}
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"] == {"transactionId": tx1, "stoppedReason": "ImmediateReset",
                                        "chargingState": "EVConnected"}  # still plugged in
    assert ended["triggerReason"] == "ResetCommand"
    await csms.wait_for(rig.id, "StatusNotification", count=before_1 + 2,
                        where=lambda p: p["evseId"] == 1)
    assert evse_statuses(rig, 1, statuses) == ["Unavailable", "Occupied"]
    await rig.wait("limit_set", connector=1, count=on_1[0] + 1)
    await rig.wait("relay_set", connector=1, count=on_1[1] + 2)  # the stop's, the resync's
    assert [p.amps for p in hardware_told(rig, "limit_set", 1, limits)] == [16.0]  # resync
    assert [p.closed for p in hardware_told(rig, "relay_set", 1, relays)] == [False, False]
    await asyncio.sleep(0.3)
    assert rig._gw_task is not None
    assert not rig._gw_task.done()  # the station goes on
    assert rig.gateway is not None
    assert not rig.gateway.reset_done
    assert rig.gateway.model.connectors[2].facts.tx is not None  # EVSE 2 charges on
    assert "Unavailable" not in evse_statuses(rig, 2, statuses)
    assert hardware_told(rig, "limit_set", 2, limits) == []
    assert hardware_told(rig, "relay_set", 2, relays) == []
    assert [m.payload["transactionInfo"]["transactionId"] for m in csms.received(
        rig.id, "TransactionEvent") if m.payload["eventType"] == "Ended"] == [tx1]
    rig.tap("TAG1")  # EVSE 1 takes a new transaction after its reset
    started = await csms.wait_for(rig.id, "TransactionEvent", count=3,
                                  where=lambda p: p["eventType"] == "Started")
    assert started["evse"]["id"] == 1
    assert started["transactionInfo"]["transactionId"] not in (tx1, tx2)
    assert csms.violations(rig.id) == []


async def test_reset_on_idle_of_one_evse_waits_for_its_transaction(rig: Rig) -> None:
    """B12.FR.01/07: Scheduled; EVSE 1's transaction goes on and ends normally (the EV leaves),
    then EVSE 1 resets: Unavailable, its hardware told its state again, Available. The end of the
    transaction itself sends no current limit (the EVSE has had it since the start): the reset's
    resync is the one limit after the unplug. EVSE 2 is untouched."""
    csms = rig.csms
    tx1, _ = await two_charging(rig)
    assert await csms.send_action(rig.id, "Reset", {"type": "OnIdle", "evseId": 1}) == {
        "status": "Scheduled"}
    assert await csms.send_action(rig.id, "Reset", {"type": "OnIdle", "evseId": 1}) == {
        "status": "Scheduled"}  # asked again: still the one scheduled reset
    await asyncio.sleep(0.3)
    assert "Ended" not in [m.payload["eventType"]
                           for m in csms.received(rig.id, "TransactionEvent")]
    statuses = len(csms.received(rig.id, "StatusNotification"))
    assert evse_statuses(rig, 1)[-1] == "Occupied"
    limits, relays = len(rig.seen["limit_set"]), len(rig.seen["relay_set"])
    on_1 = len(hardware_told(rig, "limit_set", 1, 0)), len(hardware_told(rig, "relay_set", 1, 0))
    before_1 = len(evse_statuses(rig, 1))
    rig.pilot("A", connector=1)  # the EV leaves EVSE 1: its transaction ends, then the reset
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["transactionId"] == tx1
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    await csms.wait_for(rig.id, "StatusNotification", count=before_1 + 3,
                        where=lambda p: p["evseId"] == 1)
    # the end as usual (the EV left: Available), then the reset in the same step of the model
    # (nothing can start between the two): Unavailable, Available
    assert evse_statuses(rig, 1, statuses) == ["Available", "Unavailable", "Available"]
    await rig.wait("limit_set", connector=1, count=on_1[0] + 1)
    await rig.wait("relay_set", connector=1, count=on_1[1] + 2)  # the stop's, the resync's
    assert [p.amps for p in hardware_told(rig, "limit_set", 1, limits)] == [16.0]
    assert [p.closed for p in hardware_told(rig, "relay_set", 1, relays)] == [False, False]
    await asyncio.sleep(0.3)
    assert len(hardware_told(rig, "limit_set", 1, limits)) == 1  # one reset, not one per step
    assert rig.gateway is not None
    assert not rig.gateway.reset_done
    assert rig.gateway.model.connectors[2].facts.tx is not None
    assert "Unavailable" not in evse_statuses(rig, 2, statuses)
    assert hardware_told(rig, "limit_set", 2, limits) == []
    assert csms.violations(rig.id) == []


async def test_reset_of_an_idle_evse(rig: Rig) -> None:
    """B11 with evseId, no transaction: Accepted at once, Unavailable then Available again; the
    device model says an EVSE can be reset alone (EVSE AllowReset true)."""
    csms = rig.csms
    await rig.online_201()
    assert await csms.send_action(rig.id, "GetVariables", {"getVariableData": [{
        "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "AllowReset"}}]}) == {"getVariableResult": [{
            "attributeStatus": "Accepted", "attributeValue": "true",
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "AllowReset"}}]}
    statuses = len(csms.received(rig.id, "StatusNotification"))
    assert await csms.send_action(rig.id, "Reset", {"type": "OnIdle", "evseId": 1}) == {
        "status": "Accepted"}
    await csms.wait_for(rig.id, "StatusNotification", count=statuses + 2)
    assert evse_statuses(rig, 1, statuses) == ["Unavailable", "Available"]
    assert rig.gateway is not None
    assert not rig.gateway.reset_done
    assert csms.violations(rig.id) == []
