"""Price slots and the `Tariff` interface every tariff implements, pure."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class PriceSlot:
    """A span of time at one price (currency per kWh) and, if known, grid CO2 (g per kWh)."""

    start: datetime
    end: datetime
    price_per_kwh: float | None
    co2_g_per_kwh: float | None = None

    @property
    def hours(self) -> float:
        """Its length in hours."""
        return (self.end - self.start).total_seconds() / 3600


class Tariff(Protocol):
    """What the planner and the site state need from any tariff."""

    def slots(self, start: datetime, end: datetime) -> list[PriceSlot]:
        """Slots covering [start, end) in order; a time without a known price has price None."""

    @property
    def status(self) -> str:
        """The tariff's state in words ("ok", a feed error, ...)."""


def hour_floor(t: datetime) -> datetime:
    """The start of t's hour (UTC)."""
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def cut(slots: Iterable[PriceSlot], start: datetime, end: datetime) -> list[PriceSlot]:
    """The parts of sorted, non-overlapping slots inside [start, end), gaps filled with None."""
    out: list[PriceSlot] = []
    at = start
    for slot in slots:
        if slot.end <= at or slot.start >= end:
            continue
        if slot.start > at:
            out.append(PriceSlot(at, slot.start, None))
        piece = replace(slot, start=max(slot.start, at), end=min(slot.end, end))
        out.append(piece)
        at = piece.end
    if at < end:
        out.append(PriceSlot(at, end, None))
    return out


def price_at(slots: Sequence[PriceSlot], t: datetime) -> PriceSlot | None:
    """The slot that holds t, if any."""
    for slot in slots:
        if slot.start <= t < slot.end:
            return slot
    return None


def merge_co2(prices: Sequence[PriceSlot], co2: Sequence[PriceSlot]) -> list[PriceSlot]:
    """Price slots split where the CO2 series changes, each with the CO2 intensity in force."""
    if not co2:
        return list(prices)
    edges = sorted({s.start for s in co2} | {s.end for s in co2})
    out: list[PriceSlot] = []
    for slot in prices:
        bounds = [slot.start, *(e for e in edges if slot.start < e < slot.end), slot.end]
        for a, b in itertools.pairwise(bounds):
            found = price_at(co2, a)
            out.append(PriceSlot(a, b, slot.price_per_kwh,
                                 found.co2_g_per_kwh if found else slot.co2_g_per_kwh))
    return out


class FixedTariff:
    """One price at all times, in hourly slots so a plan reads like any other."""

    def __init__(self, price_per_kwh: float) -> None:
        self.price_per_kwh = price_per_kwh

    @property
    def status(self) -> str:
        """Always "ok"."""
        return "ok: fixed price"

    def slots(self, start: datetime, end: datetime) -> list[PriceSlot]:
        """Hourly slots at the fixed price."""
        hours = []
        at = hour_floor(start)
        while at < end:
            hours.append(PriceSlot(at, at + HOUR, self.price_per_kwh))
            at += HOUR
        return cut(hours, start, end)
