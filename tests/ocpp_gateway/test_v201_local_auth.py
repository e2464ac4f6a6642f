"""OCPP 2.0.1 local authorisation list (SendLocalList Full/Differential with versions,
GetLocalListVersion) and ClearCache, against the dev central system in 2.0.1 with schema
validation on: the entries land in the same auth tables the 1.6 adapter uses, and the model's
authorisation decides with them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.ocpp_gateway.conftest import Rig
from voltbus_ocpp.model.results import AuthStatus
from voltbus_ocpp.model.tokens import IdToken


def token(tag: str) -> dict[str, str]:
    return {"idToken": tag, "type": "ISO14443"}


def entry(tag: str, status: str | None = None, **info: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"idToken": token(tag)}
    if status is not None:
        item["idTokenInfo"] = {"status": status, **info}
    return item


async def set_variable(rig: Rig, component: str, variable: str, value: str) -> None:
    answer = await rig.csms.send_action(rig.id, "SetVariables", {"setVariableData": [{
        "component": {"name": component}, "variable": {"name": variable},
        "attributeValue": value}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"


async def test_send_local_list_full_then_differential_with_versions(rig: Rig) -> None:
    csms = rig.csms
    await rig.start_gateway(ocpp_version="2.0.1")
    await csms.wait_for(rig.id, "StatusNotification")
    assert await csms.send_action(rig.id, "GetLocalListVersion", {}) == {"versionNumber": 0}

    assert await csms.send_action(rig.id, "SendLocalList", {
        "versionNumber": 3, "updateType": "Full", "localAuthorizationList": [
            entry("TAG1", "Accepted", cacheExpiryDateTime="2099-01-01T00:00:00Z",
                  groupIdToken=token("FLEET")),
            entry("TAG2", "Blocked")]}) == {"status": "Accepted"}
    assert await csms.send_action(rig.id, "GetLocalListVersion", {}) == {"versionNumber": 3}
    gateway = rig.gateway
    assert gateway is not None
    # the auth table the 1.6 adapter's SendLocalList fills (entries per value and type)
    local = {t.value: e for t, e in gateway.local_list.items()}
    assert set(local) == {"TAG1", "TAG2"}
    assert (local["TAG1"].status, local["TAG1"].parent_id_tag) == (AuthStatus.ACCEPTED, "FLEET")
    assert local["TAG1"].expiry is not None
    assert local["TAG1"].expiry.year == 2099
    assert local["TAG2"].status is AuthStatus.BLOCKED

    # a Differential update must raise the version; nothing changes when it does not
    assert await csms.send_action(rig.id, "SendLocalList", {
        "versionNumber": 3, "updateType": "Differential",
        "localAuthorizationList": [entry("TAG9", "Accepted")]}) == {"status": "VersionMismatch"}
    assert {t.value for t in gateway.local_list} == {"TAG1", "TAG2"}
    # Differential: an entry without idTokenInfo is removed, others added or replaced
    assert await csms.send_action(rig.id, "SendLocalList", {
        "versionNumber": 4, "updateType": "Differential", "localAuthorizationList": [
            entry("TAG2"), entry("TAG3", "Accepted"), entry("TAG1", "Expired")]}) == {
        "status": "Accepted"}
    assert await csms.send_action(rig.id, "GetLocalListVersion", {}) == {"versionNumber": 4}
    assert {t.value: e.status for t, e in gateway.local_list.items()} == {
        "TAG1": AuthStatus.EXPIRED, "TAG3": AuthStatus.ACCEPTED}

    # Full without idTokenInfo breaks an occurrence constraint; the list is kept
    answer = await csms.send_action(rig.id, "SendLocalList", {
        "versionNumber": 5, "updateType": "Full", "localAuthorizationList": [entry("TAG4")]})
    assert answer["error"] == "OccurrenceConstraintViolation"
    assert {t.value for t in gateway.local_list} == {"TAG1", "TAG3"}
    # more entries than ItemsPerMessage: Failed, nothing changed
    await set_variable(rig, "LocalAuthListCtrlr", "ItemsPerMessage", "1")
    assert await csms.send_action(rig.id, "SendLocalList", {
        "versionNumber": 6, "updateType": "Full", "localAuthorizationList": [
            entry("A", "Accepted"), entry("B", "Accepted")]}) == {"status": "Failed"}
    assert await csms.send_action(rig.id, "GetLocalListVersion", {}) == {"versionNumber": 4}
    # Full with no entries empties the list: version 0 says none is installed (D02.FR.02)
    assert await csms.send_action(rig.id, "SendLocalList", {
        "versionNumber": 7, "updateType": "Full"}) == {"status": "Accepted"}
    assert len(gateway.local_list) == 0
    assert await csms.send_action(rig.id, "GetLocalListVersion", {}) == {"versionNumber": 0}
    # the local list disabled: Failed, version 0
    await set_variable(rig, "LocalAuthListCtrlr", "Enabled", "false")
    assert await csms.send_action(rig.id, "SendLocalList", {
        "versionNumber": 8, "updateType": "Full",
        "localAuthorizationList": [entry("A", "Accepted")]}) == {"status": "Failed"}
    assert csms.violations(rig.id) == []


async def test_a_local_list_tag_starts_without_authorize(rig: Rig) -> None:
    """LocalPreAuthorize on: a tag Accepted on the local list starts a transaction at once (no
    Authorize): the model's authorisation reads what SendLocalList wrote."""
    csms = rig.csms
    rig.meter(100.0)
    rig.pilot("B")
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Preparing")
    await set_variable(rig, "AuthCtrlr", "LocalPreAuthorize", "true")
    assert await csms.send_action(rig.id, "SendLocalList", {
        "versionNumber": 1, "updateType": "Full", "localAuthorizationList": [
            entry("GOOD", "Accepted")]}) == {"status": "Accepted"}
    rig.tap("GOOD")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["idToken"] == token("GOOD")
    assert csms.received(rig.id, "Authorize") == []  # decided from the local list
    assert csms.violations(rig.id) == []


async def test_clear_cache_empties_the_authorisation_cache(rig: Rig) -> None:
    csms = rig.csms
    rig.pilot("A")
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Available")
    rig.tap("CARD")  # no EV: the answer is still learnt into the cache
    await csms.wait_for(rig.id, "Authorize")
    gateway = rig.gateway
    assert gateway is not None
    for _ in range(100):
        if IdToken("CARD") in gateway.authoriser.cache:
            break
        await asyncio.sleep(0.05)
    assert IdToken("CARD") in gateway.authoriser.cache
    assert await csms.send_action(rig.id, "ClearCache", {}) == {"status": "Accepted"}
    assert len(gateway.authoriser.cache) == 0
    await set_variable(rig, "AuthCacheCtrlr", "Enabled", "false")
    assert await csms.send_action(rig.id, "ClearCache", {}) == {"status": "Rejected"}
    assert csms.violations(rig.id) == []


async def test_basic_auth_password_set_over_201_is_not_logged(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """SetVariables SecurityCtrlr.BasicAuthPassword: the wire log shows the frame, never the
    value (the frames were logged verbatim at INFO)."""
    caplog.set_level(logging.DEBUG)
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.csms.wait_for(rig.id, "StatusNotification")
    secret = 'Sup3r"secret\\\\pw-0123456789'
    await set_variable(rig, "SecurityCtrlr", "BasicAuthPassword", secret)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("voltbus_ocpp"))
    assert "BasicAuthPassword" in ours  # the frame is logged
    assert "Sup3r" not in ours
    assert rig.csms.violations(rig.id) == []
