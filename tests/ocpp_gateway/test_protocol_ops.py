"""Core, Remote Trigger, Local Auth List, Reservation and Smart Charging operations over the real
WebSocket (the ocpp package validates every payload on both sides), and bad frames."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from ocpp.v16 import call

from tests.ocpp_gateway.conftest import Rig
from voltbus_ocpp.model.tokens import IdToken


def iso(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat().replace("+00:00", "Z")


async def online(rig: Rig, **settings: object) -> None:
    await rig.start_gateway(**settings)
    await rig.csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["connectorId"] == 1)


async def charging(rig: Rig, tag: str = "TAG") -> dict:
    rig.pilot("C")
    rig.tap(tag)
    start = await rig.csms.wait_for(rig.id, "StartTransaction")
    await rig.wait("transaction", lambda p: p is not None and p.transaction_id is not None)
    return start


@pytest.mark.parametrize(("frame", "code"), [
    ('[2, "u1", "Reset", {"type": "Sideways"}]', "PropertyConstraintViolation"),
    ('[2, "u1", "Reset", {}]', "OccurenceConstraintViolation"),
    ('[2, "u1", "Reset", {"type": 5}]', "TypeConstraintViolation"),
    ('[2, "u1", "Reset", {"type": "Soft", "extra": 1}]', "FormationViolation"),
    ('[2, "u1", "Reset", "soft"]', "FormationViolation"),
    ('[2, "u1", "Reset"]', "FormationViolation"),
    ('[2, "u1", "FlyToTheMoon", {}]', "NotSupported"),
    ('[2, "u1", "Heartbeat", {}]', "NotImplemented"),  # the station's own CALL
    ('[7, "u1", "Reset", {}]', "FormationViolation"),
    ('[2, "u1", "ChangeConfiguration", {"key": "K", "value": "' + "v" * 501 + '"}]',
     "PropertyConstraintViolation"),
])
async def test_bad_frame_gets_the_right_callerror_and_the_link_stays_up(
        rig: Rig, frame: str, code: str) -> None:
    await online(rig)
    answer = await rig.csms.central.send_raw(rig.id, frame, "u1")
    assert answer[0] == 4
    assert answer[1] == "u1"
    assert answer[2] == code
    still = await rig.csms.send(rig.id, call.GetConfiguration(key=["HeartbeatInterval"]))
    assert still["configurationKey"][0]["key"] == "HeartbeatInterval"
    assert rig.gateway is not None
    assert rig.gateway.link.connects == 1


async def test_unparsable_frame_is_ignored_and_the_link_stays_up(rig: Rig) -> None:
    await online(rig)
    session = rig.csms.central.session(rig.id)
    await session._send("this is not json")
    await session._send('{"an": "object"}')
    assert (await rig.csms.send(rig.id, call.DataTransfer(vendor_id="acme"))) == {
        "status": "UnknownVendorId"}
    assert rig.gateway is not None
    assert rig.gateway.link.connects == 1


@pytest.mark.parametrize("message", ["StatusNotification", "Heartbeat", "MeterValues",
                                     "BootNotification", "DiagnosticsStatusNotification",
                                     "FirmwareStatusNotification"])
async def test_trigger_message(rig: Rig, message: str) -> None:
    rig.meter(4321.0)
    await online(rig)
    assert rig.gateway is not None
    facts = rig.gateway.model.connectors[1].facts
    async with asyncio.timeout(5):  # the boot can come before the retained reading is in
        while facts.meter is None:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    before = len(rig.csms.received(rig.id, message))
    answer = await rig.csms.send(rig.id, call.TriggerMessage(requested_message=message,
                                                             connector_id=1))
    assert answer == {"status": "Accepted"}
    payload = await rig.csms.wait_for(rig.id, message, count=before + 1)
    if message == "MeterValues":
        value = payload["meterValue"][0]["sampledValue"][0]
        assert (value["value"], value["context"]) == ("4321", "Trigger")
    if message == "StatusNotification":
        assert (payload["connectorId"], payload["status"]) == (1, "Available")
    if message in ("DiagnosticsStatusNotification", "FirmwareStatusNotification"):
        assert payload == {"status": "Idle"}


async def test_trigger_for_unknown_connector_is_rejected(rig: Rig) -> None:
    await online(rig)
    assert await rig.csms.send(rig.id, call.TriggerMessage(
        requested_message="StatusNotification", connector_id=5)) == {"status": "Rejected"}


@pytest.mark.parametrize(("kind", "reason"), [("Soft", "SoftReset")])  # Hard: test_reset.py
async def test_reset_finishes_the_transaction_then_boots_again(rig: Rig, kind: str,
                                                               reason: str) -> None:
    rig.meter(100.0)
    await online(rig)
    await charging(rig)
    assert await rig.csms.send(rig.id, call.Reset(type=kind)) == {"status": "Accepted"}
    stop = await rig.csms.wait_for(rig.id, "StopTransaction")
    assert stop["reason"] == reason
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)
    actions = rig.csms.actions(rig.id)
    assert actions.index("StopTransaction") < len(actions) - 1 - actions[::-1].index(
        "BootNotification")


async def test_unlock_connector(rig: Rig) -> None:
    await online(rig)
    assert await rig.csms.send(rig.id, call.UnlockConnector(connector_id=1)) == {
        "status": "NotSupported"}


async def test_the_obsolete_unlock_setting_no_longer_fakes_an_unlock(rig: Rig) -> None:
    """VOLTBUS_UNLOCK_SUPPORTED is accepted and ignored: no lock on the bus, NotSupported (the
    unlock through a real lock: test_lock.py)."""
    await online(rig, unlock_supported=True)
    await charging(rig)
    assert await rig.csms.send(rig.id, call.UnlockConnector(connector_id=1)) == {
        "status": "NotSupported"}
    assert rig.csms.received(rig.id, "StopTransaction") == []


async def test_change_availability_is_scheduled_until_the_transaction_ends(rig: Rig) -> None:
    await online(rig)
    await charging(rig)
    answer = await rig.csms.send(rig.id, call.ChangeAvailability(connector_id=0,
                                                                 type="Inoperative"))
    assert answer == {"status": "Scheduled"}
    rig.tap("TAG")
    await rig.csms.wait_for(rig.id, "StopTransaction")
    rig.pilot("A")
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["status"] == "Unavailable")
    answer = await rig.csms.send(rig.id, call.ChangeAvailability(connector_id=1,
                                                                 type="Operative"))
    assert answer == {"status": "Accepted"}  # but the station (connector 0) is Inoperative
    answer = await rig.csms.send(rig.id, call.ChangeAvailability(connector_id=0,
                                                                 type="Operative"))
    assert answer == {"status": "Accepted"}
    await rig.csms.wait_for(rig.id, "StatusNotification", where=lambda p: (
        p["status"] == "Available" and p["connectorId"] == 1), count=2)
    assert rig.csms.violations(rig.id) == []  # no Unavailable -> Finishing (4.9)


async def test_clear_cache_forgets_tags_for_offline_use(rig: Rig) -> None:
    rig.pilot("B")
    await online(rig)
    rig.tap("CACHED")
    await rig.csms.wait_for(rig.id, "StartTransaction")
    rig.tap("CACHED")
    await rig.csms.wait_for(rig.id, "StopTransaction")
    assert rig.gateway is not None
    assert IdToken("CACHED") in rig.gateway.authoriser.cache
    assert await rig.csms.send(rig.id, call.ClearCache()) == {"status": "Accepted"}
    assert IdToken("CACHED") not in rig.gateway.authoriser.cache


async def test_local_list_full_differential_versions_and_offline_use(rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    answer = await csms.send(rig.id, call.SendLocalList(
        list_version=1, update_type="Full", local_authorization_list=[
            {"idTag": "LISTED", "idTagInfo": {"status": "Accepted"}},
            {"idTag": "BLOCKED", "idTagInfo": {"status": "Blocked"}}]))
    assert answer == {"status": "Accepted"}
    assert await csms.send(rig.id, call.GetLocalListVersion()) == {"listVersion": 1}
    stale = await csms.send(rig.id, call.SendLocalList(list_version=1, update_type="Differential",
                                                       local_authorization_list=[]))
    assert stale == {"status": "VersionMismatch"}
    answer = await csms.send(rig.id, call.SendLocalList(
        list_version=2, update_type="Differential", local_authorization_list=[
            {"idTag": "BLOCKED"}, {"idTag": "NEW", "idTagInfo": {"status": "Accepted"}}]))
    assert answer == {"status": "Accepted"}
    # Persisted: a restarted gateway still has version 2 and the entries.
    await rig.stop_gateway()
    await online(rig)
    assert await csms.send(rig.id, call.GetLocalListVersion()) == {"listVersion": 2}
    assert rig.gateway is not None
    assert sorted(t.value for t in rig.gateway.local_list) == ["LISTED", "NEW"]
    # Offline, a listed tag charges (LocalAuthorizeOffline).
    await csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    rig.pilot("B")
    rig.tap("LISTED")
    await rig.wait("relay_set", lambda p: p.closed is True)
    await csms.start()
    start = await csms.wait_for(rig.id, "StartTransaction", timeout=10)
    assert start["idTag"] == "LISTED"


async def test_local_pre_authorize_starts_without_asking(rig: Rig) -> None:
    csms = rig.csms
    rig.pilot("B")
    await online(rig, ocpp_config={"LocalPreAuthorize": "true",
                                   "MeterValueSampleInterval": "20"})
    await csms.send(rig.id, call.SendLocalList(list_version=1, update_type="Full",
                                               local_authorization_list=[
                                                   {"idTag": "LISTED",
                                                    "idTagInfo": {"status": "Accepted"}}]))
    rig.tap("LISTED")
    await csms.wait_for(rig.id, "StartTransaction")
    assert csms.received(rig.id, "Authorize") == []


async def test_reservation_holds_the_connector_for_its_tag(rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    answer = await csms.send(rig.id, call.ReserveNow(connector_id=1, expiry_date=iso(3600),
                                                     id_tag="MINE", reservation_id=7))
    assert answer == {"status": "Accepted"}
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["status"] == "Reserved")
    rig.pilot("B")
    rig.tap("OTHER")
    await asyncio.sleep(0.1)
    assert csms.received(rig.id, "Authorize") == []
    rig.tap("MINE")
    start = await csms.wait_for(rig.id, "StartTransaction")
    assert start["reservationId"] == 7
    assert await csms.send(rig.id, call.CancelReservation(reservation_id=7)) == {
        "status": "Rejected"}  # used up


async def test_reservation_expires_and_can_be_cancelled(rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    await csms.send(rig.id, call.ReserveNow(connector_id=0, expiry_date=iso(0.3), id_tag="A",
                                            reservation_id=1))
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["status"] == "Reserved")
    await csms.wait_for(rig.id, "StatusNotification", count=2,
                        where=lambda p: p["status"] == "Available" and p["connectorId"] == 1)
    assert await csms.send(rig.id, call.ReserveNow(
        connector_id=1, expiry_date=iso(3600), id_tag="A", reservation_id=2)) == {
        "status": "Accepted"}
    assert await csms.send(rig.id, call.CancelReservation(reservation_id=2)) == {
        "status": "Accepted"}
    await csms.wait_for(rig.id, "StatusNotification", count=3,
                        where=lambda p: p["status"] == "Available" and p["connectorId"] == 1)


def profile(pid: int, purpose: str, periods: list[tuple[int, float]], *, level: int = 0,
            unit: str = "A", kind: str = "Absolute", **extra: object) -> dict:
    body: dict = {"chargingProfileId": pid, "stackLevel": level,
                  "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
                  "chargingSchedule": {"chargingRateUnit": unit, "chargingSchedulePeriod": [
                      {"startPeriod": s, "limit": lim} for s, lim in periods]}}
    if kind == "Absolute":
        body["chargingSchedule"]["startSchedule"] = iso(-1)
    body.update(extra)
    return body


async def test_set_profile_then_composite_schedule(rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    answer = await csms.send(rig.id, call.SetChargingProfile(
        connector_id=1, cs_charging_profiles=profile(1, "TxDefaultProfile",
                                                     [(0, 16), (60, 10)])))
    assert answer == {"status": "Accepted"}
    await csms.send(rig.id, call.SetChargingProfile(
        connector_id=0, cs_charging_profiles=profile(2, "ChargePointMaxProfile", [(0, 13)])))
    result = await csms.send(rig.id, call.GetCompositeSchedule(connector_id=1, duration=120))
    assert result["status"] == "Accepted"
    periods = result["chargingSchedule"]["chargingSchedulePeriod"]
    assert [(p["startPeriod"], p["limit"]) for p in periods][:1] == [(0, 13.0)]
    assert (periods[-1]["limit"], 57 <= periods[-1]["startPeriod"] <= 60) == (10.0, True)
    assert await csms.send(rig.id, call.ClearChargingProfile()) == {"status": "Accepted"}
    assert (await csms.send(rig.id, call.GetCompositeSchedule(connector_id=1, duration=60)))[
        "status"] == "Rejected"


async def test_tx_profile_needs_a_transaction_and_remote_start_profile_applies(rig: Rig) -> None:
    csms = rig.csms
    rig.pilot("C")
    await online(rig)
    tx = profile(5, "TxProfile", [(0, 7)], kind="Relative")
    assert await csms.send(rig.id, call.SetChargingProfile(connector_id=1,
                                                           cs_charging_profiles=tx)) == {
        "status": "Rejected"}
    answer = await csms.send(rig.id, call.RemoteStartTransaction(id_tag="R", connector_id=1,
                                                                 charging_profile=tx))
    assert answer == {"status": "Accepted"}
    await csms.wait_for(rig.id, "StartTransaction")
    assert (await rig.wait("limit_set", lambda p: p.amps == 7.0)).amps == 7.0


async def test_configuration_is_persisted_across_restarts(rig: Rig) -> None:
    await online(rig)
    assert await rig.csms.send(rig.id, call.ChangeConfiguration(
        key="ConnectionTimeOut", value="45")) == {"status": "Accepted"}
    await rig.stop_gateway()
    await online(rig)
    got = await rig.csms.send(rig.id, call.GetConfiguration(key=["ConnectionTimeOut"]))
    assert got["configurationKey"][0]["value"] == "45"


async def test_transaction_message_is_retried_after_a_callerror(rig: Rig) -> None:
    rig.csms.behaviour.fail_next["StartTransaction"] = 1
    rig.pilot("B")
    await online(rig, ocpp_config={"TransactionMessageRetryInterval": "10",
                                   "MeterValueSampleInterval": "20"})
    rig.tap("TAG")
    start = await rig.csms.wait_for(rig.id, "StartTransaction", count=2)
    first = rig.csms.received(rig.id, "StartTransaction")[0].payload
    assert start == first  # the same message again, original timestamp
    await rig.wait("transaction", lambda p: p is not None and p.transaction_id == 1)


@pytest.mark.expected_errors
async def test_transaction_message_is_given_up_after_the_attempts(rig: Rig) -> None:
    rig.csms.behaviour.fail_next["StopTransaction"] = 99
    rig.pilot("B")
    await online(rig, ocpp_config={"TransactionMessageRetryInterval": "1",
                                   "TransactionMessageAttempts": "3",
                                   "MeterValueSampleInterval": "0"})
    rig.tap("TAG")
    await rig.csms.wait_for(rig.id, "StartTransaction")
    rig.tap("TAG")
    await rig.csms.wait_for(rig.id, "StopTransaction", count=3)
    rig.csms.behaviour.fail_next.clear()
    await rig.csms.send(rig.id, call.TriggerMessage(requested_message="Heartbeat"))
    await rig.csms.wait_for(rig.id, "Heartbeat")
    assert len(rig.csms.received(rig.id, "StopTransaction")) == 3
    assert rig.gateway is not None
    assert len(rig.gateway.queue) == 0


async def test_data_transfer_unknown_vendor(rig: Rig) -> None:
    await online(rig)
    answer = await rig.csms.send(rig.id, call.DataTransfer(vendor_id="com.acme",
                                                           message_id="x", data=json.dumps({})))
    assert answer == {"status": "UnknownVendorId"}


async def test_stop_transaction_carries_transaction_data(rig: Rig) -> None:
    rig.meter(500.0)
    rig.pilot("B")
    await online(rig, ocpp_config={"StopTxnSampledData": "Energy.Active.Import.Register,Voltage",
                                   "MeterValueSampleInterval": "0"})
    await charging(rig)
    rig.meter(650.0)
    await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 150.0)
    rig.tap("TAG")
    stop = await rig.csms.wait_for(rig.id, "StopTransaction")
    begin, end = stop["transactionData"]
    assert begin["sampledValue"] == [{"value": "500", "context": "Transaction.Begin",
                                      "measurand": "Energy.Active.Import.Register",
                                      "location": "Outlet", "unit": "Wh"}]
    assert [(v["measurand"], v["value"], v.get("phase")) for v in end["sampledValue"]] == [
        ("Energy.Active.Import.Register", "650", None), ("Voltage", "230", "L1-N"),
        ("Voltage", "231", "L2-N"), ("Voltage", "229", "L3-N")]
    assert {v["context"] for v in end["sampledValue"]} == {"Transaction.End"}


async def test_change_availability_of_the_station_reports_connector_0(rig: Rig) -> None:
    await online(rig)
    answer = await rig.csms.send(rig.id, call.ChangeAvailability(connector_id=0,
                                                                 type="Inoperative"))
    assert answer == {"status": "Accepted"}
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["connectorId"] == 0 and p["status"] == "Unavailable")
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["connectorId"] == 1 and p["status"] == "Unavailable")


async def test_minimum_status_duration_hides_a_blip(rig: Rig) -> None:
    await online(rig, ocpp_config={"MinimumStatusDuration": "40",  # 0.4 s here
                                   "MeterValueSampleInterval": "20"})
    rig.pilot("B")
    await rig.status("Preparing")  # the bus shows every change at once
    rig.pilot("A")
    await rig.status("Available", count=2)
    await asyncio.sleep(0.6)
    assert [m.payload["status"] for m in rig.csms.received(rig.id, "StatusNotification")
            if m.payload["connectorId"] == 1] == ["Available"]  # the blip never reached it
    rig.pilot("B")
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["status"] == "Preparing")
