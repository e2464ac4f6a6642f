"""Issue 10 §2, input checks: what the 1.6 spec forbids gets the CALLERROR (or answer) it names,
never an InternalError or a silent change. Against the dev central system over a real WebSocket;
invalid requests go out as raw frames (the dev CSMS validates what it sends by the schema)."""

from __future__ import annotations

import json

import pytest
from ocpp.v16 import call

from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_protocol_ops import online


async def raw(rig: Rig, action: str, payload: dict) -> list:
    frame = json.dumps([2, "bad-1", action, payload])
    return await rig.csms.central.send_raw(rig.id, frame, "bad-1")


@pytest.mark.parametrize(("action", "payload"), [
    ("ReserveNow", {"connectorId": 1, "expiryDate": "tomorrow", "idTag": "T",
                    "reservationId": 1}),
    ("ReserveNow", {"connectorId": 1, "expiryDate": "2026-13-45T99:00:00Z", "idTag": "T",
                    "reservationId": 1}),
    ("UpdateFirmware", {"location": "http://127.0.0.1:1/fw.bin", "retrieveDate": "soon"}),
    ("GetDiagnostics", {"location": "http://127.0.0.1:1/up", "startTime": "yesterday"}),
])
async def test_an_invalid_date_time_is_a_property_constraint_violation(
        rig: Rig, action: str, payload: dict) -> None:
    await online(rig)
    answer = await raw(rig, action, payload)
    assert answer[:3] == [4, "bad-1", "PropertyConstraintViolation"]
    # the station is fine afterwards, and nothing was reserved
    assert await rig.csms.send(rig.id, call.ReserveNow(
        connector_id=1, expiry_date="2099-01-01T00:00:00Z", id_tag="T",
        reservation_id=1)) == {"status": "Accepted"}


@pytest.mark.parametrize(("action", "payload"), [
    ("ChangeAvailability", {"connectorId": -1, "type": "Inoperative"}),
    ("UnlockConnector", {"connectorId": -1}),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": -1}),
])
async def test_a_negative_connector_id_is_a_property_constraint_violation(
        rig: Rig, action: str, payload: dict) -> None:
    await online(rig)
    answer = await raw(rig, action, payload)
    assert answer[:3] == [4, "bad-1", "PropertyConstraintViolation"]


async def test_full_local_list_entry_without_id_tag_info_changes_nothing(rig: Rig) -> None:
    """§5.15/§7.28: idTagInfo is required when UpdateType is Full: OccurenceConstraintViolation,
    and the list and its version stay as they were (before: the entry was dropped, emptying
    the list, and the new version was stored)."""
    await online(rig, ocpp_config={"LocalAuthListEnabled": "true"})
    assert await rig.csms.send(rig.id, call.SendLocalList(
        list_version=3, update_type="Full", local_authorization_list=[
            {"idTag": "KEEP", "idTagInfo": {"status": "Accepted"}}])) == {"status": "Accepted"}
    answer = await raw(rig, "SendLocalList", {
        "listVersion": 4, "updateType": "Full", "localAuthorizationList": [
            {"idTag": "KEEP"}, {"idTag": "NEW", "idTagInfo": {"status": "Accepted"}}]})
    assert answer[:3] == [4, "bad-1", "OccurenceConstraintViolation"]
    assert await rig.csms.send(rig.id, call.GetLocalListVersion()) == {"listVersion": 3}
    assert rig.gateway is not None
    assert {t.value for t in rig.gateway.local_list} == {"KEEP"}


async def test_an_empty_local_list_reads_back_version_0(rig: Rig) -> None:
    """§5.10: version 0 says the list is empty, whatever version the empty list was sent with."""
    await online(rig, ocpp_config={"LocalAuthListEnabled": "true"})
    assert await rig.csms.send(rig.id, call.SendLocalList(
        list_version=5, update_type="Full", local_authorization_list=[])) == {
        "status": "Accepted"}
    assert await rig.csms.send(rig.id, call.GetLocalListVersion()) == {"listVersion": 0}
    assert await rig.csms.send(rig.id, call.SendLocalList(
        list_version=6, update_type="Differential", local_authorization_list=[
            {"idTag": "A", "idTagInfo": {"status": "Accepted"}}])) == {"status": "Accepted"}
    assert await rig.csms.send(rig.id, call.GetLocalListVersion()) == {"listVersion": 6}
