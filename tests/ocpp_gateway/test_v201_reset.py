"""2.0.1 Reset OnIdle (B12) against the dev central system: Scheduled while a transaction runs,
which goes on and ends by itself; then the station resets (the gateway's run ends as for a hard
Reset). Idle: Accepted and reset at once. A reset of one EVSE (evseId, B11/B12): Immediate ends
only its transaction (ImmediateReset) and the station goes on; OnIdle waits for that EVSE's
transaction; an unknown EVSE is Rejected."""

from __future__ import annotations

import asyncio

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
    return [m.payload["transactionInfo"]["transactionId"]
            for m in rig.csms.received(rig.id, "TransactionEvent")
            if m.payload["eventType"] == "Started"]


async def test_reset_immediate_of_one_evse(rig: Rig) -> None:
    csms = rig.csms
    tx1, tx2 = await two_charging(rig)
    limits_before = len(rig.seen["limit_set"])
    assert await csms.send_action(rig.id, "Reset", {"type": "Immediate", "evseId": 1}) == {
        "status": "Accepted"}
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"] == {"transactionId": tx1, "stoppedReason": "ImmediateReset"}
    assert ended["triggerReason"] == "ResetCommand"
    await rig.wait("limit_set", count=limits_before + 1)  # EVSE 1's hardware told again
    await asyncio.sleep(0.3)
    assert rig._gw_task is not None
    assert not rig._gw_task.done()  # the station goes on
    assert rig.gateway is not None
    assert not rig.gateway.reset_done
    assert rig.gateway.model.connectors[2].facts.tx is not None  # EVSE 2 charges on
    assert [m.payload["transactionInfo"]["transactionId"] for m in csms.received(
        rig.id, "TransactionEvent") if m.payload["eventType"] == "Ended"] == [tx1]
    rig.tap("TAG1")  # EVSE 1 takes a new transaction after its reset
    await csms.wait_for(rig.id, "TransactionEvent", count=3,
                        where=lambda p: p["eventType"] == "Started")
    assert tx2
    assert csms.violations(rig.id) == []


async def test_reset_on_idle_of_one_evse_waits_for_its_transaction(rig: Rig) -> None:
    csms = rig.csms
    tx1, _ = await two_charging(rig)
    assert await csms.send_action(rig.id, "Reset", {"type": "OnIdle", "evseId": 1}) == {
        "status": "Scheduled"}
    await asyncio.sleep(0.3)
    assert "Ended" not in [m.payload["eventType"]
                           for m in csms.received(rig.id, "TransactionEvent")]
    limits_before = len(rig.seen["limit_set"])
    rig.pilot("A", connector=1)  # the EV leaves EVSE 1: its transaction ends, then the reset
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["transactionId"] == tx1
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    await rig.wait("limit_set", count=limits_before + 2)  # its end, then the reset's resync
    assert rig.gateway is not None
    assert not rig.gateway.reset_done
    assert rig.gateway.model.connectors[2].facts.tx is not None
    assert csms.violations(rig.id) == []
