"""The 1.6 status table (§4.9, issue 10 §2) against the real gateway and the dev central system
over a real WebSocket, which flags every transition the table does not allow: an EV plugged into
a Reserved connector leaves it Reserved until the reserved tag (or one of its parent) comes, and
a session that starts on a connector still Finishing or Reserved goes through Preparing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v16 import call

from tests.ocpp_gateway.conftest import Rig


def iso(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat().replace("+00:00", "Z")


async def online(rig: Rig, **settings: Any) -> None:
    await rig.start_gateway(**settings)
    await rig.csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["connectorId"] == 1)


def statuses(rig: Rig, connector: int = 1) -> list[str]:
    return [m.payload["status"] for m in rig.csms.received(rig.id, "StatusNotification")
            if m.payload["connectorId"] == connector]


async def test_plugged_ev_leaves_the_connector_reserved_until_the_reserved_tag(
        rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    assert await csms.send(rig.id, call.ReserveNow(
        connector_id=1, expiry_date=iso(3600), id_tag="MINE", reservation_id=7)) == {
        "status": "Accepted"}
    await rig.status("Reserved")
    rig.pilot("C")
    rig.tap("OTHER")
    await asyncio.sleep(0.3)
    assert statuses(rig) == ["Available", "Reserved"]  # not Preparing
    assert rig.seen["status"][-1].payload.status.value == "Reserved"
    assert csms.received(rig.id, "StartTransaction") == []
    rig.tap("MINE")
    start = await csms.wait_for(rig.id, "StartTransaction")
    assert start["reservationId"] == 7
    await rig.status("Charging")
    assert statuses(rig) == ["Available", "Reserved", "Preparing", "Charging"]
    assert csms.violations(rig.id) == []


async def test_a_tag_of_the_reservations_parent_may_use_it(rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    assert await csms.send(rig.id, call.SendLocalList(list_version=1, update_type="Full",
                                                      local_authorization_list=[
        {"idTag": "CHILD", "idTagInfo": {"status": "Accepted", "parentIdTag": "FLEET"}}])) == {
        "status": "Accepted"}
    assert await csms.send(rig.id, call.ReserveNow(
        connector_id=1, expiry_date=iso(3600), id_tag="OWNER", reservation_id=8,
        parent_id_tag="FLEET")) == {"status": "Accepted"}
    rig.pilot("B")
    await asyncio.sleep(0.2)
    assert statuses(rig)[-1] == "Reserved"
    rig.tap("CHILD")
    start = await csms.wait_for(rig.id, "StartTransaction")
    assert (start["idTag"], start["reservationId"]) == ("CHILD", 8)
    await rig.status("SuspendedEV")
    assert statuses(rig) == ["Available", "Reserved", "Preparing", "SuspendedEV"]
    assert csms.violations(rig.id) == []


async def test_a_reservations_parent_is_learnt_by_authorize(rig: Rig) -> None:
    """§5.13: a tag in neither the local list nor the cache is sent in an Authorize.req, whose
    answer gives its parent idTag; only a tag of the reservation's parent may then use it."""
    csms = rig.csms
    csms.behaviour.parent_tags = {"CHILD": "FLEET", "STRANGER": "ELSEWHERE"}
    await online(rig)
    assert await csms.send(rig.id, call.ReserveNow(
        connector_id=1, expiry_date=iso(3600), id_tag="OWNER", reservation_id=9,
        parent_id_tag="FLEET")) == {"status": "Accepted"}
    rig.pilot("B")
    await asyncio.sleep(0.2)
    rig.tap("STRANGER")
    await csms.wait_for(rig.id, "Authorize", where=lambda p: p["idTag"] == "STRANGER")
    await asyncio.sleep(0.3)
    assert csms.received(rig.id, "StartTransaction") == []
    assert statuses(rig)[-1] == "Reserved"
    rig.tap("CHILD")
    await csms.wait_for(rig.id, "Authorize", where=lambda p: p["idTag"] == "CHILD")
    start = await csms.wait_for(rig.id, "StartTransaction")
    assert (start["idTag"], start["reservationId"]) == ("CHILD", 9)
    await rig.status("SuspendedEV")
    assert statuses(rig) == ["Available", "Reserved", "Preparing", "SuspendedEV"]
    assert csms.violations(rig.id) == []


async def test_a_remote_start_on_a_reservation_authorizes_the_tag(rig: Rig) -> None:
    """§5.11 with AuthorizeRemoteTxRequests true: a RemoteStartTransaction is handled as a tap,
    so on a connector reserved with a parent idTag for another tag (§5.13) the tag is sent in an
    Authorize.req (the dev central system flags a start without one): Accepted ("will attempt"),
    and only a tag whose parent the answer gives as the reservation's starts on it."""
    csms = rig.csms
    csms.behaviour.parent_tags = {"CHILD": "FLEET", "STRANGER": "ELSEWHERE"}
    await online(rig)
    assert await csms.send(rig.id, call.ChangeConfiguration(
        key="AuthorizeRemoteTxRequests", value="true")) == {"status": "Accepted"}
    assert await csms.send(rig.id, call.ReserveNow(
        connector_id=1, expiry_date=iso(3600), id_tag="OWNER", reservation_id=10,
        parent_id_tag="FLEET")) == {"status": "Accepted"}
    rig.pilot("B")
    await asyncio.sleep(0.2)
    assert await csms.send(rig.id, call.RemoteStartTransaction(
        id_tag="STRANGER", connector_id=1)) == {"status": "Accepted"}
    await csms.wait_for(rig.id, "Authorize", where=lambda p: p["idTag"] == "STRANGER")
    await asyncio.sleep(0.3)
    assert csms.received(rig.id, "StartTransaction") == []
    assert statuses(rig)[-1] == "Reserved"
    assert await csms.send(rig.id, call.RemoteStartTransaction(id_tag="CHILD")) == {
        "status": "Accepted"}  # no connector given: the reserved one
    await csms.wait_for(rig.id, "Authorize", where=lambda p: p["idTag"] == "CHILD")
    start = await csms.wait_for(rig.id, "StartTransaction")
    assert (start["idTag"], start["reservationId"], start["connectorId"]) == ("CHILD", 10, 1)
    await rig.status("SuspendedEV")
    assert statuses(rig) == ["Available", "Reserved", "Preparing", "SuspendedEV"]
    assert csms.violations(rig.id) == []


async def test_new_session_on_a_finishing_connector_goes_through_preparing(rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    rig.pilot("C")
    rig.tap("TAG")
    await csms.wait_for(rig.id, "StartTransaction")
    await rig.status("Charging")
    rig.tap("TAG")
    await csms.wait_for(rig.id, "StopTransaction")
    await rig.status("Finishing")
    rig.tap("TAG")  # the cable is still in: a new session
    await csms.wait_for(rig.id, "StartTransaction", count=2)
    await rig.status("Charging", count=2)
    assert statuses(rig) == ["Available", "Preparing", "Charging", "Finishing", "Preparing",
                             "Charging"]
    assert csms.violations(rig.id) == []


async def test_remote_start_on_a_finishing_connector_goes_through_preparing(rig: Rig) -> None:
    csms = rig.csms
    await online(rig, ocpp_config={"AuthorizeRemoteTxRequests": "false",
                                   "MeterValueSampleInterval": "20"})
    rig.pilot("B")
    rig.tap("TAG")
    await csms.wait_for(rig.id, "StartTransaction")
    rig.tap("TAG")
    await rig.status("Finishing")
    assert await csms.send(rig.id, call.RemoteStartTransaction(id_tag="R", connector_id=1)) == {
        "status": "Accepted"}
    await csms.wait_for(rig.id, "StartTransaction", count=2)
    await rig.status("SuspendedEV", count=2)
    assert statuses(rig)[-3:] == ["Finishing", "Preparing", "SuspendedEV"]
    assert csms.violations(rig.id) == []
