"""2.0.1 Reset OnIdle (B12) against the dev central system: Scheduled while a transaction runs,
which goes on and ends by itself; then the station resets (the gateway's run ends as for a hard
Reset). Idle: Accepted and reset at once. A reset of one EVSE is Rejected (not supported)."""

from __future__ import annotations

import asyncio

from tests.ocpp_gateway.conftest import Rig


async def test_reset_on_idle_waits_for_the_transaction_to_end(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201("C")
    await rig.status("Preparing")
    rig.tap("TAG")
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Started")
    assert await csms.send_action(rig.id, "Reset", {"type": "OnIdle", "evseId": 1}) == {
        "status": "Rejected"}
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
