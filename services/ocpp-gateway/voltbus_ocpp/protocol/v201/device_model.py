"""The OCPP 2.0.1 device model the station has: its components and variables with characteristics
(data type, unit, limits, values list) and the attributes each has (Actual, and where it
means something Target/MinSet/MaxSet, each with its own mutability and persistence), for
GetVariables/SetVariables (B05, B06) and the reports GetBaseReport/GetReport send as NotifyReport
(B07, B08). OCPP 2.0.1 part 2, section 2 (data types) and the referenced components and variables
appendix name them.

Two kinds of variables:
- the controllers' configuration variables (`variables.py`: OCPPCommCtrlr, AuthCtrlr, TxCtrlr ...),
  ReadWrite (BasicAuthPassword WriteOnly), persistent in the station's store;
- what the station is: ChargingStation, one EVSE per connector (evse id = voltbus connector) and
  its one Connector, with AvailabilityState, Available, Problem, SupplyPhases, Power,
  ConnectorType and the EVSE's AllowReset (true: it can be reset alone) read live from the
  model, ReadOnly, not persistent (the constant ones constant);
  DeviceDataCtrlr.ItemsPerMessage/BytesPerMessage (instances GetReport, GetVariables,
  SetVariables), ReadOnly constants.

Attributes other than Actual: EVSE Power has MaxSet (ReadWrite, persistent), the operator's cap
on that EVSE's power in W, at most its maxLimit (the rated power), applied as a current limit
(W / 230 V / phases) through the model's `connector_limit_a`; unset it reads as the maxLimit.
Every other variable has Actual only (another attribute type: NotSupportedAttributeType).

Not done: Target/MinSet on any variable (none here has a set point or a lower bound the station
honours), component instances other than the EVSE/connector ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from voltbus_common.enums import ConnectorStatus
from voltbus_ocpp.adapter import StationCore
from voltbus_ocpp.model.connector import blocking_fault
from voltbus_ocpp.model.display import MAX_MESSAGES, SUPPORTED_FORMATS, SUPPORTED_PRIORITIES
from voltbus_ocpp.protocol.v201.convert import CONNECTOR_STATUS
from voltbus_ocpp.protocol.v201.smart import MAX_PERIODS, MAX_PROFILES, MAX_STACK_LEVEL
from voltbus_ocpp.protocol.v201.variables import (
    BAY,
    DECIMALS,
    DEFAULTS,
    MEASURAND_NAMES,
    READ_ONLY,
    SECRET,
    TX_POINTS,
    Variables,
    power_max_key,
)

REPORT_PAGE = 20  # reportData entries per NotifyReport
ITEMS_PER_MESSAGE = 50  # DeviceDataCtrlr.ItemsPerMessage for GetReport/GetVariables/SetVariables
BYTES_PER_MESSAGE = 65000
CRITERIA = ("Active", "Available", "Enabled", "Problem")  # ComponentCriterionEnumType
_UNITS = {"Interval": "s", "TimeOut": "s", "MaxEnergyOnInvalidId": "Wh"}
_AVAILABILITY = "Available,Occupied,Reserved,Unavailable,Faulted"
_FORMATS = ",".join(f.value for f in SUPPORTED_FORMATS)
_PRIORITIES = ",".join(p.value for p in SUPPORTED_PRIORITIES)


@dataclass(frozen=True)
class Attr:
    """One attribute of a variable other than its Actual (VariableAttributeType)."""

    type: str  # Target, MinSet, MaxSet
    mutability: str = "ReadOnly"
    persistent: bool = False
    constant: bool = False
    key: str | None = None  # stored under this config key (ReadWrite); None: read
    default: str | None = None  # the value until one is stored
    read: Callable[[], str] | None = None


@dataclass(frozen=True)
class Entry:
    """One variable of one component (instance), its characteristics and how to read it."""

    component: str
    variable: str
    data_type: str = "string"
    mutability: str = "ReadWrite"
    evse: int | None = None
    connector: int | None = None
    instance: str | None = None  # the variable's instance (DeviceDataCtrlr ItemsPerMessage)
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: str | None = None
    persistent: bool = True
    constant: bool = False
    read: Callable[[], str] | None = None  # None: the configuration value in `Variables`
    attributes: tuple[Attr, ...] = ()  # beyond Actual

    def attribute(self, kind: str) -> Attr | None:
        """The attribute of this type (Actual included), None if the variable has none."""
        if kind == "Actual":
            return Attr("Actual", self.mutability, self.persistent, self.constant)
        return next((a for a in self.attributes if a.type == kind), None)

    @property
    def name(self) -> str:
        """Its name in `variables.py` ("Component.Variable")."""
        return f"{self.component}.{self.variable}"

    def component_dict(self) -> dict[str, Any]:
        """ComponentType (camelCase)."""
        out: dict[str, Any] = {"name": self.component}
        if self.evse is not None:
            out["evse"] = {"id": self.evse} if self.connector is None else {
                "id": self.evse, "connectorId": self.connector}
        return out

    def variable_dict(self) -> dict[str, Any]:
        """VariableType (camelCase)."""
        out: dict[str, Any] = {"name": self.variable}
        if self.instance is not None:
            out["instance"] = self.instance
        return out


def _config_entry(name: str, default: str) -> Entry:
    component, variable = name.split(".", 1)
    unit = next((u for suffix, u in _UNITS.items() if variable.endswith(suffix)), None)
    if name in SECRET:
        return Entry(component, variable, "string", "WriteOnly")
    if name in DECIMALS:
        low, high = DECIMALS[name]
        return Entry(component, variable, "decimal", unit="Percent", min_limit=low,
                     max_limit=high)
    if name == "MonitoringCtrlr.ActiveMonitoringBase":
        return Entry(component, variable, "OptionList", "ReadOnly",
                     values_list="All,FactoryDefault,HardWiredOnly")
    if name == "MonitoringCtrlr.ActiveMonitoringLevel":
        return Entry(component, variable, "integer", "ReadOnly", min_limit=0, max_limit=9)
    if name in READ_ONLY:
        return Entry(component, variable, "integer", "ReadOnly")
    if default in ("true", "false"):
        return Entry(component, variable, "boolean")
    if variable.endswith("Measurands"):
        return Entry(component, variable, "MemberList", values_list=",".join(MEASURAND_NAMES))
    if name in TX_POINTS:  # the members the station honours
        return Entry(component, variable, "MemberList", values_list=",".join(sorted(
            set().union(*TX_POINTS[name]))))
    if name == "MonitoringCtrlr.OfflineQueuingSeverity":
        return Entry(component, variable, "integer", min_limit=0, max_limit=9)
    if default.isdigit():
        return Entry(component, variable, "integer", unit=unit, min_limit=0)
    return Entry(component, variable)


CONFIG_ENTRIES = tuple(_config_entry(name, default) for name, default in DEFAULTS.items())


class DeviceModel:
    """The station's components and variables, read live; lookups for Get/SetVariables and the
    entries a report lists."""

    def __init__(self, core: StationCore, variables: Variables) -> None:
        self.core = core
        self.variables = variables
        self._by_ref: dict[tuple[str, int | None, int | None, str, str | None], Entry] | None = (
            None)

    # --- what there is -------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every variable the station has, controllers first, then the station, its EVSEs and
        connectors."""
        model, settings = self.core.model, self.core.settings
        phases = str(settings.phases)
        out = list(CONFIG_ENTRIES)
        for component, instances in (
                ("DeviceDataCtrlr", ("GetReport", "GetVariables", "SetVariables")),
                ("MonitoringCtrlr", ("SetVariableMonitoring", "ClearVariableMonitoring"))):
            for instance in instances:
                for variable, limit in (("ItemsPerMessage", ITEMS_PER_MESSAGE),
                                        ("BytesPerMessage", BYTES_PER_MESSAGE)):
                    out.append(Entry(component, variable, "integer", "ReadOnly",
                                     instance=instance, constant=True, read=_const(str(limit))))
        out.append(Entry("MonitoringCtrlr", "Available", "boolean", "ReadOnly", constant=True,
                         read=lambda: "true"))
        for variable, value in (("ProfileStackLevel", MAX_STACK_LEVEL),
                                ("PeriodsPerSchedule", MAX_PERIODS)):
            out.append(Entry("SmartChargingCtrlr", variable, "integer", "ReadOnly",
                             constant=True, read=_const(str(value))))
        out += [
            Entry("SmartChargingCtrlr", "Entries", "integer", "ReadOnly",
                  instance="ChargingProfiles", max_limit=MAX_PROFILES, persistent=False,
                  read=lambda: str(len(self.core.smart.profiles))),
            Entry("SmartChargingCtrlr", "RateUnit", "MemberList", "ReadOnly", constant=True,
                  values_list="A,W", read=lambda: "A,W"),
            Entry("DisplayMessageCtrlr", "Available", "boolean", "ReadOnly", constant=True,
                  read=lambda: "true"),
            Entry("DisplayMessageCtrlr", "DisplayMessages", "integer", "ReadOnly",
                  max_limit=MAX_MESSAGES, persistent=False,
                  read=lambda: str(len(self.core.display))),
            Entry("DisplayMessageCtrlr", "SupportedFormats", "MemberList", "ReadOnly",
                  constant=True, values_list=_FORMATS, read=lambda: _FORMATS),
            Entry("DisplayMessageCtrlr", "SupportedPriorities", "MemberList", "ReadOnly",
                  constant=True, values_list=_PRIORITIES, read=lambda: _PRIORITIES),
            Entry("ChargingStation", "AvailabilityState", "OptionList", "ReadOnly",
                  values_list=_AVAILABILITY, persistent=False, read=self._station_state),
            Entry("ChargingStation", "Available", "boolean", "ReadOnly", persistent=False,
                  read=lambda: "true"),
            Entry("ChargingStation", "Problem", "boolean", "ReadOnly", persistent=False,
                  read=lambda: _bool(any(blocking_fault(c.facts)
                                         for c in model.connectors.values()))),
            Entry("ChargingStation", "SupplyPhases", "integer", "ReadOnly", constant=True,
                  read=lambda: phases),
        ]
        max_power = round(settings.max_current_a * 230.0 * settings.phases, 1)
        for n in model.connectors:
            for connector in (None, 1):
                component = "EVSE" if connector is None else "Connector"
                out += [
                    Entry(component, "AvailabilityState", "OptionList", "ReadOnly", n, connector,
                          values_list=_AVAILABILITY, persistent=False,
                          read=self._evse_state(n)),
                    Entry(component, "Available", "boolean", "ReadOnly", n, connector,
                          persistent=False, read=lambda: "true"),
                    Entry(component, "Problem", "boolean", "ReadOnly", n, connector,
                          persistent=False, read=self._problem(n)),
                    Entry(component, "SupplyPhases", "integer", "ReadOnly", n, connector,
                          constant=True, read=lambda: phases),
                    Entry("EVSE", "Power", "decimal", "ReadOnly", n, unit="W",
                          max_limit=max_power, persistent=False, read=self._power(n),
                          attributes=(Attr("MaxSet", "ReadWrite", persistent=True,
                                           key=power_max_key(n), default=f"{max_power:g}"),))
                    if connector is None else
                    Entry("Connector", "ConnectorType", "string", "ReadOnly", n, 1,
                          constant=True, read=lambda: "cType2"),
                ]
                if connector is None:  # a Reset with this evseId resets it alone (B11, B12)
                    out.append(Entry("EVSE", "AllowReset", "boolean", "ReadOnly", n,
                                     constant=True, read=lambda: "true"))
        return out

    def by_ref(self, ref: tuple[str, int | None, int | None, str, str | None]) -> Entry | None:
        """The entry a monitor's Ref names (component, evse, connector, variable, instance);
        the entries are built once (their values are read live)."""
        if self._by_ref is None:
            self._by_ref = {ref_of(e): e for e in self.entries()}
        return self._by_ref.get(ref)

    def _station_state(self) -> str:
        return "Available" if self.core.model.station_operative else "Unavailable"

    def _evse_state(self, n: int) -> Callable[[], str]:
        def read() -> str:
            status = self.core.model.connectors[n].status or ConnectorStatus.AVAILABLE
            return CONNECTOR_STATUS.get(status, "Occupied")
        return read

    def _problem(self, n: int) -> Callable[[], str]:
        return lambda: _bool(blocking_fault(self.core.model.connectors[n].facts))

    def _power(self, n: int) -> Callable[[], str]:
        def read() -> str:
            meter = self.core.model.connectors[n].facts.meter
            return f"{meter.power_w:g}" if meter is not None else "0"
        return read

    def value(self, entry: Entry) -> str | None:
        """The Actual value (None for a WriteOnly one: it is never read back)."""
        if entry.mutability == "WriteOnly":
            return None
        if entry.read is not None:
            return entry.read()
        return self.variables.values[entry.name]

    def attribute_value(self, entry: Entry, attr: Attr) -> str | None:
        """An attribute's value (Actual included; None for a WriteOnly one)."""
        if attr.type == "Actual":
            return self.value(entry)
        if attr.mutability == "WriteOnly":
            return None
        if attr.read is not None:
            return attr.read()
        assert attr.key is not None
        return self.variables.attributes.get(attr.key, attr.default)

    def set_attribute(self, entry: Entry, attr: Attr, value: str) -> str:
        """SetVariables on an attribute other than Actual: Accepted, or Rejected for a value
        that is not of the variable's data type or outside its minLimit/maxLimit."""
        assert attr.key is not None
        if entry.data_type in ("decimal", "integer"):
            try:
                number = float(value) if entry.data_type == "decimal" else int(value)
            except ValueError:
                return "Rejected"
            if number != number or (entry.min_limit is not None and number < entry.min_limit) or (
                    entry.max_limit is not None and number > entry.max_limit) or number < 0:
                return "Rejected"
            value = f"{number:g}"
        self.variables.set_attribute(attr.key, value)
        return "Accepted"

    # --- lookups -------------------------------------------------------------------------------

    def find(self, component: dict[str, Any], variable: dict[str, Any]
             ) -> tuple[str, Entry | None]:
        """The entry a GetVariables/SetVariables item names (snake_case dicts), or why none does:
        UnknownComponent (no such component, EVSE or connector) or UnknownVariable."""
        evse = component.get("evse") or {}
        evse_id, connector_id = evse.get("id"), evse.get("connector_id")
        of_component = [e for e in self.entries() if e.component == component["name"]
                        and e.evse == evse_id and (e.connector == connector_id or (
                            connector_id is None and e.connector is None))]
        if component.get("instance") is not None or not of_component:
            return "UnknownComponent", None
        found = next((e for e in of_component if e.variable == variable["name"]
                      and e.instance == variable.get("instance")), None)
        return ("Accepted", found) if found is not None else ("UnknownVariable", None)

    # --- reports -------------------------------------------------------------------------------

    def base_report(self, report_base: str) -> list[Entry] | None:
        """GetBaseReport's entries (B07): ConfigurationInventory lists what the operator can set
        (ReadWrite, WriteOnly), FullInventory everything, SummaryInventory availability and
        problems (ReportBaseEnumType, part 2 section 3)."""
        every = self.entries()
        if report_base == "FullInventory":
            return every
        if report_base == "ConfigurationInventory":
            return [e for e in every if e.mutability in ("ReadWrite", "WriteOnly") or any(
                a.mutability in ("ReadWrite", "WriteOnly") for a in e.attributes)]
        if report_base == "SummaryInventory":
            return [e for e in every if e.variable in ("AvailabilityState", "Available",
                                                       "Problem")]
        return None

    def report(self, component_variables: Iterable[dict[str, Any]] | None,
               criteria: Iterable[str] | None) -> list[Entry]:
        """GetReport's entries (B08): those naming one of component_variables (a component
        without evse: every EVSE/connector of it; without variable: all of its variables), and
        of components that have a criterion variable (Active, Available, Enabled, Problem) with
        the Actual value true, when criteria are given; both: both must hold."""
        every = self.entries()
        chosen = every
        wanted = list(component_variables or [])
        if wanted:
            chosen = [e for e in every if any(_matches(e, cv) for cv in wanted)]
        wanted_criteria = [c for c in (criteria or []) if c in CRITERIA]
        if criteria:
            keys = {_component_key(e) for e in every if e.variable in wanted_criteria
                    and self.value(e) == "true"}
            chosen = [e for e in chosen if _component_key(e) in keys]
        return chosen

    def report_data(self, entry: Entry) -> dict[str, Any]:
        """ReportDataType (camelCase): every attribute, Actual first (no value when WriteOnly:
        part 2 VariableAttributeType, value 'may only be omitted when mutability is WriteOnly'),
        and the characteristics."""
        attributes = []
        for attr in (entry.attribute("Actual"), *entry.attributes):
            assert attr is not None
            attribute: dict[str, Any] = {"type": attr.type, "mutability": attr.mutability,
                                         "persistent": attr.persistent, "constant": attr.constant}
            value = self.attribute_value(entry, attr)
            if value is not None:
                attribute["value"] = value
            attributes.append(attribute)
        characteristics: dict[str, Any] = {"dataType": entry.data_type,
                                           "supportsMonitoring": monitorable(entry)}
        values = entry.values_list
        if values and entry.name in TX_POINTS and not self.variables.has_bay_detector():
            values = ",".join(v for v in values.split(",") if v != BAY)  # no detector: Rejected
        for key, item in (("unit", entry.unit), ("minLimit", entry.min_limit),
                          ("maxLimit", entry.max_limit), ("valuesList", values)):
            if item is not None:
                characteristics[key] = item
        return {"component": entry.component_dict(), "variable": entry.variable_dict(),
                "variableAttribute": attributes, "variableCharacteristics": characteristics}


def ref_of(e: Entry) -> tuple[str, int | None, int | None, str, str | None]:
    """The monitors' name of a variable (model.monitoring.Ref)."""
    return e.component, e.evse, e.connector, e.variable, e.instance


def matches(e: Entry, cv: dict[str, Any]) -> bool:
    """A GetReport/GetMonitoringReport componentVariable (snake_case) names this entry."""
    return _matches(e, cv)


def monitorable(entry: Entry) -> bool:
    """A monitor may be set on it: readable, and not a constant (whose value never changes)."""
    return entry.mutability != "WriteOnly" and not entry.constant


def pages(items: list[dict[str, Any]], size: int = REPORT_PAGE) -> list[list[dict[str, Any]]]:
    """Report entries split into NotifyReport pages (at least one)."""
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


def _const(value: str) -> Callable[[], str]:
    return lambda: value


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _component_key(e: Entry) -> tuple[str, int | None, int | None]:
    return e.component, e.evse, e.connector


def _matches(e: Entry, cv: dict[str, Any]) -> bool:
    """A GetReport componentVariable (snake_case) names this entry."""
    component, variable = cv["component"], cv.get("variable")
    if component["name"] != e.component or component.get("instance") is not None:
        return False
    evse = component.get("evse")
    if evse is not None and (evse.get("id") != e.evse or (
            evse.get("connector_id") is not None and evse.get("connector_id") != e.connector)):
        return False
    if variable is None:
        return True
    return bool(variable["name"] == e.variable and variable.get("instance") in (None, e.instance))
