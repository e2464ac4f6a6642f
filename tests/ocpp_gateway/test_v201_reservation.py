"""OCPP 2.0.1 ReserveNow / CancelReservation and ReservationStatusUpdate, against the dev central
system in 2.0.1 with schema validation on: onto the model's reservations (the ones 1.6's
ReserveNow makes), Reserved in StatusNotification, Expired at the expiry, Removed when the EVSE
is made inoperative, silent when the reservation is used by a transaction or cancelled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v16.enums import RegistrationStatus

from tests.ocpp_gateway.conftest import Rig
from voltbus_ocpp.model.tokens import IdToken
from voltbus_ocpp.protocol.wire_time import iso


def reserve(rid: int, tag: str, *, evse: int | None = 1, expiry_s: float = 3600,
            **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": rid, "idToken": {"idToken": tag, "type": "ISO14443"},
        "expiryDateTime": iso(datetime.now(UTC) + timedelta(seconds=expiry_s)), **extra}
    if evse is not None:
        payload["evseId"] = evse
    return payload


def updates(rig: Rig) -> list[tuple[int, str]]:
    return [(m.payload["reservationId"], m.payload["reservationUpdateStatus"])
            for m in rig.csms.received(rig.id, "ReservationStatusUpdate")]


async def reserved(rig: Rig) -> None:
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["connectorStatus"] == "Reserved")


async def test_reserve_now_and_cancel_reservation(rig: Rig) -> None:
    csms = rig.csms
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Available")
    assert await csms.send_action(rig.id, "ReserveNow", reserve(1, "R1")) == {
        "status": "Accepted"}
    await reserved(rig)
    await rig.status("Reserved")  # the bus shows it too
    gateway = rig.gateway
    assert gateway is not None
    r = gateway.model.connectors[1].facts.reservation  # the model's reservation, as in 1.6
    assert r is not None
    assert (r.reservation_id, r.id_tag) == (1, IdToken("R1"))
    assert await csms.send_action(rig.id, "ReserveNow", reserve(2, "R2")) == {
        "status": "Occupied"}  # the EVSE is already reserved
    assert await csms.send_action(rig.id, "ReserveNow", reserve(3, "R3", evse=7)) == {
        "status": "Rejected"}  # no such EVSE
    assert await csms.send_action(rig.id, "CancelReservation", {"reservationId": 99}) == {
        "status": "Rejected"}
    assert await csms.send_action(rig.id, "CancelReservation", {"reservationId": 1}) == {
        "status": "Accepted"}
    await csms.wait_for(rig.id, "StatusNotification", count=2,
                        where=lambda p: p["connectorStatus"] == "Available")
    assert gateway.model.connectors[1].facts.reservation is None
    # without evseId: any EVSE (ReservationCtrlr.NonEvseSpecific), unless that is off
    assert await csms.send_action(rig.id, "ReserveNow", reserve(4, "R4", evse=None)) == {
        "status": "Accepted"}
    assert await csms.send_action(rig.id, "CancelReservation", {"reservationId": 4}) == {
        "status": "Accepted"}
    answer = await csms.send_action(rig.id, "SetVariables", {"setVariableData": [{
        "component": {"name": "ReservationCtrlr"}, "variable": {"name": "NonEvseSpecific"},
        "attributeValue": "false"}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    assert await csms.send_action(rig.id, "ReserveNow", reserve(5, "R5", evse=None)) == {
        "status": "Rejected"}
    await asyncio.sleep(0.5)
    assert updates(rig) == []  # cancelled by the central system: no ReservationStatusUpdate
    assert csms.violations(rig.id) == []


async def test_an_expired_reservation_is_reported_expired(rig: Rig) -> None:
    csms = rig.csms
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Available")
    assert await csms.send_action(rig.id, "ReserveNow", reserve(11, "R", expiry_s=1.0)) == {
        "status": "Accepted"}
    await reserved(rig)
    update = await csms.wait_for(rig.id, "ReservationStatusUpdate", timeout=5)
    assert update == {"reservationId": 11, "reservationUpdateStatus": "Expired"}
    await csms.wait_for(rig.id, "StatusNotification", count=2,
                        where=lambda p: p["connectorStatus"] == "Available")
    await asyncio.sleep(0.3)
    assert updates(rig) == [(11, "Expired")]  # once
    assert csms.violations(rig.id) == []


async def test_a_reservation_on_an_evse_made_inoperative_is_removed(rig: Rig) -> None:
    csms = rig.csms
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Available")
    assert await csms.send_action(rig.id, "ReserveNow", reserve(21, "R")) == {
        "status": "Accepted"}
    await reserved(rig)
    assert await csms.send_action(rig.id, "ChangeAvailability", {
        "operationalStatus": "Inoperative", "evse": {"id": 1}}) == {"status": "Accepted"}
    update = await csms.wait_for(rig.id, "ReservationStatusUpdate", timeout=5)
    assert update == {"reservationId": 21, "reservationUpdateStatus": "Removed"}
    await csms.wait_for(rig.id, "StatusNotification",
                        where=lambda p: p["connectorStatus"] == "Unavailable")
    gateway = rig.gateway
    assert gateway is not None
    assert gateway.model.connectors[1].facts.reservation is None
    assert csms.violations(rig.id) == []


async def test_a_reservation_used_by_its_tag_starts_the_transaction_silently(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(10.0)
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Available")
    assert await csms.send_action(rig.id, "ReserveNow", reserve(31, "MINE")) == {
        "status": "Accepted"}
    await reserved(rig)
    rig.pilot("B")
    rig.tap("MINE")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    assert started["reservationId"] == 31
    assert started["idToken"]["idToken"] == "MINE"
    await asyncio.sleep(0.5)
    assert updates(rig) == []  # used, not expired nor removed
    assert csms.violations(rig.id) == []


async def test_a_reservation_ending_before_the_boot_is_accepted_is_told_after_it(
        rig: Rig) -> None:
    """Reconnected and Rejected by the central system: nothing but BootNotification may go
    out (B02/B03); the reservation that expired meanwhile is reported once the boot is
    accepted."""
    csms = rig.csms
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Available")
    assert await csms.send_action(rig.id, "ReserveNow", reserve(41, "R", expiry_s=1.5)) == {
        "status": "Accepted"}
    await reserved(rig)
    csms.behaviour.boot_status = RegistrationStatus.rejected
    csms.behaviour.boot_interval_s = 30  # x time_scale 0.01: a boot every 0.3 s
    await csms.central.disconnect(rig.id)
    await csms.wait_for(rig.id, "BootNotification", count=3)  # rejected, retrying
    await asyncio.sleep(1.6)  # the reservation expires while rejected
    assert updates(rig) == []
    csms.behaviour.boot_status = RegistrationStatus.accepted
    update = await csms.wait_for(rig.id, "ReservationStatusUpdate", timeout=5)
    assert update == {"reservationId": 41, "reservationUpdateStatus": "Expired"}
    assert csms.violations(rig.id) == []
