"""OCPP 1.6 smart charging (chapter 3.13): profile stacking, turned into a current limit over time.

Profiles are the wire dicts (camelCase) as SetChargingProfile carried them, validated there.
At any instant: the ChargePointMaxProfile and the Tx profile (TxProfile of the running transaction,
else TxDefaultProfile) with the highest stackLevel whose schedule covers the instant each give a
limit; the connector gets the lower. Power limits become current with 230 V per phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from voltbus_ocpp.model.results import Outcome

VOLTS_PER_PHASE = 230.0
MAX = "ChargePointMaxProfile"
TX_DEFAULT = "TxDefaultProfile"
TX = "TxProfile"


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@dataclass(frozen=True)
class Installed:
    """A profile installed on a connector (0: the station)."""

    connector: int
    profile: dict[str, Any]

    @property
    def id(self) -> int:
        """chargingProfileId."""
        return int(self.profile["chargingProfileId"])

    @property
    def purpose(self) -> str:
        """chargingProfilePurpose."""
        return str(self.profile["chargingProfilePurpose"])

    @property
    def stack_level(self) -> int:
        """stackLevel."""
        return int(self.profile["stackLevel"])


def _tx_of(p: Installed) -> str | None:
    """A TxProfile's transaction as a string (profiles stored before ids were strings hold ints).
    """
    value = p.profile.get("transactionId")
    return None if value is None else str(value)


def schedule_start(p: dict[str, Any], at: datetime, tx_start: datetime | None) -> datetime | None:
    """When the schedule in force at `at` began (recurring ones repeat daily/weekly)."""
    sched = p["chargingSchedule"]
    kind = p["chargingProfileKind"]
    if kind == "Relative":
        return tx_start or at
    start = _time(sched.get("startSchedule")) or _time(p.get("validFrom"))
    if start is None:
        return tx_start or at
    if kind == "Recurring":
        period = timedelta(days=7 if p.get("recurrencyKind") == "Weekly" else 1)
        if at >= start:
            start += period * ((at - start) // period)
    return start


def limit_of(p: dict[str, Any], at: datetime, tx_start: datetime | None,
             phases: int) -> float | None:
    """The profile's limit in A at `at`, None if it does not cover that instant."""
    valid_from, valid_to = _time(p.get("validFrom")), _time(p.get("validTo"))
    if (valid_from and at < valid_from) or (valid_to and at >= valid_to):
        return None
    start = schedule_start(p, at, tx_start)
    if start is None or at < start:
        return None
    sched = p["chargingSchedule"]
    elapsed = (at - start).total_seconds()
    duration = sched.get("duration")
    if duration is not None and elapsed >= duration:
        return None
    current: dict[str, Any] | None = None
    for period in sorted(sched["chargingSchedulePeriod"], key=lambda x: x["startPeriod"]):
        if period["startPeriod"] <= elapsed:
            current = period
    if current is None:
        return None
    limit = float(current["limit"])
    if sched["chargingRateUnit"] == "W":
        limit /= VOLTS_PER_PHASE * int(current.get("numberPhases") or phases)
    return limit


def boundaries(p: dict[str, Any], at: datetime, tx_start: datetime | None) -> list[datetime]:
    """The instants around `at` where the profile's limit may change (validity, each period's
    start, the end of its duration, the next recurrence), so a timer can wait for the next one.
    A schedule that starts with the transaction has none outside one (it stays at its start)."""
    out = [t for t in (_time(p.get("validFrom")), _time(p.get("validTo"))) if t is not None]
    sched = p["chargingSchedule"]
    kind = p["chargingProfileKind"]
    anchored = kind != "Relative" and (_time(sched.get("startSchedule"))
                                       or _time(p.get("validFrom"))) is not None
    if not anchored and tx_start is None:
        return out
    start = schedule_start(p, at, tx_start)
    if start is None:
        return out
    out += [start + timedelta(seconds=float(x["startPeriod"]))
            for x in sched["chargingSchedulePeriod"]]
    if sched.get("duration") is not None:
        out.append(start + timedelta(seconds=float(sched["duration"])))
    if kind == "Recurring" and anchored:
        out.append(start + timedelta(days=7 if p.get("recurrencyKind") == "Weekly" else 1))
    return out


def invalid_schedule(p: dict[str, Any]) -> str | None:
    """Why a profile's schedule breaks OCPP 1.6 (3.13, 7.13/7.14), None if it does not: the
    first period starts at 0, periods come in increasing startPeriod order, and an Absolute or
    Recurring profile has a startSchedule (a Recurring one also its recurrencyKind)."""
    sched = p["chargingSchedule"]
    starts = [period["startPeriod"] for period in sched["chargingSchedulePeriod"]]
    if not starts or starts[0] != 0:
        return "the first schedule period must start at 0"
    if any(b <= a for a, b in pairwise(starts)):
        return "schedule periods must be in increasing startPeriod order"
    kind = p["chargingProfileKind"]
    if kind in ("Absolute", "Recurring") and not sched.get("startSchedule"):
        return f"an {kind} profile needs a startSchedule"
    if kind == "Recurring" and not p.get("recurrencyKind"):
        return "a Recurring profile needs a recurrencyKind"
    return None


class SmartCharging:
    """The installed profiles of one station."""

    def __init__(self, profiles: list[Installed] | None = None, *, phases: int = 3) -> None:
        self.profiles: list[Installed] = list(profiles or [])
        self.phases = phases

    def install(self, connector: int, profile: dict[str, Any],
                running_tx: str | None) -> Outcome:
        """SetChargingProfile: accepted or rejected (OCPP 1.6 5.16 and 3.13.2).

        running_tx: the transaction's id (its central-system id, else minus its local id)."""
        purpose = profile["chargingProfilePurpose"]
        if invalid_schedule(profile) is not None:
            return Outcome.REJECTED
        if purpose == MAX and connector != 0:
            return Outcome.REJECTED
        if purpose == TX:
            if connector == 0 or running_tx is None:
                return Outcome.REJECTED
            wanted = profile.get("transactionId")
            if wanted is not None and str(wanted) != running_tx:
                return Outcome.REJECTED
            profile = {**profile, "transactionId": running_tx}
        new = Installed(connector, profile)
        self.profiles = [p for p in self.profiles if not (
            p.id == new.id or (p.connector == connector and p.purpose == new.purpose
                               and p.stack_level == new.stack_level))]
        self.profiles.append(new)
        return Outcome.ACCEPTED

    def clear(self, *, profile_id: int | None = None, connector: int | None = None,
              purpose: str | None = None, stack_level: int | None = None) -> bool:
        """ClearChargingProfile: True when something was removed."""
        def matches(p: Installed) -> bool:
            if profile_id is not None:
                return p.id == profile_id
            return ((connector is None or p.connector == connector)
                    and (purpose is None or p.purpose == purpose)
                    and (stack_level is None or p.stack_level == stack_level))

        before = len(self.profiles)
        self.profiles = [p for p in self.profiles if not matches(p)]
        return len(self.profiles) != before

    def end_transaction(self, transaction_id: str | None, local_key: str | None = None) -> None:
        """TxProfiles end with their transaction (3.13.4): by its central-system id, or by the
        temporary key (minus its local id) when it ended before the start was answered."""
        self.profiles = [p for p in self.profiles if not (
            p.purpose == TX and _tx_of(p) in (transaction_id, local_key, None))]

    def identified(self, local_key: str, transaction_id: str) -> bool:
        """The central system answered the start: TxProfiles installed under the temporary key
        now belong to the real transaction id (3.13.4, 5.11). True if any were rewritten."""
        changed = False
        for i, p in enumerate(self.profiles):
            if p.purpose == TX and _tx_of(p) == local_key:
                self.profiles[i] = Installed(p.connector,
                                             {**p.profile, "transactionId": transaction_id})
                changed = True
        return changed

    def _best(self, candidates: list[Installed], at: datetime,
              tx_start: datetime | None) -> float | None:
        for p in sorted(candidates, key=lambda x: (x.stack_level, x.connector != 0),
                        reverse=True):
            limit = limit_of(p.profile, at, tx_start, self.phases)
            if limit is not None:
                return limit
        return None

    def station_limit_a(self, at: datetime) -> float | None:
        """The ChargePointMaxProfile limit of the whole station at `at` (None: none)."""
        return self._best([p for p in self.profiles if p.purpose == MAX], at, None)

    def limit_a(self, connector: int, at: datetime, *, tx_id: str | None = None,
                tx_start: datetime | None = None, in_tx: bool = False,
                sharing: int = 1, held: dict[str, Any] | None = None) -> float | None:
        """The composite limit for a connector at `at` (None: no profile limits it).

        The ChargePointMaxProfile limits the whole station: it is split evenly between the
        `sharing` connectors that charge at that moment. `held`: a TxProfile that will apply to
        the connector's next transaction (it counts as that transaction's TxProfile).
        """
        station_max = self.station_limit_a(at)
        if station_max is not None:
            station_max /= max(1, sharing)
        tx_limit = None
        if in_tx:
            tx_limit = self._best([p for p in self.profiles if p.purpose == TX
                                   and p.connector == connector
                                   and _tx_of(p) in (tx_id, None)],
                                  at, tx_start)
        elif held is not None:
            tx_limit = self._best([Installed(connector, held)], at, tx_start)
        if tx_limit is None:
            tx_limit = self._best([p for p in self.profiles if p.purpose == TX_DEFAULT
                                   and p.connector in (0, connector)], at, tx_start)
        limits = [x for x in (station_max, tx_limit) if x is not None]
        return min(limits) if limits else None

    def composite(self, connector: int, start: datetime, duration_s: int, *,
                  tx_id: str | None = None, tx_start: datetime | None = None,
                  in_tx: bool = False, sharing: int = 1) -> list[dict[str, Any]]:
        """GetCompositeSchedule periods in A: [{startPeriod, limit}] where the limit changes.

        Connector 0: the station's own limit (ChargePointMaxProfile, 3.13.1); a connector: its
        composite with the station limit shared by `sharing` charging connectors (as enforced).
        """
        periods: list[dict[str, Any]] = []
        last: float | None = None
        step = 1 if duration_s <= 3600 else 60
        for offset in range(0, max(duration_s, 1), step):
            at = start + timedelta(seconds=offset)
            limit = self.station_limit_a(at) if connector == 0 else self.limit_a(
                connector, at, tx_id=tx_id, tx_start=tx_start, in_tx=in_tx, sharing=sharing)
            if limit is not None and limit != last:
                periods.append({"startPeriod": offset, "limit": round(limit, 1)})
            last = limit
        return periods
