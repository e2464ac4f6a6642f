"""OCPP 2.0.1 block N monitoring (N02-N07) on the station's version-neutral monitors
(`monitoring.py`, `model/monitoring.py`): SetVariableMonitoring, ClearVariableMonitoring,
GetMonitoringReport's NotifyMonitoringReport pages, SetMonitoringLevel, SetMonitoringBase and the
NotifyEvent an outbox record becomes. The device model says what can be monitored
(`device_model.monitorable`) and reads the values.
"""

from __future__ import annotations

from typing import Any

from voltbus_ocpp.model.monitoring import (
    MAX_SEVERITY,
    THRESHOLDS,
    Monitor,
    MonitorType,
    Origin,
    VariableInfo,
    check,
)
from voltbus_ocpp.monitoring import Monitoring
from voltbus_ocpp.protocol.v201.device_model import (
    DeviceModel,
    Entry,
    matches,
    monitorable,
    ref_of,
)
from voltbus_ocpp.protocol.v201.variables import Variables
from voltbus_ocpp.protocol.wire_time import iso
from voltbus_ocpp.records import MonitorEventRecord

REPORT_PAGE = 20  # monitor entries per NotifyMonitoringReport
CRITERIA = {"ThresholdMonitoring": THRESHOLDS, "DeltaMonitoring": {MonitorType.DELTA},
            "PeriodicMonitoring": {MonitorType.PERIODIC, MonitorType.PERIODIC_CLOCK_ALIGNED}}


class V201MonitorSource:
    """The monitors' view of the 2.0.1 device model (monitoring.MonitorSource)."""

    def __init__(self, device: DeviceModel, variables: Variables) -> None:
        self.device = device
        self.variables = variables

    def read(self, ref: tuple[str, int | None, int | None, str, str | None]) -> str | None:
        """The variable's Actual value."""
        entry = self.device.by_ref(ref)
        return None if entry is None else self.device.value(entry)

    @property
    def enabled(self) -> bool:
        """MonitoringCtrlr.Enabled."""
        return self.variables.monitoring_enabled

    @property
    def level(self) -> int:
        """MonitoringCtrlr.ActiveMonitoringLevel."""
        return self.variables.monitoring_level

    @property
    def offline_severity(self) -> int:
        """MonitoringCtrlr.OfflineQueuingSeverity."""
        return self.variables.offline_queuing_severity


def _info(entry: Entry) -> VariableInfo:
    return VariableInfo(numeric=entry.data_type in ("decimal", "integer"),
                        min_limit=entry.min_limit, max_limit=entry.max_limit,
                        monitorable=monitorable(entry))


def set_monitoring(device: DeviceModel, monitoring: Monitoring,
                   data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SetVariableMonitoring (snake_case items): one SetMonitoringResult each, in order
    (N04.FR.01/02); the accepted monitors are stored."""
    results = []
    for item in data:
        component, variable = item["component"], item["variable"]
        status, entry = device.find(component, variable)  # N04.FR.03/04
        given = item.get("id")
        result: dict[str, Any] = {"type": item["type"], "severity": item["severity"],
                                  "component": component, "variable": variable}
        if entry is not None:
            try:
                kind = MonitorType(item["type"])
            except ValueError:
                kind = None
            if kind is None:
                status = "UnsupportedMonitorType"
            else:
                monitor = Monitor(
                    id=given if given is not None else monitoring.next_id(), ref=ref_of(entry),
                    type=kind, value=float(item["value"]), severity=int(item["severity"]),
                    transaction=bool(item.get("transaction", False)),
                    origin=Origin.CUSTOM)  # a replaced preconfigured one too (N04.FR.15)
                status = check(monitor, _info(entry), monitoring.monitors, given is not None)
                if status == "Accepted":
                    monitoring.put(monitor)
                    result["id"] = monitor.id  # N04.FR.11
        result["status"] = status
        results.append(result)
    return results


def clear_monitoring(monitoring: Monitoring, ids: list[int]) -> list[dict[str, Any]]:
    """ClearVariableMonitoring: Accepted, NotFound or Rejected (a hard-wired one) per id
    (N06.FR.01-03, 05)."""
    results = []
    gone = []
    for i in ids:
        found = monitoring.monitors.get(i)
        if found is None:
            status = "NotFound"
        elif found.origin is Origin.HARD_WIRED:
            status = "Rejected"
        else:
            status = "Accepted"
            gone.append(i)
        results.append({"id": i, "status": status})
    monitoring.clear(gone)
    return results


def report(device: DeviceModel, monitoring: Monitoring, criteria: list[str] | None,
           component_variables: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """GetMonitoringReport's MonitoringDataType entries (camelCase): the monitors matching both
    the criteria and the componentVariables given (N02.FR.05/06/08/11-17), grouped per
    variable; None when a criterion is not known (N02.FR.02)."""
    types: set[MonitorType] = set()
    for c in criteria or []:
        if c not in CRITERIA:
            return None
        types |= CRITERIA[c]
    grouped: dict[Any, list[Monitor]] = {}
    for m in sorted(monitoring.monitors.values(), key=lambda m: m.id):
        entry = device.by_ref(m.ref)
        if entry is None or (types and m.type not in types):
            continue
        if component_variables and not any(matches(entry, cv) for cv in component_variables):
            continue
        grouped.setdefault(m.ref, []).append(m)
    out = []
    for ref, found in grouped.items():
        entry = device.by_ref(ref)
        assert entry is not None
        out.append({"component": entry.component_dict(), "variable": entry.variable_dict(),
                    "variableMonitoring": [{"id": m.id, "transaction": m.transaction,
                                            "value": m.value, "type": m.type.value,
                                            "severity": m.severity} for m in found]})
    return out


def report_pages(request_id: int, generated_at: str,
                 data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """NotifyMonitoringReport payloads, seqNo 0, 1, ... (tbc is added by the sender)."""
    chunks = [data[i:i + REPORT_PAGE] for i in range(0, len(data), REPORT_PAGE)] or [[]]
    return [{"requestId": request_id, "seqNo": n, "generatedAt": generated_at,
             **({"monitor": chunk} if chunk else {})} for n, chunk in enumerate(chunks)]


def level_status(severity: int) -> str:
    """SetMonitoringLevel: Accepted for 0-9, else Rejected (N05.FR.01/02)."""
    return "Accepted" if 0 <= severity <= MAX_SEVERITY else "Rejected"


HARD_WIRED_PROBLEM = 1  # the monitor ids the device model gives its marked monitors
PRECONFIGURED_PROBLEM = 10  # + the EVSE id


def presets(device: DeviceModel) -> list[Monitor]:
    """The monitors the device model marks: hard-wired, ChargingStation Problem (any change,
    severity 1 HardwareFailure: it cannot be cleared or replaced, N04.FR.18, N06.FR.03);
    preconfigured, each EVSE's Problem (any change, severity 4 Error)."""
    found = [Monitor(HARD_WIRED_PROBLEM, ("ChargingStation", None, None, "Problem", None),
                     MonitorType.DELTA, 1.0, 1, origin=Origin.HARD_WIRED)]
    for n in sorted(device.core.model.connectors):
        found.append(Monitor(PRECONFIGURED_PROBLEM + n, ("EVSE", n, None, "Problem", None),
                             MonitorType.DELTA, 1.0, 4, origin=Origin.PRECONFIGURED))
    return found


def set_base(device: DeviceModel, monitoring: Monitoring, base: str) -> str:
    """SetMonitoringBase (N03): all three bases are supported (monitoring.set_base)."""
    monitoring.set_base(presets(device), base)
    return "Accepted"


def notify_event(record: MonitorEventRecord, generated_at: str) -> dict[str, Any]:
    """The NotifyEvent of an outbox record: the only part (seqNo 0, tbc false, N07.FR.07), each
    event with its component, variable and monitor id (N07.FR.06)."""
    data = []
    for e in record.events:
        component, evse, connector, variable, instance = e.ref
        comp: dict[str, Any] = {"name": component}
        if evse is not None:
            comp["evse"] = {"id": evse, **({"connectorId": connector}
                                           if connector is not None else {})}
        var: dict[str, Any] = {"name": variable}
        if instance is not None:
            var["instance"] = instance
        item: dict[str, Any] = {
            "eventId": e.event_id, "timestamp": iso(e.ts), "trigger": e.trigger,
            "actualValue": e.actual[:2500], "eventNotificationType": e.origin,
            "component": comp, "variable": var, "variableMonitoringId": e.monitor_id}
        if e.cleared:
            item["cleared"] = True
        data.append(item)
    return {"generatedAt": generated_at, "seqNo": 0, "tbc": False, "eventData": data}
