"""Time-of-use tariff, pure: prices per weekday window in local wall-clock time.

The text form follows the gateway's off-peak windows (`mon-fri 23:00-07:00`), with a price per
entry: `mon-fri 23:00-07:00=0.21; sat,sun 00:00-24:00=0.24`. Outside every window the base price
applies. A window whose end is not after its start crosses midnight. The off-peak model lives in
the gateway (services never import each other), so this is the energy manager's own small copy of
the syntax.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voltbus_energy.tariff.prices import HOUR, PriceSlot, cut, hour_floor

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Window:
    """One priced window: weekdays it starts on (0 = Monday), start and end in minutes."""

    days: frozenset[int]
    start_min: int
    end_min: int
    price_per_kwh: float


def _minutes(text: str) -> int:
    found = _TIME.match(text.strip())
    if not found or int(found.group(2)) > 59 or int(found.group(1)) * 60 + int(
            found.group(2)) > 1440:
        raise ValueError(f"{text.strip()!r} is not a time HH:MM (00:00..24:00)")
    return int(found.group(1)) * 60 + int(found.group(2))


def _days(text: str) -> frozenset[int]:
    spec = text.strip().lower()
    if spec in ("daily", "*"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        names = [p.strip()[:3] for p in part.split("-", 1)]
        if not all(n in DAYS for n in names):
            raise ValueError(f"{part.strip()!r} is not a weekday or range (mon-fri, sat,sun)")
        first, last = DAYS.index(names[0]), DAYS.index(names[-1])
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    return frozenset(days)


def parse_windows(text: str) -> list[Window]:
    """Windows from `DAYS HH:MM-HH:MM=PRICE; ...`; ValueError names the bad part."""
    windows = []
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        head, _, rest = entry.partition(" ")
        span, eq, price = rest.partition("=")
        if not eq:
            raise ValueError(f"{entry!r}: expected 'mon-fri 23:00-07:00=0.21'")
        start, dash, end = span.partition("-")
        if not dash:
            raise ValueError(f"{entry!r}: expected a window HH:MM-HH:MM")
        try:
            amount = float(price)
        except ValueError:
            raise ValueError(f"{entry!r}: {price.strip()!r} is not a price") from None
        a, b = _minutes(start), _minutes(end)
        if a == b:
            raise ValueError(f"{entry!r}: empty window")
        windows.append(Window(_days(head), a, b, amount))
    return windows


def parse_zone(name: str) -> ZoneInfo:
    """An IANA time zone such as Europe/Vienna."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known IANA time zone (like Europe/Vienna)") from None


class TouTariff:
    """A base price, with cheaper (or dearer) windows in local time; the first match wins."""

    def __init__(self, windows: list[Window], *, base_price_per_kwh: float, zone: ZoneInfo
                 ) -> None:
        self.windows, self.base, self.zone = windows, base_price_per_kwh, zone

    @property
    def status(self) -> str:
        """Always "ok"."""
        return f"ok: time-of-use, {len(self.windows)} windows"

    def price(self, t: datetime) -> float:
        """The price in force at instant t."""
        local = t.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        weekday = local.weekday()
        for w in self.windows:
            if w.start_min < w.end_min:
                if weekday in w.days and w.start_min <= minute < w.end_min:
                    return w.price_per_kwh
            elif (weekday in w.days and minute >= w.start_min) or (
                    (weekday - 1) % 7 in w.days and minute < w.end_min):
                return w.price_per_kwh
        return self.base

    def _edges(self, start: datetime, end: datetime) -> list[datetime]:
        """Hour starts plus every window boundary between start and end."""
        edges = set()
        at = hour_floor(start)
        while at < end:
            edges.add(at)
            at += HOUR
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        while datetime.combine(day, time(), self.zone) < end:
            for w in self.windows:
                for minute in (w.start_min, w.end_min):
                    edge = datetime.combine(day, time(), self.zone) + timedelta(minutes=minute)
                    edges.add(edge.astimezone(UTC))  # wall-clock sum, then the real instant
            day += timedelta(days=1)
        return sorted(e for e in edges if start < e < end)

    def slots(self, start: datetime, end: datetime) -> list[PriceSlot]:
        """Slots at most an hour long, split at each window boundary."""
        bounds = [start, *self._edges(start, end), end]
        out = [PriceSlot(a, b, self.price(a + (b - a) / 2))
               for a, b in itertools.pairwise(bounds)]
        return cut(out, start, end)
