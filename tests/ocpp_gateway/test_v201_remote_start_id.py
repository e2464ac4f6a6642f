"""2.0.1 RequestStartTransaction's remoteStartId (F01/F02) against the dev central system in 2.0.1
with its strict rules (remote-start-id-missing, remote-start-idtoken-type-changed,
tx-start-trigger): the first TransactionEvent of the transaction a remote start causes carries
transactionInfo.remoteStartId and triggerReason RemoteStart (F02.FR.01): the Started of a remote
start before plug-in, through an Authorize too; the Updated of a transaction started at plug-in
before it. A card tapped afterwards with the same token value starts a transaction of its own,
without remoteStartId. The id is in the outbox record, so a Started queued offline keeps it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.ocpp_gateway.conftest import Rig
from voltbus_devcsms import rules
from voltbus_ocpp import records
from voltbus_ocpp.model.events import SendStartTransaction, SendTransactionUpdate
from voltbus_ocpp.model.results import TxUpdate
from voltbus_ocpp.model.tokens import IdToken, TokenType
from voltbus_ocpp.protocol.v201 import convert


async def set_variable(rig: Rig, component: str, variable: str, value: str) -> None:
    answer = await rig.csms.send_action(rig.id, "SetVariables", {"setVariableData": [{
        "component": {"name": component}, "variable": {"name": variable},
        "attributeValue": value}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"


async def request_start(rig: Rig, value: str, remote_id: int, kind: str = "ISO14443"
                        ) -> dict[str, Any]:
    return await rig.csms.send_action(rig.id, "RequestStartTransaction", {
        "idToken": {"idToken": value, "type": kind}, "remoteStartId": remote_id, "evseId": 1})


def events(rig: Rig) -> list[dict[str, Any]]:
    return [m.payload for m in rig.csms.received(rig.id, "TransactionEvent")]


async def stop_latest(rig: Rig, count: int) -> None:
    """RequestStopTransaction for the latest Started; wait for its Ended (the count-th)."""
    started = [e for e in events(rig) if e["eventType"] == "Started"][-1]
    assert await rig.csms.send_action(rig.id, "RequestStopTransaction", {
        "transactionId": started["transactionInfo"]["transactionId"]}) == {"status": "Accepted"}
    await rig.csms.wait_for(rig.id, "TransactionEvent", count=count,
                            where=lambda p: p["eventType"] == "Ended")
    await rig.wait("transaction", lambda p: p is None, count=count)


async def test_remote_start_before_plug_in_then_a_card_with_the_same_value(rig: Rig) -> None:
    """TxStartPoint PowerPathClosed, AuthorizeRemoteStart false: the remote start waits for the
    EV; at plug-in the Started carries remoteStartId 41 and triggerReason RemoteStart (it said
    Authorized and no id). Then the same value tapped as a card: its Started has neither."""
    csms = rig.csms
    await rig.online_201(pilot="A")
    assert await request_start(rig, "APP41", 41) == {"status": "Accepted"}
    rig.pilot("B")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["transactionInfo"]["remoteStartId"] == 41
    assert started["triggerReason"] == "RemoteStart"
    assert started["idToken"] == {"idToken": "APP41", "type": "ISO14443"}
    await stop_latest(rig, 1)
    rig.pilot("A")
    await rig.status("Available")
    rig.pilot("B")
    rig.tap("APP41")
    card = await csms.wait_for(rig.id, "TransactionEvent", count=2,
                               where=lambda p: p["eventType"] == "Started")
    assert "remoteStartId" not in card["transactionInfo"]
    assert card["triggerReason"] == "Authorized"
    assert card["idToken"] == {"idToken": "APP41", "type": "ISO14443"}
    assert card["transactionInfo"]["transactionId"] != started["transactionInfo"][
        "transactionId"]
    assert not [e for e in events(rig)[1:] if "remoteStartId" in e["transactionInfo"]]
    await stop_latest(rig, 2)
    assert csms.violations(rig.id) == []


async def test_remote_start_through_authorize_while_plugged(rig: Rig) -> None:
    """AuthorizeRemoteStart true: the id waits with the Authorize; the Started after its
    answer carries it (Central token, its type kept)."""
    csms = rig.csms
    await rig.online_201(pilot="B")
    await rig.status("Preparing")
    await set_variable(rig, "AuthCtrlr", "AuthorizeRemoteStart", "true")
    assert await request_start(rig, "APP7", 7, "Central") == {"status": "Accepted"}
    await csms.wait_for(rig.id, "Authorize")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["transactionInfo"]["remoteStartId"] == 7
    assert started["triggerReason"] == "RemoteStart"
    assert started["idToken"] == {"idToken": "APP7", "type": "Central"}
    await stop_latest(rig, 1)
    assert csms.violations(rig.id) == []


async def test_remote_start_after_plug_in_is_the_updated(rig: Rig) -> None:
    """TxStartPoint EVConnected: plugged first, Started CablePluggedIn without token (no
    remoteStartId: no remote start yet); the remote start gives the running transaction its
    token: that Updated carries remoteStartId 9 and triggerReason RemoteStart (F02.FR.01)."""
    csms = rig.csms
    await rig.online_201(pilot="A")
    await set_variable(rig, "TxCtrlr", "TxStartPoint", "EVConnected")
    rig.pilot("B")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["triggerReason"] == "CablePluggedIn"
    assert "remoteStartId" not in started["transactionInfo"]
    assert await request_start(rig, "APP9", 9) == {"status": "Accepted"}
    updated = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: "idToken" in p)
    assert updated["eventType"] == "Updated"
    assert updated["triggerReason"] == "RemoteStart"
    assert updated["transactionInfo"]["remoteStartId"] == 9
    assert updated["transactionInfo"]["transactionId"] == started["transactionInfo"][
        "transactionId"]
    assert updated["idToken"] == {"idToken": "APP9", "type": "ISO14443"}
    await rig.wait("relay_set", lambda p: p.closed)
    await stop_latest(rig, 1)
    assert csms.violations(rig.id) == []


async def test_remote_start_armed_until_energy_flows(rig: Rig) -> None:
    """TxStartPoint EnergyTransfer: the remote start arms the plugged connector (relay closed,
    no transaction); when the EV draws, the Started carries remoteStartId 5 with its own trigger
    ChargingStateChanged (the energy started it; tx-start-trigger holds)."""
    csms = rig.csms
    await rig.online_201(pilot="A")
    await set_variable(rig, "TxCtrlr", "TxStartPoint", "EnergyTransfer")
    rig.pilot("B")
    await rig.status("Preparing")
    assert await request_start(rig, "APP5", 5) == {"status": "Accepted"}
    await rig.wait("relay_set", lambda p: p.closed)
    rig.relay(True)
    rig.meter(100.4, power_w=0.0)
    rig.pilot("C")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["triggerReason"] == "ChargingStateChanged"
    assert started["transactionInfo"]["remoteStartId"] == 5
    assert started["idToken"] == {"idToken": "APP5", "type": "ISO14443"}
    await stop_latest(rig, 1)
    assert csms.violations(rig.id) == []


def test_the_outbox_record_keeps_the_remote_start_id() -> None:
    """A Started or Updated queued durably (offline) keeps its remoteStartId through the
    neutral record; one without stays without (rows from before it was kept)."""
    ts = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    tag = IdToken("APP", TokenType.CENTRAL)
    start = records.TransactionStarted(SendStartTransaction(1, 5, tag, 10.0, ts,
                                                            remote_start_id=12), offline=True)
    kind, body = records.encode(start)
    assert body["remote_start_id"] == 12
    back = records.decode(kind, body)
    assert back == start
    payload = convert.transaction_event(back, "tx", 0)  # type: ignore[arg-type]
    assert (payload["transactionInfo"]["remoteStartId"], payload["triggerReason"]) == (
        12, "RemoteStart")
    update = records.TransactionUpdated(SendTransactionUpdate(
        1, 5, TxUpdate.AUTHORIZED, ts, tag, remote_start_id=13))
    kind, body = records.encode(update)
    assert records.decode(kind, body) == update
    plain = records.TransactionStarted(SendStartTransaction(1, 6, tag, 10.0, ts))
    kind, body = records.encode(plain)
    assert "remote_start_id" not in body
    assert records.decode(kind, body) == plain
    assert "remoteStartId" not in convert.transaction_event(
        plain, "tx", 0)["transactionInfo"]


def test_the_csms_rules_for_the_remote_start_id() -> None:
    """remote-start-id-missing: none or another id is a violation, the request's is not;
    remote-start-idtoken-type-changed matches a TransactionEvent by its remoteStartId only (a
    card tapped later with the same value and another type is no remote start's), an
    Authorize (no remoteStartId) by value."""
    assert rules.remote_start_id_problem(4, 4) is None
    assert "no remoteStartId" in str(rules.remote_start_id_problem(4, None))
    assert "remoteStartId 5" in str(rules.remote_start_id_problem(4, 5))
    given = {3: ("APP3", "Central")}
    card = {"id_token": "APP3", "type": "ISO14443"}
    assert rules.id_token_problems(card, None, given, by_value=False) == []
    assert [r for r, _ in rules.id_token_problems(card, 3, given, by_value=False)] == [
        rules.REMOTE_TOKEN_TYPE]
    assert [r for r, _ in rules.id_token_problems(card, None, given)] == [
        rules.REMOTE_TOKEN_TYPE]
