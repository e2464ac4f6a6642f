"""The 2.0.1 station's device model against the dev central system (schema validation and its
report/variables rules on, a real WebSocket): GetBaseReport Full/Configuration/SummaryInventory as
paged NotifyReports, GetReport by component/variable and by criteria (EmptyResultSet sends none),
and GetVariables/SetVariables on the station's own components (ChargingStation, EVSE, Connector,
DeviceDataCtrlr instances), with read-only and write-only variables treated as such; attributes
beyond Actual (EVSE Power MaxSet: ReadWrite, persistent across a gateway restart, applied as the
EVSE's current limit)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.ocpp_gateway.conftest import Rig
from voltbus_ocpp.protocol.v201.variables import DEFAULTS, READ_ONLY


def by_name(items: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """reportData keyed by (component, evse id, connector id, variable, instance)."""
    out = {}
    for d in items:
        evse = d["component"].get("evse", {})
        out[(d["component"]["name"], evse.get("id"), evse.get("connectorId"),
             d["variable"]["name"], d["variable"].get("instance"))] = d
    return out


def actual(d: dict[str, Any]) -> str | None:
    """The Actual attribute's value of a reportData."""
    return next(a.get("value") for a in d["variableAttribute"] if a["type"] == "Actual")


async def booted(rig: Rig) -> None:
    rig.meter(1000.0)
    rig.pilot("A")
    await rig.start_gateway(ocpp_version="2.0.1", connectors=2)
    await rig.csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["evseId"] == 2)


async def test_full_inventory_is_paged_and_lists_what_the_station_has(rig: Rig) -> None:
    csms = rig.csms
    await booted(rig)
    assert await csms.send_action(rig.id, "GetBaseReport", {
        "requestId": 1, "reportBase": "FullInventory"}) == {"status": "Accepted"}
    report = await csms.wait_report(rig.id, 1)
    assert len(report.pages) > 1
    assert [p["seqNo"] for p in report.pages] == list(range(len(report.pages)))
    assert [p.get("tbc", False) for p in report.pages] == [True] * (len(report.pages) - 1) + [
        False]
    found = by_name(report.items("reportData"))
    for name in DEFAULTS:  # every configuration variable
        component, variable = name.split(".", 1)
        assert (component, None, None, variable, None) in found, name
    heartbeat = found[("OCPPCommCtrlr", None, None, "HeartbeatInterval", None)]
    assert actual(heartbeat) == "3600"  # the boot answer's interval
    assert heartbeat["variableCharacteristics"] == {
        "dataType": "integer", "unit": "s", "minLimit": 0, "supportsMonitoring": True}
    assert heartbeat["variableAttribute"][0]["mutability"] == "ReadWrite"
    password = found[("SecurityCtrlr", None, None, "BasicAuthPassword", None)]
    assert password["variableAttribute"] == [{"type": "Actual", "mutability": "WriteOnly",
                                              "persistent": True, "constant": False}]
    for evse in (1, 2):
        assert actual(found[("EVSE", evse, None, "AvailabilityState", None)]) == "Available"
        power = found[("EVSE", evse, None, "Power", None)]
        assert power["variableCharacteristics"]["maxLimit"] == 16 * 230 * 3
        assert power["variableAttribute"][0]["mutability"] == "ReadOnly"
        assert actual(found[("Connector", evse, 1, "ConnectorType", None)]) == "cType2"
    assert ("EVSE", 3, None, "AvailabilityState", None) not in found
    assert actual(found[("DeviceDataCtrlr", None, None, "ItemsPerMessage", "GetReport")]) == "50"
    assert actual(found[("ChargingStation", None, None, "SupplyPhases", None)]) == "3"
    assert csms.violations(rig.id) == []


async def test_configuration_and_summary_inventories(rig: Rig) -> None:
    csms = rig.csms
    await booted(rig)
    answer = await csms.send_action(rig.id, "SetVariables", {"setVariableData": [
        {"component": {"name": "TxCtrlr"}, "variable": {"name": "EVConnectionTimeOut"},
         "attributeValue": "45"}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    await csms.send_action(rig.id, "GetBaseReport", {"requestId": 2,
                                                    "reportBase": "ConfigurationInventory"})
    config = by_name((await csms.wait_report(rig.id, 2)).items("reportData"))
    settable = {k for k, d in config.items() if any(
        a["mutability"] in ("ReadWrite", "WriteOnly") for a in d["variableAttribute"])}
    assert settable == set(config)  # what the operator can set, only
    assert actual(config[("TxCtrlr", None, None, "EVConnectionTimeOut", None)]) == "45"
    # the controllers' settable variables (SecurityCtrlr's are set by the station), and each
    # EVSE's Power for its ReadWrite MaxSet
    assert len(config) == len(DEFAULTS) - len(READ_ONLY) + 2
    assert [a["mutability"] for a in config[("EVSE", 1, None, "Power", None)][
        "variableAttribute"]] == ["ReadOnly", "ReadWrite"]

    rig.pilot("B")  # EVSE 1 occupied
    await rig.status("Preparing")
    await csms.send_action(rig.id, "GetBaseReport", {"requestId": 3,
                                                    "reportBase": "SummaryInventory"})
    summary = by_name((await csms.wait_report(rig.id, 3)).items("reportData"))
    assert {k[3] for k in summary} == {"AvailabilityState", "Available", "Problem"}
    assert actual(summary[("EVSE", 1, None, "AvailabilityState", None)]) == "Occupied"
    assert actual(summary[("EVSE", 2, None, "AvailabilityState", None)]) == "Available"
    assert actual(summary[("Connector", 1, 1, "AvailabilityState", None)]) == "Occupied"
    assert csms.violations(rig.id) == []


async def test_get_report_by_component_variable_and_by_criteria(rig: Rig) -> None:
    csms = rig.csms
    await booted(rig)
    answer = await csms.send_action(rig.id, "GetReport", {"requestId": 4, "componentVariable": [
        {"component": {"name": "EVSE", "evse": {"id": 2}},
         "variable": {"name": "AvailabilityState"}},
        {"component": {"name": "AuthCacheCtrlr"}}]})
    assert answer == {"status": "Accepted"}
    items = by_name((await csms.wait_report(rig.id, 4)).items("reportData"))
    assert set(items) == {("EVSE", 2, None, "AvailabilityState", None),
                          ("AuthCacheCtrlr", None, None, "Enabled", None)}

    # EVSE without an id: every EVSE's variable
    await csms.send_action(rig.id, "GetReport", {"requestId": 5, "componentVariable": [
        {"component": {"name": "EVSE"}, "variable": {"name": "Power"}}]})
    assert set(by_name((await csms.wait_report(rig.id, 5)).items("reportData"))) == {
        ("EVSE", 1, None, "Power", None), ("EVSE", 2, None, "Power", None)}

    # criteria: components with Enabled true; turning one off takes it out
    await csms.send_action(rig.id, "SetVariables", {"setVariableData": [
        {"component": {"name": "ReservationCtrlr"}, "variable": {"name": "Enabled"},
         "attributeValue": "false"}]})
    await csms.send_action(rig.id, "GetReport", {"requestId": 6,
                                                "componentCriteria": ["Enabled"]})
    enabled = by_name((await csms.wait_report(rig.id, 6)).items("reportData"))
    assert {k[0] for k in enabled} == {"AuthCacheCtrlr", "LocalAuthListCtrlr", "SmartChargingCtrlr",
                                       "DisplayMessageCtrlr", "MonitoringCtrlr"}
    assert ("LocalAuthListCtrlr", None, None, "ItemsPerMessage", None) in enabled

    # both: a componentVariable and a criterion must hold together
    await csms.send_action(rig.id, "GetReport", {"requestId": 7, "componentCriteria": [
        "Available"], "componentVariable": [{"component": {"name": "Connector"}}]})
    connectors = by_name((await csms.wait_report(rig.id, 7)).items("reportData"))
    assert {(k[0], k[1], k[2]) for k in connectors} == {("Connector", 1, 1), ("Connector", 2, 1)}

    # nothing matches: EmptyResultSet, and no NotifyReport follows
    assert await csms.send_action(rig.id, "GetReport", {
        "requestId": 8, "componentCriteria": ["Problem"]}) == {"status": "EmptyResultSet"}
    assert await csms.send_action(rig.id, "GetReport", {"requestId": 9, "componentVariable": [
        {"component": {"name": "EVSE", "evse": {"id": 9}}}]}) == {"status": "EmptyResultSet"}
    await asyncio.sleep(0.3)
    assert [p for m in csms.received(rig.id, "NotifyReport") if (p := m.payload)[
        "requestId"] in (8, 9)] == []
    assert csms.violations(rig.id) == []


async def test_get_and_set_variables_on_the_stations_components(rig: Rig) -> None:
    csms = rig.csms
    await booted(rig)
    rig.pilot("B", connector=2)
    await rig.status("Preparing", connector=2)
    asked: list[dict[str, Any]] = [
        {"component": {"name": "EVSE", "evse": {"id": 2}},
         "variable": {"name": "AvailabilityState"}},
        {"component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
         "variable": {"name": "ConnectorType"}},
        {"component": {"name": "EVSE", "evse": {"id": 3}}, "variable": {"name": "Power"}},
        {"component": {"name": "DeviceDataCtrlr"},
         "variable": {"name": "ItemsPerMessage", "instance": "GetVariables"}},
        {"component": {"name": "DeviceDataCtrlr"}, "variable": {"name": "ItemsPerMessage"}},
        {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"},
         "attributeType": "MaxSet"},
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}},
        {"component": {"name": "ChargingStation"}, "variable": {"name": "AvailabilityState"}},
    ]
    answer = await csms.send_action(rig.id, "GetVariables", {"getVariableData": asked})
    results = [(r["attributeStatus"], r.get("attributeValue"))
               for r in answer["getVariableResult"]]
    assert results == [("Accepted", "Occupied"), ("Accepted", "cType2"),
                       ("UnknownComponent", None), ("Accepted", "50"),
                       ("UnknownVariable", None),  # ItemsPerMessage exists per instance only
                       ("Accepted", "11040"),  # MaxSet unset: the rated power (maxLimit)
                       ("Rejected", None),
                       ("Accepted", "Available")]

    answer = await csms.send_action(rig.id, "SetVariables", {"setVariableData": [
        {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"},
         "attributeValue": "1000"},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "attributeValue": "120", "attributeType": "Target"},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "attributeValue": "120"},
        {"component": {"name": "OCPPCommCtrlr", "evse": {"id": 1}},
         "variable": {"name": "HeartbeatInterval"}, "attributeValue": "120"}]})
    assert [r["attributeStatus"] for r in answer["setVariableResult"]] == [
        "Rejected", "NotSupportedAttributeType", "Accepted", "UnknownComponent"]
    assert rig.gateway is not None
    assert rig.gateway.config.heartbeat_interval_s == 1.2  # 120 s at the test's time scale
    assert csms.violations(rig.id) == []


async def test_power_max_set_is_a_persistent_cap_applied_as_the_evse_limit(rig: Rig) -> None:
    csms = rig.csms
    await booted(rig)
    power = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
    answer = await csms.send_action(rig.id, "SetVariables", {"setVariableData": [
        {**power, "attributeType": "MaxSet", "attributeValue": "6900"},  # 10 A at 3 x 230 V
        {**power, "attributeType": "MaxSet", "attributeValue": "99999"},  # above maxLimit 11040
        {**power, "attributeType": "MaxSet", "attributeValue": "lots"},
        {**power, "attributeType": "Target", "attributeValue": "5000"},
        {**power, "attributeValue": "5000"}]})  # Actual is ReadOnly
    assert [r["attributeStatus"] for r in answer["setVariableResult"]] == [
        "Accepted", "Rejected", "Rejected", "NotSupportedAttributeType", "Rejected"]
    assert [r.get("attributeType") for r in answer["setVariableResult"]] == [
        "MaxSet", "MaxSet", "MaxSet", "Target", None]
    await rig.wait("limit_set", lambda p: p.amps == 10.0, connector=1)  # the EVSE gets the cap
    assert not [m for m in rig.seen["limit_set"] if m.connector == 2 and m.payload.amps == 10.0]

    await csms.send_action(rig.id, "GetReport", {"requestId": 11, "componentVariable": [
        {"component": {"name": "EVSE"}, "variable": {"name": "Power"}}]})
    report = by_name((await csms.wait_report(rig.id, 11)).items("reportData"))
    assert report[("EVSE", 1, None, "Power", None)]["variableAttribute"] == [
        {"type": "Actual", "mutability": "ReadOnly", "persistent": False, "constant": False,
         "value": "3680"},
        {"type": "MaxSet", "mutability": "ReadWrite", "persistent": True, "constant": False,
         "value": "6900"}]
    assert report[("EVSE", 2, None, "Power", None)]["variableAttribute"][1]["value"] == "11040"

    # a real restart: the stored MaxSet is read back and the EVSE limited again at once
    await rig.stop_gateway()
    since = len(rig.seen["limit_set"])
    await rig.start_gateway(ocpp_version="2.0.1", connectors=2)
    await csms.wait_for(rig.id, "BootNotification", count=2)
    await rig.wait("limit_set", lambda p: p.amps == 10.0, connector=1, count=1 + sum(
        1 for m in rig.seen["limit_set"][:since] if m.connector == 1 and m.payload.amps == 10.0))
    answer = await csms.send_action(rig.id, "GetVariables", {"getVariableData": [
        {**power, "attributeType": "MaxSet"}, {**power, "attributeType": "MinSet"}]})
    assert [(r["attributeStatus"], r.get("attributeValue"))
            for r in answer["getVariableResult"]] == [
        ("Accepted", "6900"), ("NotSupportedAttributeType", None)]
    assert csms.violations(rig.id) == []
