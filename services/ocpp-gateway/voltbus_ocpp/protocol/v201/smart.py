"""OCPP 2.0.1 smart charging (functional block K) onto the version-neutral profile engine
(`model/smart_charging.py`, the one 1.6 uses): a 2.0.1 ChargingProfileType in and out of the
engine's profile dicts, and the checks 2.0.1 makes before a profile is installed.

The engine keeps the 1.6 shape (chargingProfileId, ChargePointMaxProfile, one chargingSchedule);
a 2.0.1 profile maps onto it one to one: id -> chargingProfileId, ChargingStationMaxProfile ->
ChargePointMaxProfile, its one chargingSchedule (whose id is kept as `scheduleId`), evseId ->
connector (EVSE n is voltbus connector n, 0 the station).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from voltbus_ocpp.model.external_limits import LimitSource
from voltbus_ocpp.model.smart_charging import MAX, TX, SmartCharging, invalid_schedule
from voltbus_ocpp.protocol.wire_time import iso
from voltbus_ocpp.records import ExternalLimitRecord

__all__ = [
    "EXTERNAL",
    "LIMIT_SOURCES",
    "MAX_PERIODS",
    "MAX_PROFILES",
    "MAX_STACK_LEVEL",
    "STATION_MAX",
    "charging_limit_call",
    "external_profile",
    "external_profile_id",
    "from_engine",
    "invalid_schedule",
    "matches",
    "refusal",
    "to_engine",
]

STATION_MAX = "ChargingStationMaxProfile"
EXTERNAL = "ChargingStationExternalConstraints"
MAX_STACK_LEVEL = 10  # SmartChargingCtrlr.ProfileStackLevel
MAX_PERIODS = 24  # SmartChargingCtrlr.PeriodsPerSchedule
MAX_PROFILES = 20  # SmartChargingCtrlr.Entries[ChargingProfiles] maxLimit
# chargingLimitSource of each external limit (never CSO, K11.FR.05/K12.FR.04): the site energy
# manager is an EMS; the off-peak window policy and the fail-safe limit that stands in for a
# lost energy manager are the station's own rules, neither EMS nor a system operator: Other
LIMIT_SOURCES = {LimitSource.ENERGY_MANAGER: "EMS", LimitSource.OFF_PEAK: "Other",
                 LimitSource.ENERGY_FAIL_SAFE: "Other"}


def external_profile_id(connector: int, source: LimitSource) -> int:
    """The id an external limit is reported under (K11.FR.06 recommends negative ids: they
    never clash with the central system's)."""
    return -(connector * 10 + list(LimitSource).index(source) + 1)


def _schedule(connector: int, source: LimitSource, amps: float, since: datetime
              ) -> dict[str, Any]:
    return {"id": external_profile_id(connector, source), "startSchedule": iso(since),
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(amps, 1)}]}


def charging_limit_call(record: ExternalLimitRecord, with_schedule: bool
                        ) -> tuple[str, dict[str, Any]]:
    """K11-K13: NotifyChargingLimit for a limit that started or moved (its schedule when
    NotifyChargingLimitWithSchedules), ClearedChargingLimit for one that ended; evseId for a
    connector's limit, none for the station's (it applies to the whole station)."""
    source = LIMIT_SOURCES[record.source]
    evse = {"evseId": record.connector} if record.connector else {}
    if record.amps is None:
        return "ClearedChargingLimit", {"chargingLimitSource": source, **evse}
    payload: dict[str, Any] = {
        "chargingLimit": {"chargingLimitSource": source, "isGridCritical": False}, **evse}
    if with_schedule:
        payload["chargingSchedule"] = [_schedule(record.connector, record.source, record.amps,
                                                 record.ts)]
    return "NotifyChargingLimit", payload


def external_profile(connector: int, source: LimitSource, amps: float, since: datetime
                     ) -> dict[str, Any]:
    """An external limit in force as the ChargingStationExternalConstraints profile
    GetChargingProfiles reports it (K11.FR.06): Absolute from when it was set, one period."""
    return {"id": external_profile_id(connector, source), "stackLevel": 0,
            "chargingProfilePurpose": EXTERNAL, "chargingProfileKind": "Absolute",
            "chargingSchedule": [_schedule(connector, source, amps, since)]}


def to_engine(profile: dict[str, Any]) -> dict[str, Any]:
    """A 2.0.1 ChargingProfileType (camelCase) as the engine's profile dict."""
    schedule = dict(profile["chargingSchedule"][0])
    out: dict[str, Any] = {
        "chargingProfileId": profile["id"], "stackLevel": profile["stackLevel"],
        "chargingProfilePurpose": MAX if profile["chargingProfilePurpose"] == STATION_MAX
        else profile["chargingProfilePurpose"],
        "chargingProfileKind": profile["chargingProfileKind"],
        "chargingSchedule": {
            "scheduleId": schedule.pop("id"), **{k: v for k, v in schedule.items()
                                                 if k not in ("salesTariff",)}}}
    for key in ("recurrencyKind", "validFrom", "validTo", "transactionId"):
        if profile.get(key) is not None:
            out[key] = profile[key]
    return out


def from_engine(profile: dict[str, Any], transaction_id: str | None) -> dict[str, Any]:
    """The engine's profile dict as a 2.0.1 ChargingProfileType (camelCase); a TxProfile names
    its transaction by `transaction_id` (the engine may know it by a temporary key)."""
    schedule = dict(profile["chargingSchedule"])
    schedule_id = schedule.pop("scheduleId", profile["chargingProfileId"])
    periods = [{k: v for k, v in p.items() if k in ("startPeriod", "limit", "numberPhases",
                                                    "phaseToUse")}
               for p in schedule["chargingSchedulePeriod"]]
    out: dict[str, Any] = {
        "id": profile["chargingProfileId"], "stackLevel": profile["stackLevel"],
        "chargingProfilePurpose": STATION_MAX if profile["chargingProfilePurpose"] == MAX
        else profile["chargingProfilePurpose"],
        "chargingProfileKind": profile["chargingProfileKind"],
        "chargingSchedule": [{"id": schedule_id, **{k: v for k, v in schedule.items() if k in (
            "startSchedule", "duration", "chargingRateUnit", "minChargingRate")},
            "chargingSchedulePeriod": periods}]}
    for key in ("recurrencyKind", "validFrom", "validTo"):
        if profile.get(key) is not None:
            out[key] = profile[key]
    if out["chargingProfilePurpose"] == TX and transaction_id is not None:
        out["transactionId"] = transaction_id
    return out


def refusal(evse_id: int, profile: dict[str, Any], smart: SmartCharging,
            evses: set[int]) -> str | None:
    """Why SetChargingProfile is Rejected before the engine sees it (K01), None if it may go
    on; the engine then checks the TxProfile against the running transaction."""
    purpose = profile["chargingProfilePurpose"]
    if evse_id != 0 and evse_id not in evses:
        return f"no EVSE {evse_id}"
    if purpose == EXTERNAL:
        return "ChargingStationExternalConstraints are set by an external system, not the CSMS"
    if purpose == STATION_MAX and evse_id != 0:
        return "a ChargingStationMaxProfile is for evseId 0"
    if purpose == TX and evse_id == 0:
        return "a TxProfile is for an EVSE, not evseId 0"
    if purpose == TX and not profile.get("transactionId"):
        return "a TxProfile names its transaction"
    if len(profile["chargingSchedule"]) != 1:
        return "one chargingSchedule per profile (more are for ISO 15118)"
    schedule = profile["chargingSchedule"][0]
    if len(schedule["chargingSchedulePeriod"]) > MAX_PERIODS:
        return f"more than {MAX_PERIODS} periods (SmartChargingCtrlr.PeriodsPerSchedule)"
    if profile["stackLevel"] > MAX_STACK_LEVEL:
        return f"stackLevel above {MAX_STACK_LEVEL} (SmartChargingCtrlr.ProfileStackLevel)"
    engine = to_engine(profile)
    problem = invalid_schedule(engine)
    if problem is not None:
        return problem
    installed = smart.profiles
    if len(installed) >= MAX_PROFILES and profile["id"] not in {p.id for p in installed}:
        return f"{MAX_PROFILES} profiles installed already"
    if purpose != TX and any(
            p.id != profile["id"] and p.connector == evse_id
            and p.purpose == engine["chargingProfilePurpose"] and p.stack_level == profile[
                "stackLevel"] and _overlap(p.profile, engine) for p in installed):
        # K01.FR.06 as we read it: not replaced as in 1.6, refused while the validity overlaps
        return "another profile has this stackLevel and purpose on this EVSE"
    return None


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    start_a, end_a = a.get("validFrom") or "", a.get("validTo") or "9999"
    start_b, end_b = b.get("validFrom") or "", b.get("validTo") or "9999"
    return bool(start_a < end_b and start_b < end_a)  # ISO 8601 UTC strings compare as times


def matches(profile: dict[str, Any], criteria: dict[str, Any], source: str = "CSO") -> bool:
    """A 2.0.1 profile (camelCase) of a limit source (CSO: installed by the central system)
    matches GetChargingProfiles' ChargingProfileCriterionType: every criterion given holds."""
    ids = criteria.get("chargingProfileId")
    sources = criteria.get("chargingLimitSource")
    return ((criteria.get("chargingProfilePurpose") in (None, profile[
        "chargingProfilePurpose"])) and criteria.get("stackLevel") in (
        None, profile["stackLevel"]) and (not ids or profile["id"] in ids)
        and (not sources or source in sources))
