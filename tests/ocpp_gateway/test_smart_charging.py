"""Smart charging stacking rules as tables (pure, no I/O): purposes, stack levels, kinds,
validity, units and phases (OCPP 1.6 section 3.13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from voltbus_ocpp.model.results import Outcome
from voltbus_ocpp.model.smart_charging import SmartCharging

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday
Z = "%Y-%m-%dT%H:%M:%SZ"


def prof(pid: int, purpose: str, periods: list[tuple[int, float]], *, level: int = 0,
         kind: str = "Absolute", unit: str = "A", start: datetime | None = T0,
         phases: int | None = None, **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"chargingRateUnit": unit, "chargingSchedulePeriod": [
        {"startPeriod": s, "limit": lim, **({"numberPhases": phases} if phases else {})}
        for s, lim in periods]}
    if start is not None:
        schedule["startSchedule"] = start.strftime(Z)
    if "duration" in extra:
        schedule["duration"] = extra.pop("duration")
    return {"chargingProfileId": pid, "stackLevel": level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": schedule, **extra}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(("profiles", "when", "expected"), [
    # no profile: no limit
    ([], 0, None),
    # periods of one absolute profile
    ([(0, prof(1, "TxDefaultProfile", [(0, 16), (600, 8)]))], 599, 16.0),
    ([(0, prof(1, "TxDefaultProfile", [(0, 16), (600, 8)]))], 600, 8.0),
    # before the schedule starts, nothing
    ([(0, prof(1, "TxDefaultProfile", [(0, 16)], start=at(60)))], 0, None),
    # duration ends it
    ([(0, prof(1, "TxDefaultProfile", [(0, 16)], duration=300))], 300, None),
    # highest stack level wins within a purpose
    ([(0, prof(1, "TxDefaultProfile", [(0, 16)])),
      (0, prof(2, "TxDefaultProfile", [(0, 6)], level=2))], 10, 6.0),
    # ... unless it does not cover the instant: the next level down applies
    ([(0, prof(1, "TxDefaultProfile", [(0, 16)])),
      (0, prof(2, "TxDefaultProfile", [(0, 6)], level=2, duration=5))], 10, 16.0),
    # ChargePointMaxProfile caps the Tx profile
    ([(0, prof(1, "TxDefaultProfile", [(0, 16)])),
      (0, prof(2, "ChargePointMaxProfile", [(0, 10)]))], 0, 10.0),
    # a connector-specific TxDefaultProfile beats connector 0 at the same level
    ([(0, prof(1, "TxDefaultProfile", [(0, 16)])),
      (1, prof(2, "TxDefaultProfile", [(0, 12)]))], 0, 12.0),
    # validFrom / validTo
    ([(0, prof(1, "TxDefaultProfile", [(0, 16)], validTo=at(100).strftime(Z)))], 100, None),
    ([(0, prof(1, "TxDefaultProfile", [(0, 16)], validFrom=at(100).strftime(Z)))], 50, None),
    # W with the profile's phases (or the station's 3): 11040 W / (230 V * 3) = 16 A
    ([(0, prof(1, "TxDefaultProfile", [(0, 11040)], unit="W"))], 0, 16.0),
    ([(0, prof(1, "TxDefaultProfile", [(0, 3680)], unit="W", phases=1))], 0, 16.0),
    # recurring daily: the pattern repeats the next day
    ([(0, prof(1, "TxDefaultProfile", [(0, 6), (3600, 16)], kind="Recurring",
               recurrencyKind="Daily"))], 86400 + 1800, 6.0),
    ([(0, prof(1, "TxDefaultProfile", [(0, 6), (3600, 16)], kind="Recurring",
               recurrencyKind="Daily"))], 86400 * 3 + 3600, 16.0),
    # recurring weekly
    ([(0, prof(1, "TxDefaultProfile", [(0, 6), (86400, 16)], kind="Recurring",
               recurrencyKind="Weekly"))], 7 * 86400 + 100, 6.0),
])
def test_limit_at(profiles: list[tuple[int, dict[str, Any]]], when: float,
                  expected: float | None) -> None:
    smart = SmartCharging(phases=3)
    for connector, p in profiles:
        assert smart.install(connector, p, None) is Outcome.ACCEPTED
    assert smart.limit_a(1, at(when)) == expected


def test_relative_profile_counts_from_the_transaction_start() -> None:
    smart = SmartCharging()
    assert smart.install(1, prof(1, "TxDefaultProfile", [(0, 6), (120, 16)], kind="Relative",
                                 start=None), None) is Outcome.ACCEPTED
    assert smart.limit_a(1, at(1000), tx_start=at(950), in_tx=True) == 6.0
    assert smart.limit_a(1, at(1070), tx_start=at(950), in_tx=True) == 16.0


def test_tx_profile_overrides_tx_default_and_ends_with_the_transaction() -> None:
    smart = SmartCharging()
    smart.install(0, prof(1, "TxDefaultProfile", [(0, 16)]), None)
    assert smart.install(1, prof(2, "TxProfile", [(0, 6)]), None) is Outcome.REJECTED  # no tx
    assert smart.install(1, prof(2, "TxProfile", [(0, 6)], transactionId=4),
                         "3") is Outcome.REJECTED
    assert smart.install(1, prof(2, "TxProfile", [(0, 6)]), "3") is Outcome.ACCEPTED
    assert smart.limit_a(1, at(0), tx_id="3", in_tx=True) == 6.0
    assert smart.limit_a(1, at(0)) == 16.0  # outside the transaction
    smart.end_transaction("3")
    assert smart.limit_a(1, at(0), tx_id="3", in_tx=True) == 16.0


def test_same_purpose_and_level_replaces_and_clear_by_criteria() -> None:
    smart = SmartCharging()
    smart.install(0, prof(1, "TxDefaultProfile", [(0, 16)]), None)
    smart.install(0, prof(2, "TxDefaultProfile", [(0, 10)]), None)
    assert [p.id for p in smart.profiles] == [2]
    assert smart.install(1, prof(3, "ChargePointMaxProfile", [(0, 10)]), None) is Outcome.REJECTED
    assert smart.clear(purpose="ChargePointMaxProfile") is False
    assert smart.clear(stack_level=0) is True
    assert smart.profiles == []


def test_composite_lists_each_change() -> None:
    smart = SmartCharging()
    smart.install(0, prof(1, "TxDefaultProfile", [(0, 16), (60, 10), (120, 16)]), None)
    smart.install(0, prof(2, "ChargePointMaxProfile", [(0, 13)]), None)
    assert smart.composite(1, T0, 180) == [{"startPeriod": 0, "limit": 13.0},
                                           {"startPeriod": 60, "limit": 10.0},
                                           {"startPeriod": 120, "limit": 13.0}]


def test_station_maximum_is_shared_by_the_charging_connectors() -> None:
    smart = SmartCharging()
    smart.install(0, prof(1, "ChargePointMaxProfile", [(0, 20)]), None)
    smart.install(0, prof(2, "TxDefaultProfile", [(0, 16)]), None)
    assert smart.limit_a(1, at(0), in_tx=True, sharing=1) == 16.0
    assert smart.limit_a(1, at(0), in_tx=True, sharing=2) == 10.0
