"""The dev central system speaking OCPP 2.0.1 with a real 2.0.1 station (ocpp.v201) over a real
WebSocket, schema validation on both ends: what a station sends and how the central system
answers and keeps it."""

from __future__ import annotations

import itertools
import json

import pytest
from ocpp.exceptions import OCPPError, PropertyConstraintViolationError
from ocpp.v201 import call
from websockets.asyncio.client import connect

from tests.devcsms.station201 import energy, now, station201
from tests.fixtures.csms import Csms
from voltbus_devcsms import rules


async def test_boot_accepted_with_the_configured_interval(csms: Csms) -> None:
    csms.behaviour.boot_interval_s = 42
    async with station201(csms.url, "S1") as st:
        answer = await st.boot()
        assert (answer.status, answer.interval) == ("Accepted", 42)
        assert csms.central.version("S1") == "2.0.1"
        boot = await csms.wait_for("S1", "BootNotification")
        assert boot["chargingStation"]["vendorName"] == "voltbus"


async def test_boot_pending_then_rejected(csms: Csms) -> None:
    csms.behaviour.boot_status = "Pending"  # type: ignore[assignment]
    csms.behaviour.boot_interval_s = 7
    async with station201(csms.url, "S1") as st:
        assert ((await st.boot()).status, (await st.boot()).interval) == ("Pending", 7)
        csms.behaviour.boot_status = "Rejected"  # type: ignore[assignment]
        assert (await st.boot()).status == "Rejected"
        await st.call(call.Heartbeat())  # a station must stay silent after Rejected
        assert [v.action for v in csms.violations("S1", rules.CALL_WHILE_REJECTED)] == [
            "Heartbeat"]


async def test_heartbeat_and_status_notification(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        assert (await st.call(call.Heartbeat())).current_time.endswith("Z")
        await st.status("Occupied")
        assert (await csms.wait_for("S1", "StatusNotification"))["connectorStatus"] == "Occupied"
        assert csms.violations() == []


async def test_authorize_by_token_type(csms: Csms) -> None:
    csms.behaviour.accepted_tags = {"GOOD"}
    async with station201(csms.url, "S1") as st:
        async def status(token: str, kind: str) -> str:
            answer = await st.call(call.Authorize(id_token={"id_token": token, "type": kind}))
            return str(answer.id_token_info["status"])

        assert await status("GOOD", "ISO14443") == "Accepted"
        assert await status("BAD", "ISO15693") == "Invalid"
        assert await status("", "NoAuthorization") == "Accepted"
        assert await status("GOOD", "eMAID") == "Accepted"
        csms.behaviour.accepted_token_types = {"ISO14443"}
        assert await status("GOOD", "eMAID") == "Invalid"
        assert await status("GOOD", "ISO14443") == "Accepted"


async def test_transaction_events_are_kept_per_transaction(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        started = await st.event("Started", "T1", id_token="GOOD", meter_wh=1000)
        assert started.id_token_info == {"status": "Accepted"}
        await st.event("Updated", "T1", trigger_reason="MeterValuePeriodic", offline=True,
                       meter_wh=1500, timestamp="2026-01-01T00:00:00Z")
        await st.event("Ended", "T1", trigger_reason="EVDeparted", stopped_reason="EVDisconnected",
                       meter_wh=2000)
        tx = csms.central.transactions201["S1"]["T1"]
        assert tx.seq_nos == [0, 1, 2]
        assert [e.event_type for e in tx.events] == ["Started", "Updated", "Ended"]
        assert [e.offline for e in tx.events] == [False, True, False]
        assert tx.events[1].timestamp == "2026-01-01T00:00:00Z"  # the original, kept
        assert [e.energy_wh for e in tx.events] == [1000, 1500, 2000]
        assert (tx.ended, tx.stopped_reason) == (True, "EVDisconnected")
        assert csms.violations() == []


async def test_seq_no_gap_duplicate_unknown_and_after_end_are_violations(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        await st.event("Started", "T1", seq_no=0, meter_wh=10)
        await st.event("Updated", "T1", seq_no=2, meter_wh=20)  # 1 is missing
        await st.event("Updated", "T1", seq_no=2, meter_wh=20)  # sent twice
        await st.event("Updated", "T1", seq_no=3, meter_wh=5)  # register went down
        await st.event("Ended", "T1", seq_no=4)
        await st.event("Updated", "T1", seq_no=5)  # after Ended
        await st.event("Updated", "NEVER", seq_no=0)  # never Started
        await st.event("Started", "T2", seq_no=0)
        await st.event("Started", "T2", seq_no=1)  # Started twice
        found = [(v.rule, v.action) for v in csms.violations("S1")]
        assert found == [
            (rules.SEQNO_GAP, "TransactionEvent"), (rules.SEQNO_DUPLICATE, "TransactionEvent"),
            (rules.METER_DECREASED, "TransactionEvent"),
            (rules.TRANSACTION_ENDED, "TransactionEvent"),
            (rules.UNKNOWN_TRANSACTION, "TransactionEvent"),
            (rules.STARTED_TWICE, "TransactionEvent")]
        assert "missing 1" in csms.violations("S1", rules.SEQNO_GAP)[0].detail
        assert csms.central.transactions201["S1"]["T1"].seq_nos == [0, 2, 2, 3, 4, 5]


async def test_second_transaction_on_a_busy_evse_and_future_timestamps(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        await st.event("Started", "T1", seq_no=0)
        await st.event("Started", "T2", seq_no=0)
        await st.status("Available", timestamp=now(3600))
        rules_seen = [v.rule for v in csms.violations("S1")]
        assert rules_seen == [rules.CONNECTOR_BUSY, rules.FUTURE_TIMESTAMP]


async def test_reject_violations_answers_a_callerror(csms: Csms) -> None:
    csms.behaviour.reject_violations = True
    async with station201(csms.url, "S1") as st:
        await st.boot()
        with pytest.raises(PropertyConstraintViolationError, match="unknown-transaction"):
            await st.call(call.TransactionEvent(
                event_type="Updated", timestamp=now(), trigger_reason="MeterValuePeriodic",
                seq_no=0, transaction_info={"transaction_id": "NOPE"}), suppress=False)
        assert [v.rule for v in csms.violations("S1")] == [rules.UNKNOWN_TRANSACTION]


async def test_meter_values_and_the_notifications(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        await st.call(call.MeterValues(evse_id=0, meter_value=energy(12345)))
        await st.call(call.SecurityEventNotification(type="StartupOfTheDevice",
                                                     timestamp=now()))
        await st.call(call.FirmwareStatusNotification(status="Idle"))
        await st.call(call.LogStatusNotification(status="Idle"))
        await st.call(call.NotifyEvent(generated_at=now(), seq_no=0, event_data=[{
            "event_id": 1, "timestamp": now(), "trigger": "Delta", "actual_value": "Faulted",
            "event_notification_type": "HardWiredNotification",
            "component": {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
            "variable": {"name": "AvailabilityState"}}]))
        await st.call(call.ReservationStatusUpdate(reservation_id=3,
                                                   reservation_update_status="Removed"))
        await st.call(call.NotifyChargingLimit(charging_limit={"charging_limit_source": "EMS"},
                                               evse_id=1))
        answer = await st.call(call.DataTransfer(vendor_id="org.voltbus", message_id="x",
                                                 data={"k": 1}))
        assert answer.status == "Accepted"
        assert csms.actions("S1") == [
            "BootNotification", "MeterValues", "SecurityEventNotification",
            "FirmwareStatusNotification", "LogStatusNotification", "NotifyEvent",
            "ReservationStatusUpdate", "NotifyChargingLimit", "DataTransfer"]
        mv = await csms.wait_for("S1", "MeterValues")
        assert mv["meterValue"][0]["sampledValue"][0]["value"] == 12345
        assert csms.violations() == []


async def test_a_frame_against_the_schema_gets_a_callerror(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        with pytest.raises(OCPPError) as raised:
            # connectorStatus is not one of the 2.0.1 ConnectorStatusEnumType values
            await st.call(call.StatusNotification(timestamp=now(), connector_status="Charging",
                                                  evse_id=1, connector_id=1),
                          suppress=False, skip_schema_validation=True)
        assert raised.value.code in {"FormationViolation", "FormatViolation",
                                     "PropertyConstraintViolation", "TypeConstraintViolation"}


async def test_paged_notify_report_is_assembled_and_its_pages_checked(csms: Csms) -> None:
    async with station201(csms.url, "S1") as st:
        await st.boot()
        assert await csms.send("S1", call.GetBaseReport(
            request_id=5, report_base="FullInventory")) == {"status": "Accepted"}
        report = await csms.wait_report("S1", 5)
        assert len(report.pages) == 2
        names = [i["variable"]["name"] for i in report.items("reportData")]
        assert names == ["BasicAuthPassword", "TxUpdatedInterval", "HeartbeatInterval",
                         "ItemsPerMessage"]
        assert csms.violations() == []
        st.report_seq_nos = [0, 2]  # page 1 missing
        await csms.send("S1", call.GetBaseReport(request_id=6, report_base="FullInventory"))
        await csms.wait_report("S1", 6)
        assert [v.rule for v in csms.violations("S1")] == [rules.SEQNO_GAP]


async def test_report_pages_must_answer_an_accepted_request_and_end_at_the_last(
        csms: Csms) -> None:
    """2.0.1 B07/B08: NotifyReport follows an accepted GetBaseReport/GetReport (not a request
    never made), nothing after its last page; an attribute has a value unless WriteOnly, and a
    WriteOnly one has none (VariableAttributeType)."""
    async with station201(csms.url, "S1") as st:
        await st.boot()
        await st.send_report(7)  # never requested
        await csms.wait_report("S1", 7)
        assert [v.rule for v in csms.violations("S1")] == [rules.REPORT_UNREQUESTED] * 2
        await csms.send("S1", call.GetBaseReport(request_id=8, report_base="FullInventory"))
        await csms.wait_report("S1", 8)
        before = len(csms.violations("S1"))
        await st.call(call.NotifyReport(request_id=8, generated_at=now(), seq_no=2))
        await st.call(call.NotifyReport(request_id=8, generated_at=now(), seq_no=3, report_data=[
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
             "variable_attribute": [{"type": "Actual", "mutability": "ReadOnly"}]},
            {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
             "variable_attribute": [{"type": "Actual", "mutability": "WriteOnly",
                                     "value": "secret"}]}]))
        assert [v.rule for v in csms.violations("S1")[before:]] == [
            rules.REPORT_AFTER_LAST, rules.REPORT_AFTER_LAST, rules.REPORT_ATTRIBUTE_VALUE,
            rules.REPORT_ATTRIBUTE_VALUE]


async def test_get_variables_answers_one_result_per_requested_item(csms: Csms) -> None:
    """B06: a result for each requested item, naming it; one missing is a violation."""
    async with station201(csms.url, "S1") as st:
        await st.boot()
        asked = [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": name}}
                 for name in ("HeartbeatInterval", "NoSuchVariable")]
        await csms.send_action("S1", "GetVariables", {"getVariableData": asked})
        assert csms.violations("S1") == []
        st.results_limit = 1
        await csms.send_action("S1", "GetVariables", {"getVariableData": asked})
        assert [(v.rule, v.action) for v in csms.violations("S1")] == [
            (rules.VARIABLE_RESULTS, "GetVariables")]


async def test_charging_profile_reports_and_composite_schedules_answer_their_request(
        csms: Csms) -> None:
    """K09: the profiles reported are those asked for (this station reports a TxDefaultProfile
    of EVSE 1 whatever it is asked); K08: the composite schedule in the unit asked for."""
    async with station201(csms.url, "S1") as st:
        await st.boot()
        await csms.send_action("S1", "GetChargingProfiles", {
            "requestId": 1, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}})
        await csms.wait_report("S1", 1, action="ReportChargingProfiles")
        await csms.send_action("S1", "GetCompositeSchedule", {"duration": 60, "evseId": 1,
                                                              "chargingRateUnit": "A"})
        assert csms.violations("S1") == []
        await csms.send_action("S1", "GetChargingProfiles", {
            "requestId": 2, "chargingProfile": {"chargingProfilePurpose": "TxProfile"}})
        await csms.wait_report("S1", 2, action="ReportChargingProfiles")
        await csms.send_action("S1", "GetChargingProfiles", {
            "requestId": 3, "evseId": 2, "chargingProfile": {}})
        await csms.wait_report("S1", 3, action="ReportChargingProfiles")
        st.composite_unit = "W"
        await csms.send_action("S1", "GetCompositeSchedule", {"duration": 60, "evseId": 1,
                                                              "chargingRateUnit": "A"})
        assert [v.rule for v in csms.violations("S1")] == [
            rules.REPORT_CRITERIA, rules.REPORT_CRITERIA, rules.COMPOSITE_SCHEDULE]


async def test_one_call_in_flight_holds_for_201_too(csms: Csms) -> None:
    csms.behaviour.answer_delay_s["MeterValues"] = 0.3
    async with connect(f"{csms.url}/S1", subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        meter = [2, "m1", "MeterValues", {"evseId": 1, "meterValue": [
            {"timestamp": now(), "sampledValue": [{"value": 1}]}]}]
        await ws.send(json.dumps(meter))
        await ws.send(json.dumps([2, "h1", "Heartbeat", {}]))
        assert [json.loads(await ws.recv())[1] for _ in range(2)] == ["m1", "h1"]
    assert [(v.rule, v.unique_id) for v in csms.violations("S1")] == [
        (rules.CALL_IN_FLIGHT, "h1")]


async def test_authorisation_token_and_energy_before_it(csms: Csms) -> None:
    """E01-E03: an Authorized event without idToken, and a transaction started at plug-in
    (CablePluggedIn, no idToken) whose register rises before its Authorized event, are
    violations; the same transaction charging after its idToken arrived is not."""
    async with station201(csms.url, "S1") as st:
        await st.boot()
        await st.event("Started", "T1", trigger_reason="CablePluggedIn", meter_wh=10)
        await st.event("Updated", "T1", trigger_reason="MeterValuePeriodic", meter_wh=10.5)
        assert csms.violations("S1") == []  # within 1 Wh: no energy yet
        await st.event("Updated", "T1", trigger_reason="MeterValuePeriodic", meter_wh=30)
        await st.event("Updated", "T1", trigger_reason="Authorized", id_token="")
        await st.event("Updated", "T1", trigger_reason="Authorized", id_token="CARD")
        await st.event("Updated", "T1", trigger_reason="MeterValuePeriodic", meter_wh=500)
        await st.event("Ended", "T1", trigger_reason="StopAuthorized", meter_wh=600)
        assert [v.rule for v in csms.violations("S1")] == [
            rules.ENERGY_BEFORE_AUTH, rules.TX_AUTHORIZED_TOKEN]


async def test_a_charging_state_changed_event_must_change_the_state(csms: Csms) -> None:
    """E02/E06: triggerReason ChargingStateChanged carries the new chargingState, unlike the one
    last reported for the transaction by any of its events (the Started's, an Authorized's);
    a meter-value event without a state leaves the last one; another transaction starts afresh."""
    async with station201(csms.url, "S1") as st:
        await st.boot()
        await st.event("Started", "T1", charging_state="EVConnected")
        await st.event("Updated", "T1", trigger_reason="ChargingStateChanged",
                       charging_state="Charging")
        await st.event("Updated", "T1", trigger_reason="MeterValuePeriodic", meter_wh=10)
        assert csms.violations("S1") == []
        await st.event("Updated", "T1", trigger_reason="ChargingStateChanged",
                       charging_state="Charging")  # the state it had: no change
        await st.event("Updated", "T1", trigger_reason="ChargingStateChanged")  # which state?
        await st.event("Updated", "T1", trigger_reason="ChargingStateChanged",
                       charging_state="SuspendedEV")
        await st.event("Ended", "T1", trigger_reason="ChargingStateChanged",
                       charging_state="SuspendedEV", stopped_reason="StoppedByEV")
        st.seq = itertools.count(0)
        await st.event("Started", "T2", trigger_reason="CablePluggedIn")
        await st.event("Updated", "T2", trigger_reason="ChargingStateChanged",
                       charging_state="Charging")  # T1's state does not count
        found = [(v.rule, v.detail) for v in csms.violations("S1")]
        assert [rule for rule, _ in found] == [rules.CHARGING_STATE_UNCHANGED] * 3
        assert "chargingState Charging, the state already reported" in found[0][1]
        assert "without transactionInfo.chargingState" in found[1][1]
        assert "chargingState SuspendedEV" in found[2][1]  # the Ended repeating it


async def test_notify_display_messages_paging_and_criteria(csms: Csms) -> None:
    """O03/O04: NotifyDisplayMessages only for a GetDisplayMessages answered Accepted, nothing
    after its last page (tbc false), each message matching the request's criteria, none twice
    across the pages."""
    def info(mid: int, priority: str = "InFront") -> dict[str, object]:
        return {"id": mid, "priority": priority, "message": {"format": "UTF8", "content": "x"}}

    async with station201(csms.url, "S1") as st:
        await st.boot()
        await st.call(call.NotifyDisplayMessages(request_id=77, message_info=[info(1)]))
        assert [v.rule for v in csms.violations("S1")] == [rules.REPORT_UNREQUESTED]
        # this station answers Accepted and reports a NormalCycle "Welcome" (id 1)
        await csms.send("S1", call.GetDisplayMessages(request_id=4, priority="InFront"))
        await csms.wait_report("S1", 4, action="NotifyDisplayMessages")
        assert csms.violations("S1")[-1].rule == rules.DISPLAY_CRITERIA
        await st.call(call.NotifyDisplayMessages(request_id=4, message_info=[info(2)]))
        assert csms.violations("S1")[-1].rule == rules.REPORT_AFTER_LAST
        await csms.send("S1", call.GetDisplayMessages(request_id=5))
        await csms.wait_report("S1", 5, action="NotifyDisplayMessages")
        before = len(csms.violations("S1"))
        await st.call(call.NotifyDisplayMessages(request_id=5, message_info=[info(1)]))
        assert csms.violations("S1")[before:][0].rule == rules.REPORT_AFTER_LAST
        assert csms.violations("S1")[before:][1].rule == rules.DISPLAY_CRITERIA  # 1 twice
        assert "reported twice" in csms.violations("S1")[-1].detail


async def test_started_trigger_matches_the_start_point(csms: Csms) -> None:
    """E01: once this central system set TxCtrlr.TxStartPoint (SetVariables Accepted), a Started
    event whose triggerReason none of its points gives is a violation (EnergyTransfer:
    ChargingStateChanged, not Authorized); before it knew the list nothing is checked."""
    async with station201(csms.url, "S1") as st:
        st.variables[("TxCtrlr", "TxStartPoint")] = "PowerPathClosed"
        await st.boot()
        await st.event("Started", "T0", trigger_reason="SignedDataReceived", meter_wh=1,
                       id_token="CARD")
        await st.event("Ended", "T0", trigger_reason="StopAuthorized", meter_wh=1)
        await csms.send_action("S1", "SetVariables", {"setVariableData": [
            {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"},
             "attributeValue": "EnergyTransfer"}]})
        await st.event("Started", "T1", trigger_reason="ChargingStateChanged", meter_wh=10,
                       id_token="CARD", charging_state="Charging")
        await st.event("Ended", "T1", trigger_reason="ChargingStateChanged", meter_wh=20,
                       charging_state="SuspendedEV")
        assert csms.violations("S1") == []
        await st.event("Started", "T2", trigger_reason="Authorized", meter_wh=20,
                       id_token="CARD")
        assert [v.rule for v in csms.violations("S1")] == [rules.TX_START_TRIGGER]


async def test_charging_limit_rules_over_the_wire(csms: Csms) -> None:
    """K11-K13 at the dev central system: a Cleared with no limit notified, a CSO source and
    evseId 0 are violations; Notify then Cleared of the same source and EVSE is not, and a
    second Cleared of it is again."""
    async with station201(csms.url, "S1") as st:
        await st.boot()
        await st.call(call.ClearedChargingLimit(charging_limit_source="EMS", evse_id=1))
        assert [v.rule for v in csms.violations("S1")] == [rules.CLEARED_WITHOUT_LIMIT]
        await st.call(call.NotifyChargingLimit(
            charging_limit={"charging_limit_source": "CSO"}, evse_id=0))
        assert [v.rule for v in csms.violations("S1")][1:] == [rules.LIMIT_SOURCE]
        await st.call(call.NotifyChargingLimit(charging_limit={"charging_limit_source": "EMS"},
                                               evse_id=0))
        assert [v.rule for v in csms.violations("S1")][2:] == [rules.LIMIT_EVSE]
        await st.call(call.NotifyChargingLimit(charging_limit={"charging_limit_source": "SO"},
                                               evse_id=1))
        await st.call(call.ClearedChargingLimit(charging_limit_source="SO", evse_id=1))
        assert len(csms.violations("S1")) == 3
        await st.call(call.ClearedChargingLimit(charging_limit_source="SO", evse_id=1))
        assert [v.rule for v in csms.violations("S1")][3:] == [rules.CLEARED_WITHOUT_LIMIT]
def _event(event_id: int, monitor_id: int | None, kind: str = "CustomMonitor") -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": event_id, "timestamp": now(), "trigger": "Alerting", "actual_value": "7000",
        "event_notification_type": kind, "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "Power"}}
    if monitor_id is not None:
        event["variable_monitoring_id"] = monitor_id
    return event


async def test_notify_event_parts_and_monitors_and_the_monitoring_report(csms: Csms) -> None:
    """N07: seqNo 0 for a first or only part, n+1 after tbc true; a custom monitor's event names
    one the station accepted; N02: NotifyMonitoringReport only for an accepted request."""
    async with station201(csms.url, "S1") as st:
        await st.boot()
        await st.call(call.NotifyEvent(generated_at=now(), seq_no=0, tbc=True,
                                       event_data=[_event(1, 5, "PreconfiguredMonitor")]))
        await st.call(call.NotifyEvent(generated_at=now(), seq_no=1,
                                       event_data=[_event(2, 5, "PreconfiguredMonitor")]))
        assert csms.violations() == []
        await st.call(call.NotifyEvent(generated_at=now(), seq_no=1,
                                       event_data=[_event(3, 5, "PreconfiguredMonitor")]))
        assert [v.rule for v in csms.violations()] == [rules.NOTIFY_EVENT_PAGING]
        await st.call(call.NotifyEvent(generated_at=now(), seq_no=0, event_data=[_event(4, 77)]))
        await st.call(call.NotifyEvent(generated_at=now(), seq_no=0,
                                       event_data=[_event(5, None, "HardWiredMonitor")]))
        assert [v.rule for v in csms.violations()][1:] == [rules.NOTIFY_EVENT_MONITOR] * 2
        await st.call(call.NotifyMonitoringReport(request_id=9, seq_no=0, generated_at=now()))
        assert [v.rule for v in csms.violations()][3:] == [rules.REPORT_UNREQUESTED]
