"""Off-peak charging (Oppleo): when the cheap window is open, and what the policy does to sessions.

Pure: no I/O, time comes in as an aware datetime. Two parts:

* `OffPeakSchedule` - windows per weekday (local wall-clock times in one IANA zone) plus whole-day
  holidays; `is_open(now)` and `next_change(now)`. A window whose end is not after its start
  crosses midnight (`mon 23:00-07:00` is Monday 23:00 to Tuesday 07:00). Every boundary is one
  real instant: a time the spring-forward gap skips happens when the clock jumps past it, a time
  the autumn fall-back repeats happens the first time the clock shows it. So DST never makes a
  window open twice or flicker.
* `OffPeak` - the policy's state inside the station model: while enabled and the window is
  closed, a transaction is held at 0 A (`Facts.policy_limit_a`), unless an admin exempted that one
  transaction (`Facts.policy_override`, its local id: it ends with the transaction).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voltbus_common.enums import CommandStatus
from voltbus_ocpp.model.connector import Connector
from voltbus_ocpp.model.events import Effect, Event, PublishCharging, PublishTransaction

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {**{d: i for i, d in enumerate(DAYS)},
              **{n: i for i, n in enumerate(("monday", "tuesday", "wednesday", "thursday",
                                             "friday", "saturday", "sunday"))}}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
DAY_MINUTES = 24 * 60

Span = tuple[int, int]
"""A window on one weekday: start and end in minutes after local midnight (end 1440 = 24:00)."""


class OffPeakError(ValueError):
    """An off-peak setting that cannot be understood; the message says which part and why."""


# --- parsing -----------------------------------------------------------------------------------


def _minutes(text: str, *, end: bool) -> int:
    found = _TIME.match(text.strip())
    if not found:
        raise OffPeakError(f"{text.strip()!r} is not a time HH:MM")
    hours, minutes = int(found.group(1)), int(found.group(2))
    value = hours * 60 + minutes
    if minutes > 59 or value > DAY_MINUTES or (value == DAY_MINUTES and not end):
        raise OffPeakError(f"{text.strip()!r} is not a time of day (00:00..23:59, 24:00 as an end)")
    return value


def _span(text: str) -> Span:
    parts = text.split("-")
    if len(parts) != 2:
        raise OffPeakError(f"{text.strip()!r} is not a window HH:MM-HH:MM")
    start, stop = _minutes(parts[0], end=False), _minutes(parts[1], end=True)
    if start == stop or (start == 0 and stop == 0):
        raise OffPeakError(f"{text.strip()!r} is an empty window (the whole day is 00:00-24:00)")
    return start, stop


def _day(text: str) -> int:
    name = text.strip().lower()
    if name not in _DAY_NAMES:
        raise OffPeakError(f"{text.strip()!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)")
    return _DAY_NAMES[name]


def _days(text: str) -> list[int]:
    """`mon-fri`, `sat,sun`, `fri-mon` (wraps), `daily` or `*`."""
    spec = text.strip().lower()
    if spec in ("daily", "*", "all", "every day"):
        return list(range(7))
    days: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            first, last = (_day(p) for p in part.split("-", 1))
            days += [(first + i) % 7 for i in range((last - first) % 7 + 1)]
        else:
            days.append(_day(part))
    return days


def parse_windows(text: str) -> dict[int, tuple[Span, ...]]:
    """Windows per weekday (0 = Monday) from compact text or JSON.

    Text: `mon-fri 23:00-07:00; sat,sun 00:00-24:00` (entries by `;`, several windows by `,`).
    JSON: `{"mon-fri": ["23:00-07:00"], "sat,sun": ["00:00-24:00"]}` (keys as in the text form).
    """
    entries: list[tuple[str, list[str]]] = []
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise OffPeakError(f"not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise OffPeakError("JSON must be an object of weekday -> list of windows")
        for key, value in data.items():
            spans = [value] if isinstance(value, str) else value
            if not isinstance(spans, list) or not all(isinstance(s, str) for s in spans):
                raise OffPeakError(f"{key!r}: expected a list of windows like \"23:00-07:00\"")
            entries.append((str(key), spans))
    else:
        for entry in filter(None, (e.strip() for e in stripped.split(";"))):
            head, _, rest = entry.partition(" ")
            if not rest.strip():
                raise OffPeakError(f"{entry!r}: expected weekdays then windows, "
                                   "like 'mon-fri 23:00-07:00'")
            entries.append((head, rest.split(",")))
    windows: dict[int, list[Span]] = {}
    for days, spans in entries:
        parsed = [_span(s) for s in spans]
        for day in _days(days):
            windows.setdefault(day, []).extend(parsed)
    return {day: tuple(sorted(set(spans))) for day, spans in windows.items()}


def parse_holidays(text: str) -> frozenset[date]:
    """Whole off-peak days: `2026-12-25, 2026-12-26` (or a JSON list of such dates)."""
    stripped = text.strip()
    items: list[object]
    if stripped.startswith("["):
        try:
            loaded = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise OffPeakError(f"not valid JSON: {exc.msg}") from None
        items = list(loaded)
    else:
        items = [p.strip() for p in stripped.split(",") if p.strip()]
    days: set[date] = set()
    for item in items:
        try:
            days.add(date.fromisoformat(str(item).strip()))
        except ValueError:
            raise OffPeakError(f"{item!r} is not a date YYYY-MM-DD") from None
    return frozenset(days)


def parse_zone(name: str) -> ZoneInfo:
    """An IANA time zone such as Europe/Amsterdam."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise OffPeakError(f"{name!r} is not a known IANA time zone (like Europe/Amsterdam)"
                           ) from None


# --- the schedule --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OffPeakSchedule:
    """Off-peak windows per weekday plus holidays, in local time of one zone."""

    windows: dict[int, tuple[Span, ...]]
    holidays: frozenset[date] = frozenset()
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    horizon_days: int = 8
    """Days next_change scans first (the windows repeat weekly); later holidays only if needed."""

    @classmethod
    def parse(cls, windows: str, holidays: str = "", zone: str = "UTC") -> OffPeakSchedule:
        """From the text forms (see parse_windows, parse_holidays)."""
        return cls(parse_windows(windows), parse_holidays(holidays), parse_zone(zone))

    def describe(self) -> str:
        """The windows back as compact text, for logs."""
        def hhmm(m: int) -> str:
            return f"{m // 60:02d}:{m % 60:02d}"
        parts = [f"{DAYS[d]} " + ",".join(f"{hhmm(a)}-{hhmm(b)}" for a, b in spans)
                 for d, spans in sorted(self.windows.items())]
        if self.holidays:
            parts.append("holidays " + ",".join(sorted(d.isoformat() for d in self.holidays)))
        return "; ".join(parts) + f" ({self.zone.key})"

    def is_open(self, now: datetime) -> bool:
        """Whether now (aware) falls inside an off-peak window."""
        today = self._today(now)
        return any(start <= now < end for start, end in
                   self._intervals(today - timedelta(days=1), today + timedelta(days=1)))

    def next_change(self, now: datetime) -> datetime | None:
        """The first instant after now (UTC) at which is_open changes; None if it never does."""
        today = self._today(now)
        for last in self._horizons(today):
            found = self._change_until(now, today, last)
            if found is not None:
                return found
        return None

    def next_open(self, now: datetime) -> datetime | None:
        """When the window opens next (now if open; None if it never does)."""
        if self.is_open(now):
            return now.astimezone(UTC)
        return self.next_change(now)

    def _today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def _horizons(self, today: date) -> list[date]:
        """How far to look: a week and a day (the windows repeat weekly), then as far as each
        later holiday, so a far holiday is only scanned for when nothing changes before it."""
        first = today + timedelta(days=self.horizon_days)
        ends = sorted(d + timedelta(days=1) for d in self.holidays)
        return [first, *(d for d in ends if d > first)]

    def _change_until(self, now: datetime, today: date, last: date) -> datetime | None:
        """The next change if it is certain from the days up to `last`, else None."""
        scanned_to = self._instant(last + timedelta(days=1), 0)
        for start, end in self._intervals(today - timedelta(days=1), last):
            if start <= now < end:
                return end if end < scanned_to else None  # at the edge it may go on
            if start > now:
                return start
        return None

    def _intervals(self, day: date, last: date) -> list[tuple[datetime, datetime]]:
        """Merged real-time intervals of the windows and holidays of the days day..last."""
        raw: list[tuple[datetime, datetime]] = []
        while day <= last:
            if day in self.holidays:  # the whole day, on top of the day's own windows
                raw.append((self._instant(day, 0), self._instant(day, DAY_MINUTES)))
            for begin, finish in self.windows.get(day.weekday(), ()):
                finish = finish if finish > begin else finish + DAY_MINUTES  # crosses midnight
                raw.append((self._instant(day, begin), self._instant(day, finish)))
            day += timedelta(days=1)
        merged: list[tuple[datetime, datetime]] = []
        for start, end in sorted(raw):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            elif end > start:
                merged.append((start, end))
        return merged

    def _instant(self, day: date, minute: int) -> datetime:
        """The real instant (UTC) the local clock first shows `day` + minute."""
        wall = datetime.combine(day, time()) + timedelta(minutes=minute)
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        if first.astimezone(self.zone).replace(tzinfo=None) == wall:
            return first  # exists; fold=0 is the earlier of a repeated time
        # Skipped by a spring-forward gap: the moment the clock jumps past it.
        lo = int(wall.replace(tzinfo=self.zone, fold=1).timestamp())
        hi = int(first.timestamp())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self.zone).replace(tzinfo=None) >= wall:
                hi = mid
            else:
                lo = mid
        return datetime.fromtimestamp(hi, UTC)


# --- the policy in the model ---------------------------------------------------------------------


@dataclass(frozen=True)
class OffPeakChanged(Event):
    """The off-peak window opened or closed (or the policy was switched on/off)."""

    enabled: bool
    open: bool
    next_open: datetime | None = None


@dataclass
class OffPeak:
    """The policy's view inside the station model; connectors carry the per-session facts."""

    enabled: bool = False
    open: bool = True
    next_open: datetime | None = None

    @property
    def holding(self) -> bool:
        """Sessions without an override are held at 0 A now."""
        return self.enabled and not self.open

    def apply(self, event: OffPeakChanged, connectors: Iterable[Connector]) -> list[Effect]:
        """Take the new window state; every connector's charging news shows it."""
        self.enabled, self.open, self.next_open = event.enabled, event.open, event.next_open
        effects: list[Effect] = []
        for c in connectors:
            c.facts.policy_limit_a = 0.0 if self.holding else None
            if c.facts.tx is not None and c.limit_sent_a != c.effective_limit_a:
                effects += c.push_limit()
            else:
                effects.append(PublishCharging(c.connector_id, c.facts.enabled,
                                               c.effective_limit_a))
        return effects

    def waiting(self, c: Connector) -> bool:
        """This connector's transaction is held by the off-peak policy."""
        f = c.facts
        return self.holding and f.tx is not None and f.policy_override != f.tx.local_id

    def override(self, c: Connector) -> tuple[list[Effect], CommandStatus, str | None]:
        """Let this connector's waiting transaction charge now (until it ends)."""
        tx = c.facts.tx
        n = c.connector_id
        if tx is None:
            return [], CommandStatus.REJECTED, (f"no transaction on connector {n} is waiting "
                                                "for off-peak")
        if not self.enabled:
            return [], CommandStatus.REJECTED, "off-peak charging is not enabled"
        if c.facts.policy_override == tx.local_id:
            return [], CommandStatus.REJECTED, f"connector {n} already has an override"
        if self.open:
            return [], CommandStatus.REJECTED, (f"the off-peak window is open: the transaction "
                                                f"on connector {n} is not waiting")
        c.facts.policy_override = tx.local_id
        return c.push_limit(), CommandStatus.ACCEPTED, None

    def annotate(self, effects: list[Effect], connectors: dict[int, Connector]) -> list[Effect]:
        """Charging news carries the off-peak state of its connector; when a transaction ends,
        news that it no longer waits (or has an override) follows."""
        if self.enabled:
            effects = self._after_transactions(effects, connectors)
        out: list[Effect] = []
        for e in effects:
            c = connectors.get(e.connector) if isinstance(e, PublishCharging) else None
            if isinstance(e, PublishCharging) and c is not None:
                tx = c.facts.tx
                e = replace(e, offpeak_waiting=self.waiting(c),
                            offpeak_until=self.next_open if self.holding else None,
                            offpeak_override=bool(tx is not None
                                                  and c.facts.policy_override == tx.local_id))
            out.append(e)
        return out

    @staticmethod
    def _after_transactions(effects: list[Effect], connectors: dict[int, Connector]
                            ) -> list[Effect]:
        told = {e.connector for e in effects if isinstance(e, PublishCharging)}
        out: list[Effect] = []
        for e in effects:
            out.append(e)
            if isinstance(e, PublishTransaction) and e.transaction is None and (
                    e.connector not in told and e.connector in connectors):
                c = connectors[e.connector]
                out.append(PublishCharging(c.connector_id, c.facts.enabled, c.effective_limit_a))
                told.add(e.connector)
        return out
