"""Variable monitors, version-neutral: the rules for setting, replacing and clearing them and
when one triggers (OCPP 2.0.1 part 2 N04, N06, N07 give them; `protocol/v201/` maps its
SetVariableMonitoring/ClearVariableMonitoring/GetMonitoringReport onto this).

A monitor watches one variable, named by a `Ref` the protocol gives (here it is opaque). It is
evaluated when the variable's value is read after a change: an UpperThreshold triggers once when
the value goes above its value and clears once when it is back at or below it (LowerThreshold
the other way round), a Delta when a number moved by more than its value since the monitor was
set or last triggered (any change for other values), a Periodic one every value seconds and a
PeriodicClockAligned one at each multiple of value seconds since midnight UTC. Severity 0 is the
most severe, 9 the least.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

Ref = tuple[str, int | None, int | None, str, str | None]
"""component, evse, connector, variable, variable instance"""


class MonitorType(StrEnum):
    """What a monitor watches for."""

    UPPER_THRESHOLD = "UpperThreshold"
    LOWER_THRESHOLD = "LowerThreshold"
    DELTA = "Delta"
    PERIODIC = "Periodic"
    PERIODIC_CLOCK_ALIGNED = "PeriodicClockAligned"


class Origin(StrEnum):
    """Who made a monitor (2.0.1 EventNotificationEnumType)."""

    HARD_WIRED = "HardWiredMonitor"
    PRECONFIGURED = "PreconfiguredMonitor"
    CUSTOM = "CustomMonitor"


class Trigger(StrEnum):
    """Why an event was raised."""

    ALERTING = "Alerting"
    DELTA = "Delta"
    PERIODIC = "Periodic"


SUPPORTED = frozenset(MonitorType)
PERIODIC = frozenset({MonitorType.PERIODIC, MonitorType.PERIODIC_CLOCK_ALIGNED})
THRESHOLDS = frozenset({MonitorType.UPPER_THRESHOLD, MonitorType.LOWER_THRESHOLD})
MAX_SEVERITY = 9


@dataclass(frozen=True)
class VariableInfo:
    """What a monitor may ask of a variable: numeric (thresholds need a number) and its
    limits."""

    numeric: bool
    min_limit: float | None = None
    max_limit: float | None = None
    monitorable: bool = True


@dataclass(frozen=True)
class Monitor:
    """One monitor and its state: tripped (a threshold exceeded, not yet cleared) and reference
    (the value a Delta compares with), both kept across restarts."""

    id: int
    ref: Ref
    type: MonitorType
    value: float
    severity: int
    transaction: bool = False
    origin: Origin = Origin.CUSTOM
    tripped: bool = False
    reference: str | None = None
    due: datetime | None = None  # a periodic monitor's next event


@dataclass(frozen=True)
class Event:
    """A monitor triggered (or a threshold cleared) with the value read."""

    monitor: Monitor
    trigger: Trigger
    actual: str
    cleared: bool = False


def check(monitor: Monitor, info: VariableInfo | None, existing: dict[int, Monitor],
          given_id: bool) -> str:
    """SetVariableMonitoring's status for a monitor to set (N04): Accepted, UnsupportedMonitorType,
    Rejected or Duplicate (the component and variable were found already)."""
    if info is None or not info.monitorable or monitor.type not in SUPPORTED:
        return "UnsupportedMonitorType"  # N04.FR.05
    if monitor.type in THRESHOLDS and not info.numeric:
        return "UnsupportedMonitorType"
    if not 0 <= monitor.severity <= MAX_SEVERITY or monitor.value != monitor.value:
        return "Rejected"
    if monitor.type in THRESHOLDS and (
            (info.min_limit is not None and monitor.value < info.min_limit)
            or (info.max_limit is not None and monitor.value > info.max_limit)):
        return "Rejected"  # N04.FR.06: outside the variable's range
    if monitor.type is MonitorType.DELTA and monitor.value < 0:
        return "Rejected"  # N04.FR.14
    if monitor.type in PERIODIC and not 1 <= monitor.value <= 86400:
        return "Rejected"  # an interval of 1 s to a day
    if given_id:
        old = existing.get(monitor.id)
        if old is None or old.ref != monitor.ref or old.origin is Origin.HARD_WIRED:
            return "Rejected"  # N04.FR.13, N04.FR.16, N04.FR.18
    if any(m.id != monitor.id and m.ref == monitor.ref and m.type is monitor.type
           and m.severity == monitor.severity for m in existing.values()):
        return "Duplicate"  # N04.FR.10
    return "Accepted"


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number else None


def next_period(monitor: Monitor, now: datetime) -> datetime:
    """A periodic monitor's next event after now: value seconds on (Periodic, N08.FR.06), or the
    next multiple of value seconds since midnight UTC (PeriodicClockAligned, N08.FR.07: 900 is
    every quarter of an hour)."""
    step = timedelta(seconds=monitor.value)
    if monitor.type is MonitorType.PERIODIC:
        return now + step
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    periods = (now - midnight) // step + 1
    return midnight + periods * step


def evaluate(monitor: Monitor, value: str, now: datetime) -> tuple[Monitor, Event | None]:
    """The monitor after reading value at now, and the event it raises (None: none)."""
    if monitor.type in PERIODIC:
        if monitor.due is None:
            return replace(monitor, due=next_period(monitor, now)), None
        if now < monitor.due:
            return monitor, None
        after = replace(monitor, due=next_period(monitor, now))
        return after, Event(after, Trigger.PERIODIC, value)  # N08.FR.05
    if monitor.type in THRESHOLDS:
        number = _number(value)
        if number is None:
            return monitor, None
        over = (number > monitor.value if monitor.type is MonitorType.UPPER_THRESHOLD
                else number < monitor.value)  # N07.FR.16/17: beyond it, not at it
        if over == monitor.tripped:
            return monitor, None
        after = replace(monitor, tripped=over)
        return after, Event(after, Trigger.ALERTING, value, cleared=not over)  # N07.FR.02
    if monitor.type is MonitorType.DELTA:
        if monitor.reference is None:
            return replace(monitor, reference=value), None
        new, old = _number(value), _number(monitor.reference)
        if new is not None and old is not None:
            moved = abs(new - old) > monitor.value  # N07.FR.18
        else:
            moved = value != monitor.reference  # N07.FR.19: any change
        if not moved:
            return monitor, None
        after = replace(monitor, reference=value)
        return after, Event(after, Trigger.DELTA, value)
    return monitor, None
