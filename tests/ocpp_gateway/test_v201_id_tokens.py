"""Id tokens are (value, type) (OCPP 2.0.1 IdTokenType, issue 11 block C), against the dev central
system in 2.0.1 with schema validation on and its strict token rules: a RequestStartTransaction's
token keeps its type in Authorize and TransactionEvent (Central, eMAID); NoAuthorization starts
without an Authorize with an empty idToken; a 36-character token (a UUID) works and shows on the
bus; local list entries with the same value and different types are distinct; the reader kind is
a card's type (ISO15693). OCPP 1.6 refuses a card longer than its idTag's 20 characters. Files
from before types were kept are migrated (auth table, running transactions, outbox records)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from tests.ocpp_gateway.conftest import Rig
from voltbus_common import channels as ch
from voltbus_common.enums import CardType
from voltbus_common.models import RfidSeen
from voltbus_devcsms import rules
from voltbus_ocpp import records
from voltbus_ocpp.model.results import AuthStatus
from voltbus_ocpp.model.tokens import IdToken, TokenType
from voltbus_ocpp.repositories import RunningTransactions
from voltbus_ocpp.store import AuthTable, Store

UUID = "0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19"  # 36 characters: a Central token from an app


async def set_variable(rig: Rig, component: str, variable: str, value: str) -> None:
    answer = await rig.csms.send_action(rig.id, "SetVariables", {"setVariableData": [{
        "component": {"name": component}, "variable": {"name": variable},
        "attributeValue": value}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"


async def request_start(rig: Rig, value: str, kind: str, remote_id: int) -> dict[str, Any]:
    return await rig.csms.send_action(rig.id, "RequestStartTransaction", {
        "idToken": {"idToken": value, "type": kind}, "remoteStartId": remote_id, "evseId": 1})


def started_events(rig: Rig) -> list[dict[str, Any]]:
    return [m.payload for m in rig.csms.received(rig.id, "TransactionEvent")
            if m.payload["eventType"] == "Started"]


async def stop_running(rig: Rig, count: int) -> None:
    """RequestStopTransaction for the latest Started one; wait for its Ended (the count-th)."""
    csms = rig.csms
    tx_id = started_events(rig)[-1]["transactionInfo"]["transactionId"]
    assert await csms.send_action(rig.id, "RequestStopTransaction",
                                  {"transactionId": tx_id}) == {"status": "Accepted"}
    await csms.wait_for(rig.id, "TransactionEvent", count=count,
                        where=lambda p: p["eventType"] == "Ended")
    await rig.wait("transaction", lambda p: p is None, count=count)


async def test_request_start_central_and_emaid_tokens_keep_their_type(rig: Rig) -> None:
    """AuthorizeRemoteStart true: the Authorize and the Started TransactionEvent carry the type
    the CSMS gave (they said ISO14443 for every token); the 36-character Central token is on the
    bus's transaction and session as it came."""
    csms = rig.csms
    await rig.online_201(pilot="B")
    await rig.status("Preparing")
    await set_variable(rig, "AuthCtrlr", "AuthorizeRemoteStart", "true")

    assert await request_start(rig, UUID, "Central", 1) == {"status": "Accepted"}
    authorize = await csms.wait_for(rig.id, "Authorize")
    assert authorize["idToken"] == {"idToken": UUID, "type": "Central"}
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["idToken"] == {"idToken": UUID, "type": "Central"}
    tx = await rig.wait("transaction", lambda p: p is not None)
    assert tx.id_tag == UUID  # the bus contract carries 36 characters now
    await stop_running(rig, 1)
    session = await rig.wait("session")
    assert session.id_tag == UUID

    rig.pilot("B")
    assert await request_start(rig, "NL-TNM-C00122045-K", "eMAID", 2) == {"status": "Accepted"}
    authorize = await csms.wait_for(rig.id, "Authorize", count=2)
    assert authorize["idToken"] == {"idToken": "NL-TNM-C00122045-K", "type": "eMAID"}
    await csms.wait_for(rig.id, "TransactionEvent", count=2,
                        where=lambda p: p["eventType"] == "Started")
    assert started_events(rig)[-1]["idToken"] == {"idToken": "NL-TNM-C00122045-K",
                                                  "type": "eMAID"}
    assert csms.violations(rig.id) == []


async def test_no_authorization_starts_without_authorize(rig: Rig) -> None:
    """NoAuthorization (free charging; its idToken SHALL be empty): Accepted, no Authorize even
    with AuthorizeRemoteStart true, the TransactionEvent carries the empty NoAuthorization token
    and the relay closes; the bus shows the transaction without an id tag. It was Rejected."""
    csms = rig.csms
    await rig.online_201(pilot="B")
    await rig.status("Preparing")
    await set_variable(rig, "AuthCtrlr", "AuthorizeRemoteStart", "true")

    assert await request_start(rig, "", "NoAuthorization", 7) == {"status": "Accepted"}
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["idToken"] == {"idToken": "", "type": "NoAuthorization"}
    relay = await rig.wait("relay_set", lambda p: p.closed)
    assert relay.closed is True
    tx = await rig.wait("transaction", lambda p: p is not None)
    assert tx.id_tag is None
    assert csms.received(rig.id, "Authorize") == []
    await stop_running(rig, 1)
    assert csms.violations(rig.id) == []


def test_the_csms_holds_stations_to_the_token_types() -> None:
    """The dev CSMS's rules (checked on every Authorize and TransactionEvent): a token sent with
    another type than its RequestStartTransaction gave (by the event's remoteStartId, else by
    value), and a NoAuthorization token with a value, are violations."""
    given = {3: ("APP3", "Central")}
    assert rules.id_token_problems({"id_token": "APP3", "type": "ISO14443"}, None, given) == [
        (rules.REMOTE_TOKEN_TYPE,
         "idToken 'APP3' sent as ISO14443; RequestStartTransaction 3 gave it as Central")]
    assert rules.id_token_problems({"id_token": "APP3", "type": "Central"}, 3, given) == []
    assert rules.id_token_problems({"id_token": "OTHER", "type": "ISO14443"}, None, given) == []
    assert [r for r, _ in rules.id_token_problems(
        {"id_token": "X", "type": "NoAuthorization"}, None, {})] == [rules.NO_AUTHORIZATION_TOKEN]
    assert rules.id_token_problems({"id_token": "", "type": "NoAuthorization"}, None, {}) == []


async def test_local_list_entries_are_per_value_and_type(rig: Rig) -> None:
    """The same value as ISO14443 (Accepted) and as Central (Blocked) are two entries; a card
    tap with LocalPreAuthorize uses the ISO14443 one and starts without Authorize."""
    csms = rig.csms
    await rig.online_201(pilot="B")
    await rig.status("Preparing")
    await set_variable(rig, "AuthCtrlr", "LocalPreAuthorize", "true")
    assert await csms.send_action(rig.id, "SendLocalList", {
        "versionNumber": 1, "updateType": "Full", "localAuthorizationList": [
            {"idToken": {"idToken": "SAME", "type": "ISO14443"},
             "idTokenInfo": {"status": "Accepted"}},
            {"idToken": {"idToken": "SAME", "type": "Central"},
             "idTokenInfo": {"status": "Blocked"}}]}) == {"status": "Accepted"}
    gateway = rig.gateway
    assert gateway is not None
    assert {t: e.status for t, e in gateway.local_list.items()} == {
        IdToken("SAME"): AuthStatus.ACCEPTED,
        IdToken("SAME", TokenType.CENTRAL): AuthStatus.BLOCKED}
    rig.tap("SAME")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["idToken"] == {"idToken": "SAME", "type": "ISO14443"}
    assert csms.received(rig.id, "Authorize") == []
    # a differential removal of the Central entry leaves the card's
    assert await csms.send_action(rig.id, "SendLocalList", {
        "versionNumber": 2, "updateType": "Differential", "localAuthorizationList": [
            {"idToken": {"idToken": "SAME", "type": "Central"}}]}) == {"status": "Accepted"}
    assert list(gateway.local_list) == [IdToken("SAME")]
    assert csms.violations(rig.id) == []


async def test_a_vicinity_card_is_sent_as_iso15693(rig: Rig) -> None:
    """A reader that reports ISO15693 (hw/rfid card_type): Authorize says so; the cache learns
    it under that type only."""
    csms = rig.csms
    await rig.online_201(pilot="A")
    await rig.status("Available")
    rig.hw.publish(ch.RFID, RfidSeen(id_tag="E0040150A1B2C3D4", card_type=CardType.ISO15693))
    authorize = await csms.wait_for(rig.id, "Authorize")
    assert authorize["idToken"] == {"idToken": "E0040150A1B2C3D4", "type": "ISO15693"}
    gateway = rig.gateway
    assert gateway is not None
    for _ in range(100):
        if len(gateway.authoriser.cache):
            break
        await asyncio.sleep(0.05)
    assert list(gateway.authoriser.cache) == [IdToken("E0040150A1B2C3D4", TokenType.ISO15693)]
    assert csms.violations(rig.id) == []


async def test_16_refuses_a_card_longer_than_its_id_tag(rig: Rig,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """OCPP 1.6's idTag is CiString20: a 21-36 character card (now valid on the bus) cannot be
    sent in an Authorize; it is rejected like an invalid card, with a log saying why. A
    20-character one is authorised as before."""
    csms = rig.csms
    rig.meter(100.0)
    rig.pilot("A")
    await rig.start_gateway()
    await rig.status("Available")
    with caplog.at_level(logging.WARNING):
        rig.tap("A" * 21)
        for _ in range(100):
            if "has 21 characters" in caplog.text:
                break
            await asyncio.sleep(0.05)
    assert "card rejected: id tag AAAAAAAAAAAAAAAAAAAAA has 21 characters" in caplog.text
    assert "at most 20" in caplog.text
    rig.tap("B" * 20)
    assert (await csms.wait_for(rig.id, "Authorize"))["idTag"] == "B" * 20
    assert [m.payload["idTag"] for m in csms.received(rig.id, "Authorize")] == ["B" * 20]
    assert csms.violations(rig.id) == []


async def test_16_matches_a_vicinity_card_by_value(rig: Rig) -> None:
    """1.6 has no token types: an ISO15693 card is its uid, found on a 1.6 local list (whose
    entries are plain idTags) with LocalPreAuthorize: it starts without an Authorize, idTag
    the uid."""
    csms = rig.csms
    rig.meter(100.0)
    rig.pilot("B")
    await rig.start_gateway(ocpp_config={"LocalPreAuthorize": "true"})
    await rig.status("Preparing")
    assert await csms.send(rig.id, call.SendLocalList(
        list_version=1, update_type="Full", local_authorization_list=[
            {"idTag": "E0040150A1B2C3D4", "idTagInfo": {"status": "Accepted"}}])) == {
        "status": "Accepted"}
    rig.hw.publish(ch.RFID, RfidSeen(id_tag="E0040150A1B2C3D4", card_type=CardType.ISO15693))
    start = await csms.wait_for(rig.id, "StartTransaction")
    assert start["idTag"] == "E0040150A1B2C3D4"
    assert csms.received(rig.id, "Authorize") == []
    assert csms.violations(rig.id) == []


def test_files_from_before_token_types_are_migrated(tmp_path: Path) -> None:
    """The auth table keyed by value only, running rows and outbox records without a type: read
    as ISO14443, what the station sent for every token then; an empty running id tag is still
    'not authorised yet'."""
    path = tmp_path / "station.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE running (
            connector INTEGER PRIMARY KEY, local_id INTEGER NOT NULL, id_tag TEXT NOT NULL,
            started_at TEXT NOT NULL, meter_start_wh REAL NOT NULL, energy_wh REAL NOT NULL,
            transaction_id INTEGER);
        CREATE TABLE auth (
            kind TEXT NOT NULL, id_tag TEXT NOT NULL, status TEXT NOT NULL, expiry TEXT,
            parent TEXT, PRIMARY KEY (kind, id_tag));
        INSERT INTO running VALUES (1, 5, 'OLD1', '2026-01-01T00:00:00+00:00', 10, 20, 7);
        INSERT INTO running VALUES (2, 6, '', '2026-01-01T00:00:00+00:00', 10, 20, NULL);
        INSERT INTO auth VALUES ('list', 'OLD1', 'Accepted', NULL, 'P');
        INSERT INTO auth VALUES ('cache', 'OLD2', 'Blocked', NULL, NULL);""")
    db.commit()
    db.close()
    store = Store(path)
    assert dict(AuthTable(store, "list")) != {}
    assert AuthTable(store, "list")[IdToken("OLD1")].parent_id_tag == "P"
    assert AuthTable(store, "cache")[IdToken("OLD2")].status is AuthStatus.BLOCKED
    assert IdToken("OLD1", TokenType.CENTRAL) not in AuthTable(store, "list")
    AuthTable(store, "list")[IdToken("OLD1", TokenType.CENTRAL)] = AuthTable(store, "list")[
        IdToken("OLD1")]
    assert len(AuthTable(store, "list")) == 2  # per value and type now
    rows = {r.connector: r for r in RunningTransactions(store).all()}
    assert rows[1].id_tag == IdToken("OLD1", TokenType.ISO14443)
    assert rows[2].id_tag is None
    store.close()
    store = Store(path)  # opened again: nothing to migrate, nothing lost
    assert len(AuthTable(store, "list")) == 2
    store.close()

    old = records.decode(records.STARTED, {
        "connector": 1, "local_id": 5, "id_tag": "OLD1", "meter_start_wh": 10.0,
        "ts": "2026-01-01T00:00:00+00:00", "reservation_id": None})
    assert isinstance(old, records.TransactionStarted)
    assert old.effect.id_tag == IdToken("OLD1")
    free = records.TransactionStarted(records.SendStartTransaction(
        1, 6, IdToken("", TokenType.NO_AUTHORIZATION), 10.0, old.effect.ts))
    kind, body = records.encode(free)
    again = records.decode(kind, body)
    assert isinstance(again, records.TransactionStarted)
    assert again.effect.id_tag == IdToken("", TokenType.NO_AUTHORIZATION)
