"""Issue 10 §2 (OCPP 1.6 §3.5.2): the authorisation cache learns from the idTagInfo of
StartTransaction.conf and StopTransaction.conf, not only from Authorize.conf. Checked by what the
station does offline with the tag afterwards."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from ocpp.v16 import call
from ocpp.v16.enums import AuthorizationStatus

from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_protocol_ops import charging, online


async def test_a_tag_accepted_in_start_transaction_conf_charges_offline(rig: Rig) -> None:
    """A remote start (AuthorizeRemoteTxRequests false: no Authorize) whose StartTransaction.conf
    accepted the tag: offline, the tag is known and may charge (AllowOfflineTxForUnknownId is
    false, so an unknown tag would be refused)."""
    csms = rig.csms
    await online(rig)
    rig.pilot("C")
    assert await csms.send(rig.id, call.RemoteStartTransaction(
        id_tag="REMOTE1", connector_id=1)) == {"status": "Accepted"}
    await csms.wait_for(rig.id, "StartTransaction")
    await rig.wait("transaction", lambda p: p is not None and p.transaction_id is not None)
    assert csms.received(rig.id, "Authorize") == []
    tx = rig.seen["transaction"][-1].payload
    assert await csms.send(rig.id, call.RemoteStopTransaction(
        transaction_id=int(tx.transaction_id))) == {"status": "Accepted"}
    await csms.wait_for(rig.id, "StopTransaction")
    rig.pilot("A")
    await rig.status("Available", count=2)
    await csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    offline = datetime.now(UTC)
    rig.pilot("C")
    rig.tap("REMOTE1")
    started = await rig.wait("transaction", lambda p: p is not None and p.id_tag == "REMOTE1"
                             and p.started_at >= offline)
    assert started.transaction_id is None  # local, offline


async def test_a_tag_blocked_in_stop_transaction_conf_is_refused_offline(rig: Rig) -> None:
    """Authorize.conf accepted the tag (cached Accepted); the StopTransaction.conf of its session
    says Blocked: offline, the tag is refused."""
    csms = rig.csms
    csms.behaviour.stop_status["CARD7"] = AuthorizationStatus.blocked
    await online(rig)
    await charging(rig, "CARD7")
    rig.tap("CARD7")  # the same tag stops it: StopTransaction carries the idTag
    stop = await csms.wait_for(rig.id, "StopTransaction")
    assert stop["idTag"] == "CARD7"
    rig.pilot("A")
    await rig.status("Available", count=2)
    await asyncio.sleep(0.1)  # the answer is read just after the central system sent it
    await csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    offline = datetime.now(UTC)
    rig.pilot("C")
    rig.tap("CARD7")
    with pytest.raises(TimeoutError):  # no new transaction (before the fix: started offline)
        await rig.wait("transaction", lambda p: p is not None and p.id_tag == "CARD7"
                       and p.started_at >= offline, timeout=1.0)
