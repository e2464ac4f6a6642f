"""2.0.1 block N monitoring against the dev central system (schema validation and its
notify-event-paging/notify-event-monitor/report rules on, a real WebSocket and broker, the meter
played on the hardware bus): SetVariableMonitoring thresholds and Delta on EVSE Power raise
NotifyEvent as the power crosses them, ClearVariableMonitoring, GetMonitoringReport's
NotifyMonitoringReport, the refusals, SetMonitoringLevel/Base, monitors and a tripped threshold
kept across a gateway restart, and events queued offline by OfflineQueuingSeverity."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from tests.ocpp_gateway.conftest import Rig
from voltbus_common import channels as ch
from voltbus_common.enums import ChargePointErrorCode
from voltbus_common.models import HardwareError

POWER = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}


def monitor(kind: str, value: float, severity: int, **extra: Any) -> dict[str, Any]:
    return {**POWER, "type": kind, "value": value, "severity": severity, **extra}


async def set_monitors(rig: Rig, *items: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await rig.csms.send_action(rig.id, "SetVariableMonitoring",
                                        {"setMonitoringData": list(items)})
    return list(answer["setMonitoringResult"])


def events(rig: Rig) -> list[dict[str, Any]]:
    """Every eventData received, in order."""
    return [e for m in rig.csms.received(rig.id, "NotifyEvent") for e in m.payload["eventData"]]


async def event_count(rig: Rig, n: int) -> list[dict[str, Any]]:
    for _ in range(100):
        if len(events(rig)) >= n:
            return events(rig)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(events(rig))} events, waited for {n}: {events(rig)}")


async def power_read(rig: Rig, watts: str) -> None:
    """Wait until the station reads EVSE 1 Power as watts (the meter reading has arrived)."""
    for _ in range(100):
        answer = await rig.csms.send_action(rig.id, "GetVariables", {"getVariableData": [POWER]})
        if answer["getVariableResult"][0].get("attributeValue") == watts:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"EVSE 1 Power never read {watts}")


async def test_threshold_and_delta_on_evse_power_raise_notify_events(rig: Rig) -> None:
    await rig.online_201()
    rig.meter(power_w=3680.0)
    await power_read(rig, "3680")
    results = await set_monitors(rig, monitor("UpperThreshold", 5000, 4),
                                 monitor("Delta", 1000, 6))
    assert [r["status"] for r in results] == ["Accepted", "Accepted"]
    upper, delta = (r["id"] for r in results)
    assert upper != delta
    rig.meter(power_w=4000.0)  # below the threshold, moved 320 W: nothing
    rig.meter(power_w=6000.0)  # above it, and 2320 W from the value when set
    found = await event_count(rig, 2)
    by_monitor = {e["variableMonitoringId"]: e for e in found}
    assert by_monitor[upper]["trigger"] == "Alerting"
    assert by_monitor[upper]["actualValue"] == "6000"
    assert "cleared" not in by_monitor[upper]
    assert by_monitor[delta]["trigger"] == "Delta"
    assert {e["eventNotificationType"] for e in found} == {"CustomMonitor"}
    assert found[0]["component"] == {"name": "EVSE", "evse": {"id": 1}}
    assert found[0]["variable"] == {"name": "Power"}
    note = rig.csms.received(rig.id, "NotifyEvent")[0].payload
    assert note["seqNo"] == 0
    assert note.get("tbc", False) is False
    rig.meter(power_w=6500.0)  # still above: no second alert; 500 W: no delta
    rig.meter(power_w=4500.0)  # back at or below: cleared; 1500 W from 6000: delta
    found = await event_count(rig, 4)
    assert {(e["variableMonitoringId"], e.get("cleared", False)) for e in found[2:]} == {
        (upper, True), (delta, False)}
    assert found[3]["actualValue"] == "4500"
    assert len({e["eventId"] for e in found}) == 4

    # cleared monitors raise nothing more (N06); an unknown id is NotFound
    answer = await rig.csms.send_action(rig.id, "ClearVariableMonitoring",
                                        {"id": [upper, delta, 999]})
    assert [(r["id"], r["status"]) for r in answer["clearMonitoringResult"]] == [
        (upper, "Accepted"), (delta, "Accepted"), (999, "NotFound")]
    rig.meter(power_w=9000.0)
    await power_read(rig, "9000")
    await asyncio.sleep(0.2)
    assert len(events(rig)) == 4
    assert rig.csms.violations(rig.id) == []


async def test_refusals_report_level_and_base(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201()
    assert await csms.send_action(rig.id, "GetMonitoringReport", {
        "requestId": 1, "componentVariable": [POWER]}) == {"status": "EmptyResultSet"}
    results = await set_monitors(
        rig,
        {**monitor("UpperThreshold", 10, 5), "component": {"name": "Nothing"}},
        {**monitor("UpperThreshold", 10, 5), "variable": {"name": "Nothing"}},
        {**monitor("UpperThreshold", 10, 5), "variable": {"name": "AvailabilityState"}},
        monitor("Periodic", 0, 5),  # no interval
        monitor("UpperThreshold", 99999, 5),  # above Power's maxLimit (N04.FR.06)
        monitor("Delta", -1, 5),  # N04.FR.14
        monitor("LowerThreshold", 100, 10),  # no such severity
        monitor("LowerThreshold", 100, 3, id=4242),  # no monitor 4242 to replace (N04.FR.13)
        monitor("LowerThreshold", 100, 3),
        monitor("LowerThreshold", 200, 3),  # same type and severity: Duplicate (N04.FR.10)
        {**monitor("Delta", 1, 8), "component": {"name": "EVSE", "evse": {"id": 1}},
         "variable": {"name": "AvailabilityState"}})
    assert [r["status"] for r in results] == [
        "UnknownComponent", "UnknownVariable", "UnsupportedMonitorType", "Rejected", "Rejected",
        "Rejected", "Rejected", "Rejected", "Accepted", "Duplicate", "Accepted"]
    lower, availability = results[8]["id"], results[10]["id"]
    # replacing by id: the same variable only (N04.FR.16), then a new value (N04.FR.12)
    results = await set_monitors(
        rig, {**monitor("Delta", 1, 8, id=lower), "variable": {"name": "Problem"}},
        monitor("LowerThreshold", 150, 3, id=lower))
    assert [r["status"] for r in results] == ["Rejected", "Accepted"]
    assert results[1]["id"] == lower

    assert await csms.send_action(rig.id, "GetMonitoringReport", {"requestId": 2}) == {
        "status": "Accepted"}
    report = await csms.wait_report(rig.id, 2, action="NotifyMonitoringReport")
    monitors = {(d["component"]["name"], d["variable"]["name"]): d["variableMonitoring"]
                for d in report.items("monitor") if d["variable"]["name"] != "Problem"}
    assert monitors == {
        ("EVSE", "Power"): [{"id": lower, "transaction": False, "value": 150,
                             "type": "LowerThreshold", "severity": 3}],
        ("EVSE", "AvailabilityState"): [{"id": availability, "transaction": False, "value": 1,
                                         "type": "Delta", "severity": 8}]}
    assert await csms.send_action(rig.id, "GetMonitoringReport", {
        "requestId": 3, "monitoringCriteria": ["DeltaMonitoring"]}) == {"status": "Accepted"}
    report = await csms.wait_report(rig.id, 3, action="NotifyMonitoringReport")
    assert [m["id"] for d in report.items("monitor") for m in d["variableMonitoring"]] == [
        1, 11, availability]  # the hard-wired and preconfigured Problem monitors are Delta too
    assert await csms.send_action(rig.id, "GetMonitoringReport", {
        "requestId": 4, "monitoringCriteria": ["PeriodicMonitoring"]}) == {
        "status": "EmptyResultSet"}

    # the non-numeric Delta: any change (N07.FR.19): plugging in makes EVSE 1 Occupied
    rig.pilot("B")
    found = await event_count(rig, 1)
    assert found[0]["variableMonitoringId"] == availability
    assert found[0]["actualValue"] == "Occupied"

    # SetMonitoringLevel (N05): 7 leaves severity 8 unreported
    assert await csms.send_action(rig.id, "SetMonitoringLevel", {"severity": 10}) == {
        "status": "Rejected"}
    assert await csms.send_action(rig.id, "SetMonitoringLevel", {"severity": 7}) == {
        "status": "Accepted"}
    rig.pilot("A")
    await rig.status("Available")
    await asyncio.sleep(0.3)
    assert len(events(rig)) == 1
    answer = await csms.send_action(rig.id, "GetVariables", {"getVariableData": [
        {"component": {"name": "MonitoringCtrlr"}, "variable": {"name": "ActiveMonitoringLevel"}},
        {"component": {"name": "MonitoringCtrlr"},
         "variable": {"name": "ItemsPerMessage", "instance": "SetVariableMonitoring"}}]})
    assert [r.get("attributeValue") for r in answer["getVariableResult"]] == ["7", "50"]

    # SetMonitoringBase HardWiredOnly: the custom monitors go (N03.FR.05)
    assert await csms.send_action(rig.id, "SetMonitoringBase", {
        "monitoringBase": "HardWiredOnly"}) == {"status": "Accepted"}
    assert await csms.send_action(rig.id, "GetMonitoringReport", {
        "requestId": 5, "componentVariable": [{"component": {"name": "EVSE"}}]}) == {
        "status": "EmptyResultSet"}
    assert csms.violations(rig.id) == []


async def test_monitors_and_a_tripped_threshold_survive_a_restart(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201()
    rig.meter(power_w=3680.0)
    await power_read(rig, "3680")
    [result] = await set_monitors(rig, monitor("UpperThreshold", 5000, 4))
    rig.meter(power_w=6000.0)
    found = await event_count(rig, 1)
    assert found[0]["variableMonitoringId"] == result["id"]

    await rig.stop_gateway()
    rig.meter(power_w=3000.0)  # back below while the gateway was down
    await rig.start_gateway(ocpp_version="2.0.1")
    await csms.wait_for(rig.id, "BootNotification", count=2)
    rig.meter(power_w=3000.0)
    found = await event_count(rig, 2)  # N07.FR.14: cleared after the restart
    assert (found[1]["variableMonitoringId"], found[1].get("cleared")) == (result["id"], True)
    assert found[1]["eventId"] > found[0]["eventId"]
    assert await csms.send_action(rig.id, "GetMonitoringReport", {"requestId": 7}) == {
        "status": "Accepted"}
    report = await csms.wait_report(rig.id, 7, action="NotifyMonitoringReport")
    assert [m["id"] for d in report.items("monitor") for m in d["variableMonitoring"]] == [
        1, 11, result["id"]]
    assert csms.violations(rig.id) == []


async def test_offline_events_queued_by_offline_queuing_severity(rig: Rig) -> None:
    """Offline, an event of severity at most OfflineQueuingSeverity is queued and sent once
    online, with its original timestamp; a less severe one is raised only once online."""
    csms = rig.csms
    await rig.online_201()
    answer = await csms.send_action(rig.id, "SetVariables", {"setVariableData": [
        {"component": {"name": "MonitoringCtrlr"}, "variable": {"name": "OfflineQueuingSeverity"},
         "attributeValue": "3"}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    rig.meter(power_w=3680.0)
    await power_read(rig, "3680")
    severe, mild = (r["id"] for r in await set_monitors(
        rig, monitor("UpperThreshold", 5000, 2), monitor("UpperThreshold", 5000, 7)))

    await csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    rig.meter(power_w=6000.0)
    await asyncio.sleep(0.3)
    assert rig.gateway is not None
    assert [q.kind for q in rig.gateway.queue.all()] == ["monitor_event"]
    await csms.start()
    found = await event_count(rig, 2)
    assert [e["variableMonitoringId"] for e in found] == [severe, mild]
    assert found[0]["timestamp"] <= found[1]["timestamp"]
    assert csms.violations(rig.id) == []


async def test_hard_wired_and_preconfigured_problem_monitors(rig: Rig) -> None:
    """The device model marks ChargingStation Problem (hard-wired, severity 1) and each EVSE's
    Problem (preconfigured, severity 4): a fault raises both at once; the hard-wired one cannot
    be cleared or replaced; SetMonitoringBase HardWiredOnly drops the preconfigured one, All
    brings it back."""
    csms = rig.csms
    await rig.online_201()
    assert await csms.send_action(rig.id, "GetMonitoringReport", {"requestId": 1}) == {
        "status": "Accepted"}
    report = await csms.wait_report(rig.id, 1, action="NotifyMonitoringReport")
    assert [(d["component"], d["variable"]["name"], [(m["id"], m["type"], m["severity"])
                                                     for m in d["variableMonitoring"]])
            for d in report.items("monitor")] == [
        ({"name": "ChargingStation"}, "Problem", [(1, "Delta", 1)]),
        ({"name": "EVSE", "evse": {"id": 1}}, "Problem", [(11, "Delta", 4)])]
    rig.hw.publish(ch.HW_ERROR, HardwareError(code=ChargePointErrorCode.GROUND_FAILURE,
                                              info="RCD"), connector=1)
    found = await event_count(rig, 2)
    assert {(e["variableMonitoringId"], e["eventNotificationType"], e["actualValue"])
            for e in found} == {(1, "HardWiredMonitor", "true"),
                                (11, "PreconfiguredMonitor", "true")}
    answer = await csms.send_action(rig.id, "ClearVariableMonitoring", {"id": [1]})
    assert answer["clearMonitoringResult"] == [{"id": 1, "status": "Rejected"}]  # N06.FR.03
    results = await set_monitors(rig, {
        "id": 1, "component": {"name": "ChargingStation"}, "variable": {"name": "Problem"},
        "type": "Delta", "value": 1, "severity": 5})
    assert results[0]["status"] == "Rejected"  # N04.FR.18
    assert await csms.send_action(rig.id, "SetMonitoringBase", {
        "monitoringBase": "HardWiredOnly"}) == {"status": "Accepted"}
    answer = await csms.send_action(rig.id, "ClearVariableMonitoring", {"id": [11]})
    assert answer["clearMonitoringResult"] == [{"id": 11, "status": "NotFound"}]
    assert await csms.send_action(rig.id, "SetMonitoringBase", {
        "monitoringBase": "All"}) == {"status": "Accepted"}
    answer = await csms.send_action(rig.id, "ClearVariableMonitoring", {"id": [11]})
    assert answer["clearMonitoringResult"] == [{"id": 11, "status": "Accepted"}]
    assert csms.violations(rig.id) == []


async def test_periodic_and_clock_aligned_monitors(rig: Rig) -> None:
    """N08: a Periodic monitor raises an event every value seconds, a PeriodicClockAligned one at
    each multiple of value seconds since midnight; trigger Periodic with the value read; the
    station's ticker wakes for them (no meter reading needed)."""
    csms = rig.csms
    await rig.online_201()
    rig.meter(power_w=3680.0)
    await power_read(rig, "3680")
    periodic, aligned = (r["id"] for r in await set_monitors(
        rig, monitor("Periodic", 1, 8), monitor("PeriodicClockAligned", 1, 7)))
    found = await event_count(rig, 4)
    assert {e["trigger"] for e in found} == {"Periodic"}
    assert {e["variableMonitoringId"] for e in found} == {periodic, aligned}
    assert {e["actualValue"] for e in found} == {"3680"}
    for mid in (periodic, aligned):  # one per second, not one per evaluation
        stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
                  for e in events(rig) if e["variableMonitoringId"] == mid]
        assert all(b - a >= timedelta(seconds=0.9) for a, b in pairwise(stamps)), stamps
    assert await csms.send_action(rig.id, "GetMonitoringReport", {
        "requestId": 2, "monitoringCriteria": ["PeriodicMonitoring"]}) == {"status": "Accepted"}
    report = await csms.wait_report(rig.id, 2, action="NotifyMonitoringReport")
    assert sorted(m["id"] for d in report.items("monitor") for m in d["variableMonitoring"]) == [
        periodic, aligned]
    await csms.send_action(rig.id, "ClearVariableMonitoring", {"id": [periodic, aligned]})
    count = len(events(rig))
    await asyncio.sleep(1.5)
    assert len(events(rig)) == count
    assert csms.violations(rig.id) == []
