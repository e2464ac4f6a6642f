"""A session's cost at the live tariff, pure: each interval between two meter registers costs its
energy at the price of its time. An interval that spans a price change is split in proportion to
time (the meter tells only the energy at both ends); energy at a time without a known price is
counted apart (unpriced_wh), so the cost never pretends to know it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from voltbus_energy.tariff.prices import PriceSlot


def interval_cost(slots: Sequence[PriceSlot], start: datetime, end: datetime,
                  energy_wh: float) -> tuple[float, float]:
    """(cost, unpriced Wh) of energy_wh drawn evenly over [start, end), slots covering it."""
    span = (end - start).total_seconds()
    if energy_wh <= 0:
        return 0.0, 0.0
    if span <= 0:  # the same instant: the price then
        slot = next((s for s in slots if s.start <= start < s.end), None)
        if slot is None or slot.price_per_kwh is None:
            return 0.0, energy_wh
        return energy_wh / 1000 * slot.price_per_kwh, 0.0
    cost, priced = 0.0, 0.0
    for slot in slots:
        overlap = (min(slot.end, end) - max(slot.start, start)).total_seconds()
        if overlap <= 0 or slot.price_per_kwh is None:
            continue
        wh = energy_wh * overlap / span
        cost += wh / 1000 * slot.price_per_kwh
        priced += wh
    return cost, max(0.0, energy_wh - priced)


@dataclass
class SessionMeter:
    """The running cost of one transaction, from the register readings as they come."""

    transaction_ref: str | None
    transaction_id: int | None
    started_at: datetime
    meter_start_wh: float
    last_wh: float
    last_ts: datetime
    cost: float = 0.0
    unpriced_wh: float = 0.0

    @property
    def energy_wh(self) -> float:
        """Energy counted so far."""
        return max(0.0, self.last_wh - self.meter_start_wh)

    def add(self, slots: Sequence[PriceSlot], register_wh: float, at: datetime) -> None:
        """A register reading at `at`: the energy since the last one at its times' prices."""
        if at < self.last_ts:
            return  # an older reading (a retained one seen again): already counted
        delta = register_wh - self.last_wh
        if delta > 0:
            cost, unpriced = interval_cost(slots, self.last_ts, at, delta)
            self.cost += cost
            self.unpriced_wh += unpriced
        elif delta < 0:  # a register that went back (a meter swap) is no negative cost:
            self.meter_start_wh += delta  # count on from the new register
        self.last_wh = register_wh
        self.last_ts = at
