"""2.0.1 GetTransactionStatus (E14) against the dev central system over a real WebSocket: whether a
transaction is still going on and whether its messages (or any transaction messages) still wait
in the durable outbox, unanswered."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.ocpp_gateway.conftest import Rig


async def status(rig: Rig, transaction_id: str | None = None) -> dict[str, Any]:
    payload = {} if transaction_id is None else {"transactionId": transaction_id}
    return await rig.csms.send_action(rig.id, "GetTransactionStatus", payload)


async def test_get_transaction_status_follows_the_outbox_and_the_transaction(rig: Rig) -> None:
    """Idle: nothing queued, an unknown id neither ongoing nor queued (E14.FR.01/FR.02). While
    the central system holds back its answer to the Started, the event is still queued: that
    transaction and the station both have messages in queue, it is ongoing; answered, nothing is
    queued and it goes on; after its Ended is answered it is no longer ongoing."""
    csms = rig.csms
    await rig.online_201(pilot="B")
    await rig.status("Preparing")
    assert await status(rig) == {"messagesInQueue": False}
    assert await status(rig, "no-such-transaction") == {"ongoingIndicator": False,
                                                        "messagesInQueue": False}
    csms.behaviour.answer_delay_s["TransactionEvent"] = 1.5
    rig.tap("TAG")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    tx_id = started["transactionInfo"]["transactionId"]
    assert await status(rig, tx_id) == {"ongoingIndicator": True, "messagesInQueue": True}
    assert await status(rig) == {"messagesInQueue": True}
    assert await status(rig, "no-such-transaction") == {"ongoingIndicator": False,
                                                        "messagesInQueue": False}
    csms.behaviour.answer_delay_s["TransactionEvent"] = 0.0
    await rig.wait("transaction", lambda p: p is not None and p.transaction_ref == tx_id)
    async with asyncio.timeout(5):
        while (answer := await status(rig, tx_id))["messagesInQueue"]:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # the events after the Started go out too
    assert answer == {"ongoingIndicator": True, "messagesInQueue": False}
    rig.pilot("A")  # unplugged: the transaction ends
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Ended")
    async with asyncio.timeout(5):
        while (answer := await status(rig, tx_id))["messagesInQueue"]:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert answer == {"ongoingIndicator": False, "messagesInQueue": False}
    assert await status(rig) == {"messagesInQueue": False}
    assert csms.violations(rig.id) == []
