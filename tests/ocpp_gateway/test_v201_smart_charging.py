"""OCPP 2.0.1 smart charging (block K) on the profile engine 1.6 uses, against the dev central
system (schema validation and its K08/K09 rules on, a real WebSocket): SetChargingProfile for
ChargingStationMaxProfile, TxDefaultProfile and TxProfile with the 2.0.1 refusals, the limits it
puts on the EVSE, GetChargingProfiles as ReportChargingProfiles per EVSE, ClearChargingProfile,
GetCompositeSchedule in A and W, and profiles kept across a gateway restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.ocpp_gateway.conftest import Rig


def iso(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat().replace("+00:00", "Z")


def profile(pid: int, purpose: str, periods: list[tuple[int, float]], *, level: int = 0,
            kind: str = "Absolute", **extra: Any) -> dict[str, Any]:
    """A 2.0.1 ChargingProfileType (camelCase) with one schedule in A."""
    schedule: dict[str, Any] = {"id": pid * 10, "chargingRateUnit": "A",
                                "chargingSchedulePeriod": [
                                    {"startPeriod": s, "limit": lim} for s, lim in periods]}
    if kind == "Absolute":
        schedule["startSchedule"] = iso(-1)
    return {"id": pid, "stackLevel": level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": [schedule], **extra}


async def set_profile(rig: Rig, evse: int, body: dict[str, Any]) -> str:
    answer = await rig.csms.send_action(rig.id, "SetChargingProfile",
                                        {"evseId": evse, "chargingProfile": body})
    return str(answer["status"])


async def online(rig: Rig, **settings: Any) -> None:
    await rig.start_gateway(ocpp_version="2.0.1", **settings)
    await rig.csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["evseId"] == 1)


async def composite(rig: Rig, evse: int, unit: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"duration": 600, "evseId": evse}
    if unit:
        body["chargingRateUnit"] = unit
    return await rig.csms.send_action(rig.id, "GetCompositeSchedule", body)


def periods(answer: dict[str, Any]) -> list[tuple[int, float]]:
    return [(p["startPeriod"], p["limit"]) for p in answer["schedule"]["chargingSchedulePeriod"]]


async def reported_tx_profile(rig: Rig, request_id: int) -> tuple[int, str]:
    """GetChargingProfiles for TxProfiles: the one reported, (id, transactionId)."""
    await rig.csms.send_action(rig.id, "GetChargingProfiles", {
        "requestId": request_id, "chargingProfile": {"chargingProfilePurpose": "TxProfile"}})
    [reported] = (await rig.csms.wait_report(
        rig.id, request_id, action="ReportChargingProfiles")).items("chargingProfile")
    return reported["id"], reported["transactionId"]


async def test_station_max_and_tx_default_limit_the_evse_and_the_composite(rig: Rig) -> None:
    rig.pilot("A")
    await online(rig)
    assert periods(await composite(rig, 1)) == [(0, 16.0)]  # the station's own maximum
    assert await set_profile(rig, 0, profile(1, "ChargingStationMaxProfile", [(0, 10)])) == (
        "Accepted")
    assert periods(await composite(rig, 1)) == [(0, 10.0)]
    default = profile(2, "TxDefaultProfile", [(0, 8), (300, 12)])  # from a second ago
    assert await set_profile(rig, 0, default) == "Accepted"
    limits = periods(await composite(rig, 1))
    assert [lim for _, lim in limits] == [8.0, 10.0]  # TxDefault, then the station max
    assert 298 <= limits[1][0] <= 300
    assert periods(await composite(rig, 0)) == [(0, 10.0)]
    watts = await composite(rig, 1, "W")
    assert watts["schedule"]["chargingRateUnit"] == "W"
    assert [lim for _, lim in periods(watts)] == [8 * 690.0, 10 * 690.0]
    assert (await composite(rig, 2))["status"] == "Rejected"  # no EVSE 2

    answer = await rig.csms.send_action(rig.id, "GetChargingProfiles", {
        "requestId": 1, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}})
    assert answer == {"status": "Accepted"}
    report = await rig.csms.wait_report(rig.id, 1, action="ReportChargingProfiles")
    assert [(p["evseId"], p["chargingLimitSource"]) for p in report.pages] == [(0, "CSO")]
    assert report.items("chargingProfile") == [default]

    assert await rig.csms.send_action(rig.id, "ClearChargingProfile", {
        "chargingProfileCriteria": {"chargingProfilePurpose": "ChargingStationMaxProfile"}}) == {
        "status": "Accepted"}
    assert [lim for _, lim in periods(await composite(rig, 1))] == [8.0, 12.0]
    assert await rig.csms.send_action(rig.id, "ClearChargingProfile", {
        "chargingProfileId": 1}) == {"status": "Unknown"}  # already gone

    # kept on disk: after a restart it still limits and is reported
    await rig.stop_gateway()
    await online(rig)
    assert [lim for _, lim in periods(await composite(rig, 1))] == [8.0, 12.0]
    await rig.csms.send_action(rig.id, "GetChargingProfiles", {"requestId": 2,
                                                              "chargingProfile": {}})
    again = await rig.csms.wait_report(rig.id, 2, action="ReportChargingProfiles")
    assert [p["id"] for p in again.items("chargingProfile")] == [2]
    assert rig.csms.violations(rig.id) == []


async def test_a_tx_profile_follows_its_transaction(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(1000.0)
    rig.pilot("B")
    await online(rig)
    await rig.status("Preparing")
    assert await set_profile(rig, 1, profile(4, "TxDefaultProfile", [(0, 12)],
                                             kind="Relative")) == "Accepted"
    rig.tap("04A1B2C3")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    tx_id = started["transactionInfo"]["transactionId"]
    await rig.wait("transaction", lambda p: p is not None and p.transaction_ref == tx_id)
    await rig.wait("limit_set", lambda p: p.amps == 12.0)  # the TxDefaultProfile at the start
    assert await set_profile(rig, 1, profile(5, "TxProfile", [(0, 6)], kind="Relative",
                                             transactionId="not-this-one")) == "Rejected"
    assert await set_profile(rig, 1, profile(5, "TxProfile", [(0, 6)], kind="Relative",
                                             transactionId=tx_id)) == "Accepted"
    await rig.wait("limit_set", lambda p: p.amps == 6.0)
    assert periods(await composite(rig, 1)) == [(0, 6.0)]

    await csms.send_action(rig.id, "GetChargingProfiles", {
        "requestId": 3, "evseId": 1, "chargingProfile": {"chargingProfilePurpose": "TxProfile"}})
    report = await csms.wait_report(rig.id, 3, action="ReportChargingProfiles")
    [reported] = report.items("chargingProfile")
    assert (reported["id"], reported["transactionId"], report.pages[0]["evseId"]) == (5, tx_id, 1)
    assert await csms.send_action(rig.id, "GetChargingProfiles", {
        "requestId": 4, "chargingProfile": {"stackLevel": 9}}) == {"status": "NoProfiles"}

    rig.pilot("A")  # the transaction ends, its TxProfile with it
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Ended")
    await csms.send_action(rig.id, "GetChargingProfiles", {"requestId": 5,
                                                          "chargingProfile": {}})
    left = await csms.wait_report(rig.id, 5, action="ReportChargingProfiles")
    assert [p["id"] for p in left.items("chargingProfile")] == [4]  # the TxDefaultProfile
    await asyncio.sleep(0.2)
    assert {m.payload["requestId"] for m in csms.received(rig.id, "ReportChargingProfiles")} == {
        3, 5}  # none for the NoProfiles answer
    assert csms.violations(rig.id) == []


async def test_profiles_201_refuses(rig: Rig) -> None:
    rig.pilot("A")
    await online(rig)
    refused = {
        "max on an EVSE": (1, profile(1, "ChargingStationMaxProfile", [(0, 10)])),
        "tx on evse 0": (0, profile(2, "TxProfile", [(0, 10)], kind="Relative",
                                    transactionId="x")),
        "tx without transaction": (1, profile(3, "TxProfile", [(0, 10)], kind="Relative")),
        "tx with no transaction running": (1, profile(3, "TxProfile", [(0, 10)],
                                                      kind="Relative", transactionId="x")),
        "external constraints": (0, profile(4, "ChargingStationExternalConstraints",
                                            [(0, 10)])),
        "unknown EVSE": (3, profile(5, "TxDefaultProfile", [(0, 10)])),
        "first period not at 0": (0, profile(6, "TxDefaultProfile", [(5, 10)])),
        "periods not increasing": (0, profile(6, "TxDefaultProfile", [(0, 10), (0, 8)])),
        "absolute without start": (0, {**profile(7, "TxDefaultProfile", [(0, 10)]),
                                       "chargingSchedule": [{
                                           "id": 1, "chargingRateUnit": "A",
                                           "chargingSchedulePeriod": [
                                               {"startPeriod": 0, "limit": 10}]}]}),
        "stack level too high": (0, profile(8, "TxDefaultProfile", [(0, 10)], level=11)),
        "too many periods": (0, profile(9, "TxDefaultProfile",
                                        [(60 * i, 10) for i in range(25)])),
    }
    for why, (evse, body) in refused.items():
        assert await set_profile(rig, evse, body) == "Rejected", why
    assert await set_profile(rig, 0, profile(10, "TxDefaultProfile", [(0, 10)], level=1)) == (
        "Accepted")
    # the same stackLevel and purpose on the same EVSE, overlapping: refused, not replaced
    assert await set_profile(rig, 0, profile(11, "TxDefaultProfile", [(0, 9)], level=1)) == (
        "Rejected")
    assert await set_profile(rig, 0, profile(10, "TxDefaultProfile", [(0, 9)], level=1)) == (
        "Accepted")  # the same id replaces
    assert periods(await composite(rig, 1)) == [(0, 9.0)]
    await rig.csms.send_action(rig.id, "SetVariables", {"setVariableData": [
        {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "Enabled"},
         "attributeValue": "false"}]})
    assert await set_profile(rig, 0, profile(12, "TxDefaultProfile", [(0, 9)], level=2)) == (
        "Rejected")
    answer = await rig.csms.send_action(rig.id, "GetVariables", {"getVariableData": [
        {"component": {"name": "SmartChargingCtrlr"},
         "variable": {"name": "Entries", "instance": "ChargingProfiles"}}]})
    assert answer["getVariableResult"][0]["attributeValue"] == "1"
    assert rig.csms.violations(rig.id) == []


async def test_request_start_with_a_tx_profile_starts_at_its_limit(rig: Rig) -> None:
    csms = rig.csms
    rig.pilot("C")
    await online(rig)
    await rig.status("Preparing")
    assert await csms.send_action(rig.id, "RequestStartTransaction", {
        "idToken": {"idToken": "REMOTE", "type": "Central"}, "remoteStartId": 1, "evseId": 1,
        "chargingProfile": profile(7, "TxDefaultProfile", [(0, 7)], kind="Relative")}) == {
        "status": "Rejected"}  # K05: only a TxProfile comes with a start
    assert await csms.send_action(rig.id, "RequestStartTransaction", {
        "idToken": {"idToken": "REMOTE", "type": "Central"}, "remoteStartId": 2, "evseId": 1,
        "chargingProfile": profile(7, "TxProfile", [(0, 7)], kind="Relative")}) == {
        "status": "Accepted"}
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    tx_id = started["transactionInfo"]["transactionId"]
    await rig.wait("limit_set", lambda p: p.amps == 7.0)
    await rig.wait("transaction", lambda p: p is not None and p.transaction_ref == tx_id)
    assert await reported_tx_profile(rig, 1) == (7, tx_id)
    assert csms.violations(rig.id) == []


async def test_a_tx_profile_sent_before_the_started_is_answered(rig: Rig) -> None:
    """The central system knows the transaction from its Started and may set a TxProfile for it
    before it has answered that Started: the profile goes on that transaction."""
    csms = rig.csms
    csms.behaviour.answer_delay_s["TransactionEvent"] = 0.5
    rig.meter(1000.0)
    rig.pilot("C")
    await online(rig)
    await rig.status("Preparing")
    rig.tap("04A1B2C3")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    tx_id = started["transactionInfo"]["transactionId"]
    assert await set_profile(rig, 1, profile(8, "TxProfile", [(0, 5)], kind="Relative",
                                             transactionId=tx_id)) == "Accepted"
    await rig.wait("limit_set", lambda p: p.amps == 5.0)
    await rig.wait("transaction", lambda p: p is not None and p.transaction_ref == tx_id)
    csms.behaviour.answer_delay_s.clear()
    assert await reported_tx_profile(rig, 1) == (8, tx_id)
    assert csms.violations(rig.id) == []
