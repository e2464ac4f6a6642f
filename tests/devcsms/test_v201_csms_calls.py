"""Every CSMS-initiated OCPP 2.0.1 request the dev central system can send, to a real 2.0.1
station over a real WebSocket, schema-validated both ways: from a test (ocpp.v201.call
dataclasses or by action name) and over the HTTP control API."""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.v201 import call

from tests.devcsms.station201 import HASH, now, station201
from tests.fixtures.csms import Csms

PROFILE = {"id": 7, "stack_level": 0, "charging_profile_purpose": "TxDefaultProfile",
           "charging_profile_kind": "Relative", "charging_schedule": [{
               "id": 1, "charging_rate_unit": "A",
               "charging_schedule_period": [{"start_period": 0, "limit": 10}]}]}

# (request, the station's answer as the central system returns it, a field of it to check)
REQUESTS: list[tuple[Any, str, Any]] = [
    (call.Reset(type="OnIdle"), "status", "Scheduled"),
    (call.Reset(type="Immediate", evse_id=1), "status", "Accepted"),
    (call.TriggerMessage(requested_message="MeterValues"), "status", "NotImplemented"),
    (call.UnlockConnector(evse_id=1, connector_id=1), "status", "Unlocked"),
    (call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}), "status",
     "Accepted"),
    (call.CancelReservation(reservation_id=9), "status", "Rejected"),
    (call.SetChargingProfile(evse_id=1, charging_profile=PROFILE), "status", "Accepted"),
    (call.ClearChargingProfile(charging_profile_id=7), "status", "Unknown"),
    (call.GetCompositeSchedule(duration=3600, evse_id=1, charging_rate_unit="A"), "status",
     "Accepted"),
    (call.SendLocalList(version_number=3, update_type="Full", local_authorization_list=[{
        "id_token": {"id_token": "AA", "type": "ISO14443"},
        "id_token_info": {"status": "Accepted"}}]), "status", "Accepted"),
    (call.ClearCache(), "status", "Accepted"),
    (call.SetDisplayMessage(message={"id": 1, "priority": "InFront", "message": {
        "format": "UTF8", "content": "Hello"}}), "status", "Accepted"),
    (call.ClearDisplayMessage(id=1), "status", "Accepted"),
    (call.GetTransactionStatus(), "messagesInQueue", False),
    (call.DataTransfer(vendor_id="org.voltbus", data="x"), "status", "UnknownVendorId"),
    (call.CertificateSigned(certificate_chain="-----BEGIN CERTIFICATE-----"), "status",
     "Rejected"),
    (call.InstallCertificate(certificate_type="CSMSRootCertificate",
                             certificate="-----BEGIN CERTIFICATE-----"), "status", "Accepted"),
    (call.GetInstalledCertificateIds(certificate_type=["CSMSRootCertificate"]), "status",
     "Accepted"),
    (call.DeleteCertificate(certificate_hash_data=HASH), "status", "NotFound"),
]


@pytest.mark.parametrize(("request_", "field", "expected"), REQUESTS,
                         ids=[f"{type(r).__name__}-{i}" for i, (r, _, _) in enumerate(REQUESTS)])
async def test_csms_request_reaches_the_station_and_its_answer_comes_back(
        csms: Csms, request_: Any, field: str, expected: Any) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        answer = await csms.send("S1", request_)
        assert answer[field] == expected, answer
        assert [a for a, _ in st.requests] == [type(request_).__name__]


async def test_get_set_variables_and_the_local_list_version(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        set_answer = await csms.send_action("S1", "SetVariables", {"setVariableData": [
            {"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"},
             "attributeValue": "15"},
            {"component": {"name": "Nope"}, "variable": {"name": "Nothing"},
             "attributeValue": "1"}]})
        assert [r["attributeStatus"] for r in set_answer["setVariableResult"]] == [
            "Accepted", "UnknownVariable"]
        get_answer = await csms.send("S1", call.GetVariables(get_variable_data=[
            {"component": {"name": "SampledDataCtrlr"},
             "variable": {"name": "TxUpdatedInterval"}}]))
        assert get_answer["getVariableResult"][0]["attributeValue"] == "15"
        await csms.send("S1", call.SendLocalList(version_number=4, update_type="Full"))
        assert (await csms.send("S1", call.GetLocalListVersion()))["versionNumber"] == 4


async def test_get_base_report_and_get_report_bring_paged_notify_reports(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        answer = await csms.send("S1", call.GetBaseReport(request_id=11,
                                                          report_base="FullInventory"))
        assert answer == {"status": "Accepted"}
        report = await csms.wait_report("S1", 11)
        assert len(report.items("reportData")) == 4
        await csms.send("S1", call.GetReport(request_id=12, component_variable=[
            {"component": {"name": "OCPPCommCtrlr"}}]))
        assert len((await csms.wait_report("S1", 12)).pages) == 2
        assert csms.violations() == []


async def test_remote_start_and_stop_through_the_http_api(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        started = await csms.post("/remotestart", {"id": "S1", "connector": 1, "id_tag": "ME"})
        assert started.status_code == 200
        assert started.json()["status"] == "Accepted"
        assert st.requests[-1][1]["id_token"] == {"id_token": "ME", "type": "Central"}
        event = await csms.wait_for("S1", "TransactionEvent")
        assert event["transactionInfo"]["remoteStartId"] == st.requests[-1][1]["remote_start_id"]
        stopped = await csms.post("/remotestop", {"id": "S1"})  # the latest open transaction
        assert stopped.json() == {"status": "Accepted"}
        await csms.wait_for("S1", "TransactionEvent", where=lambda p: p["eventType"] == "Ended")
        tx = csms.central.transactions201["S1"]["tx-remote-1"]
        assert (tx.ended, tx.stopped_reason) == (True, "Remote")
        assert csms.central.open_transactions["S1"] == []
        answer = await csms.send("S1", call.GetTransactionStatus(transaction_id="tx-remote-1"))
        assert answer == {"messagesInQueue": False, "ongoingIndicator": False}


async def test_a_remote_start_token_must_keep_its_type(csms: Csms) -> None:
    """F01/F02: the token a RequestStartTransaction gives is (value, type); an Authorize or a
    TransactionEvent with its value and another type breaks remote-start-idtoken-type-changed,
    a NoAuthorization token with a value noauthorization-idtoken-not-empty. The same value and
    type is fine (the remote start's own Started, above, kept the type)."""
    async with station201(csms.url, "S1") as st:
        await st.boot()
        started = await csms.post("/remotestart", {"id": "S1", "connector": 1, "id_tag": "APP"})
        assert started.json()["status"] == "Accepted"
        await csms.wait_for("S1", "TransactionEvent")
        assert csms.violations() == []
        await st.call(call.Authorize(id_token={"id_token": "APP", "type": "Central"}))
        assert csms.violations() == []
        await st.call(call.Authorize(id_token={"id_token": "APP", "type": "ISO14443"}))
        await st.call(call.Authorize(id_token={"id_token": "X", "type": "NoAuthorization"}))
        assert [(v.rule, v.action) for v in csms.violations()] == [
            ("remote-start-idtoken-type-changed", "Authorize"),
            ("noauthorization-idtoken-not-empty", "Authorize")]


async def test_http_changeconfig_setmaxvalue_and_generic_call(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        answer = await csms.post("/changeconfig", {
            "id": "S1", "key": "OCPPCommCtrlr.HeartbeatInterval", "value": "30"})
        assert answer.json()["S1"]["setVariableResult"][0]["attributeStatus"] == "Accepted"
        assert st.variables[("OCPPCommCtrlr", "HeartbeatInterval")] == "30"
        bad_key = await csms.post("/changeconfig", {"id": "S1", "key": "HeartbeatInterval",
                                                    "value": "30"})
        assert bad_key.status_code == 422
        limited = await csms.post("/setmaxvalue", {"id": "S1", "limit": 20})
        assert limited.json() == {"status": "Accepted"}
        profile = st.requests[-1][1]["charging_profile"]
        assert profile["charging_profile_purpose"] == "ChargingStationMaxProfile"
        assert profile["charging_schedule"][0]["charging_schedule_period"] == [
            {"start_period": 0, "limit": 20}]
        assert st.requests[-1][1]["evse_id"] == 0

        reserved = await csms.post("/chargers/S1/call/ReserveNow", {
            "id": 3, "expiryDateTime": now(600), "idToken": {"idToken": "AA", "type": "ISO14443"}})
        assert reserved.json() == {"status": "Accepted"}
        await csms.wait_for("S1", "ReservationStatusUpdate")
        unknown = await csms.post("/chargers/S1/call/StartTransaction", {})
        assert unknown.status_code == 404  # a 1.6 action: not in 2.0.1
        invalid = await csms.post("/chargers/S1/call/Reset", {"type": "Sometime"})
        assert invalid.status_code == 422  # the schema says OnIdle or Immediate
        chargers = (await _get(csms, "/chargers"))[0]
        assert chargers["ocpp_version"] == "2.0.1"


async def test_follow_up_messages_of_firmware_log_trigger_profiles_and_display(
        csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        await csms.send("S1", call.UpdateFirmware(request_id=1, firmware={
            "location": "https://example.invalid/fw.bin", "retrieve_date_time": now()}))
        await csms.wait_for("S1", "FirmwareStatusNotification", count=5)
        assert [m.payload["status"] for m in csms.received("S1", "FirmwareStatusNotification")
                ][-1] == "Installed"
        answer = await csms.send("S1", call.GetLog(log={"remote_location": "ftp://x.invalid/"},
                                                   log_type="DiagnosticsLog", request_id=2))
        assert answer == {"status": "Accepted", "filename": "log.txt"}
        await csms.wait_for("S1", "LogStatusNotification",
                            where=lambda p: p["status"] == "Uploaded")
        await csms.send("S1", call.TriggerMessage(requested_message="Heartbeat"))
        await csms.wait_for("S1", "Heartbeat")
        await csms.send("S1", call.TriggerMessage(requested_message="StatusNotification",
                                                  evse={"id": 1, "connector_id": 1}))
        await csms.wait_for("S1", "StatusNotification")
        await csms.send("S1", call.GetChargingProfiles(request_id=3, charging_profile={
            "charging_profile_purpose": "TxDefaultProfile"}))
        profiles = await csms.wait_report("S1", 3, action="ReportChargingProfiles")
        assert profiles.items("chargingProfile")[0]["chargingSchedule"][0]["id"] == 1
        await csms.send("S1", call.GetDisplayMessages(request_id=4))
        shown = await csms.wait_report("S1", 4, action="NotifyDisplayMessages")
        assert shown.items("messageInfo")[0]["message"]["content"] == "Welcome"
        assert csms.violations() == []


async def test_a_16_payload_to_a_201_station_is_refused_before_sending(csms: Csms) -> None:
    from ocpp.v16 import call as v16_call
    async with station201(csms.url, "S1") as st:
        await st.boot()
        with pytest.raises(TypeError, match=r"speaks OCPP 2\.0\.1"):
            await csms.send("S1", v16_call.ClearCache())
        assert st.requests == []


async def _get(csms: Csms, path: str) -> Any:
    import httpx
    async with httpx.AsyncClient(base_url=csms.http_url) as client:
        return (await client.get(path)).json()


async def test_the_first_event_after_a_remote_start_carries_its_id(csms: Csms) -> None:
    """F02.FR.01: the first TransactionEvent on the EVSE after an Accepted
    RequestStartTransaction carries its remoteStartId: without it, or with another, it breaks
    remote-start-id-missing; the events after it need none."""
    async with station201(csms.url, "S1") as st:
        await st.boot()
        answer = await csms.post("/remotestart", {"id": "S1", "connector": 1, "id_tag": "APP"})
        assert answer.json()["status"] == "Accepted"
        await csms.wait_for("S1", "TransactionEvent")
        await st.event("Updated", "tx-remote-1")  # a later event: no remoteStartId needed
        assert csms.violations() == []
        await st.event("Ended", "tx-remote-1", trigger_reason="RemoteStop",
                       stopped_reason="Remote")

        st.sent_remote_start_id = lambda given: None  # forgets it
        answer = await csms.post("/remotestart", {"id": "S1", "connector": 1, "id_tag": "APP"})
        assert answer.json()["status"] == "Accepted"
        await csms.wait_for("S1", "TransactionEvent", count=4)
        assert [(v.rule, v.action) for v in csms.violations()] == [
            ("remote-start-id-missing", "TransactionEvent")]
        await st.event("Ended", "tx-remote-2", trigger_reason="RemoteStop",
                       stopped_reason="Remote")

        st.sent_remote_start_id = lambda given: given + 100  # another request's
        answer = await csms.post("/remotestart", {"id": "S1", "connector": 1, "id_tag": "APP"})
        assert answer.json()["status"] == "Accepted"
        await csms.wait_for("S1", "TransactionEvent", count=6)
        problems = [v.detail for v in csms.violations() if v.rule == "remote-start-id-missing"]
        assert len(problems) == 2
        assert "remoteStartId 103" in problems[-1]
