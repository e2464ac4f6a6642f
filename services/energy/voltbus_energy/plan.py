"""The charge planner, pure: reach N Wh by a departure time in the cheapest (or cleanest) slots.

The slots between now and the departure are ranked by price (or CO2 intensity), earliest first
among equals, and taken until the energy still missing fits; the last one taken is shortened to
what it must deliver, from its start. Slots without a known price rank last, so they are used
only when the known ones cannot deliver in time. The manager replans every period from the
energy still missing, so a car that charges slower than planned gets more slots, and a slot in
progress keeps its place (its remaining capacity shrinks exactly as the car charges).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from voltbus_energy.tariff.prices import PriceSlot

Objective = Literal["cost", "co2"]


@dataclass(frozen=True)
class Chosen:
    """A slot of the plan: when, at what price/CO2, and the energy planned in it (Wh)."""

    start: datetime
    end: datetime
    price_per_kwh: float | None
    co2_g_per_kwh: float | None
    energy_wh: float


@dataclass(frozen=True)
class Plan:
    """The chosen slots in time order; cost and CO2 are None when a slot's value is unknown."""

    slots: tuple[Chosen, ...]
    energy_wh: float  # planned
    missing_wh: float  # what cannot be delivered before the departure
    cost: float | None
    co2_g: float | None

    def active(self, now: datetime) -> bool:
        """Charge now?"""
        return any(s.start <= now < s.end for s in self.slots)


def _rank(slot: PriceSlot, objective: Objective) -> tuple[int, float, datetime]:
    value = slot.price_per_kwh if objective == "cost" else slot.co2_g_per_kwh
    return (1, 0.0, slot.start) if value is None else (0, value, slot.start)


def _total(slots: tuple[Chosen, ...], attr: str) -> float | None:
    total = 0.0
    for s in slots:
        value = getattr(s, attr)
        if value is None:
            return None
        total += value * s.energy_wh / 1000
    return total


def make_plan(table: list[PriceSlot], *, now: datetime, departure: datetime, energy_wh: float,
              power_w: float, objective: Objective = "cost") -> Plan:
    """The plan for energy_wh more by departure at power_w, from the tariff's slots."""
    need = max(0.0, energy_wh)
    chosen: list[Chosen] = []
    if need > 0 and power_w > 0:
        window = [s for s in table if s.end > now and s.start < departure]
        for slot in sorted(window, key=lambda s: _rank(s, objective)):
            start, end = max(slot.start, now), min(slot.end, departure)
            capacity = power_w * (end - start).total_seconds() / 3600
            if capacity <= 0:
                continue
            take = min(capacity, need)
            if take < capacity:
                end = start + timedelta(seconds=take / power_w * 3600)
            chosen.append(Chosen(start, end, slot.price_per_kwh, slot.co2_g_per_kwh, take))
            need -= take
            if need <= 1e-9:
                need = 0.0
                break
    slots = tuple(sorted(chosen, key=lambda c: c.start))
    return Plan(slots, sum(s.energy_wh for s in slots), need, _total(slots, "price_per_kwh"),
                _total(slots, "co2_g_per_kwh"))
