"""The site fuse guard, pure: share what the grid connection has left among the charging cars.

Limits are budgeted against the limits themselves, never against what the cars happen to draw:
a car may rise to its limit at any moment, so the house load plus every limit must fit under the
fuse per phase and under the import cap. The house load is the grid current minus the cars'
measured currents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

EV_MIN_A = 6.0  # IEC 61851: the least a PWM duty cycle may offer; below it, pause
VOLTAGE_V = 230.0


@dataclass(frozen=True)
class Site:
    """The grid connection: fuse per phase (A), optional import cap (W), nominal voltage."""

    fuse_a: float
    max_import_w: float | None = None
    voltage_v: float = VOLTAGE_V
    margin_a: float = 0.0  # kept free per phase for measurement lag


@dataclass(frozen=True)
class Demand:
    """One connector asking for current: phases it uses (0-based), its cap, its priority."""

    key: str
    phases: tuple[int, ...]
    max_a: float  # what its mode and hardware allow now (0: nothing)
    priority: int = 0
    min_a: float = EV_MIN_A


@dataclass(frozen=True)
class Grid:
    """A grid-meter reading: current per phase (A, > 0 import) and power (W, > 0 import)."""

    current_a: tuple[float, float, float]
    power_w: float


def house_load(grid: Grid, drawn_a: dict[str, tuple[float, float, float]]) -> Grid:
    """The grid reading without the controlled cars (their measured currents per phase)."""
    current = list(grid.current_a)
    power = grid.power_w
    for amps in drawn_a.values():
        for p in range(3):
            current[p] -= amps[p]
        power -= sum(amps) * VOLTAGE_V
    return Grid((current[0], current[1], current[2]), power)


def headroom(site: Site, house: Grid) -> tuple[list[float], float]:
    """Current left per phase and power left (W) for the cars; never below 0."""
    per_phase = [max(0.0, site.fuse_a - site.margin_a - house.current_a[p]) for p in range(3)]
    power = float("inf") if site.max_import_w is None else max(0.0, site.max_import_w
                                                               - house.power_w)
    return per_phase, power


def allocate(site: Site, house: Grid, demands: Iterable[Demand]) -> dict[str, float]:
    """Limits per connector: higher priority first, a fair (equal) share within a priority;
    a connector that cannot get its minimum gets 0 and its share goes to the others."""
    phase_left, power_left = headroom(site, house)
    result: dict[str, float] = {}
    by_priority: dict[int, list[Demand]] = {}
    for d in demands:
        by_priority.setdefault(d.priority, []).append(d)
    for priority in sorted(by_priority, reverse=True):
        group = by_priority[priority]
        shares = _fair_share(group, phase_left, power_left, site.voltage_v)
        for d in group:
            amps = shares[d.key]
            result[d.key] = amps
            for p in d.phases:
                phase_left[p] = max(0.0, phase_left[p] - amps)
            power_left = max(0.0, power_left - amps * len(d.phases) * site.voltage_v)
    return result


def _fair_share(group: Sequence[Demand], phase_left: Sequence[float], power_left: float,
                voltage_v: float) -> dict[str, float]:
    """Equal current for all in the group, capped per connector; drop those below minimum."""
    active = [d for d in group if d.max_a >= d.min_a and d.phases]
    result = {d.key: 0.0 for d in group}
    while active:
        shares = _water_fill(active, phase_left, power_left, voltage_v)
        short = [d for d in active if shares[d.key] < d.min_a]
        if not short:
            result.update(shares)
            return result
        # the lowest-ranked short connector pauses; the rest share again. Far over the fuse
        # (a phase with two or more users too many for their minimum) the lowest-ranked short
        # users of that phase pause together, all but one: one at a time cost a water fill
        # each, and 100 connectors on a 100 A fuse took 30 ms a decision.
        pause = [short[-1]]
        for p in range(3):
            users = [d for d in short if p in d.phases]
            fits = sum(1 for d in active if p in d.phases) - len(users)
            spare = phase_left[p] - fits * min(d.min_a for d in users) if users else 0.0
            excess = len(users) - int(max(0.0, spare) / max(d.min_a for d in users) + 1e-9) \
                if users else 0
            if excess >= 2 and excess - 1 > len(pause):
                pause = users[-(excess - 1):]
        paused = {id(d) for d in pause}
        active = [d for d in active if id(d) not in paused]
    return result


def _water_fill(active: Sequence[Demand], phase_left: Sequence[float], power_left: float,
                voltage_v: float) -> dict[str, float]:
    """Raise every connector's current together until a cap, a phase or the power runs out."""
    shares = {d.key: 0.0 for d in active}
    open_ = list(active)
    phases = list(phase_left)
    power = power_left
    while open_:
        step = min(d.max_a - shares[d.key] for d in open_)
        for p in range(3):
            users = sum(1 for d in open_ if p in d.phases)
            if users:
                step = min(step, phases[p] / users)
        watts = sum(len(d.phases) for d in open_) * voltage_v
        step = min(step, power / watts)
        step = max(0.0, step)
        for d in open_:
            shares[d.key] += step
            for p in d.phases:
                phases[p] -= step
        power -= step * watts
        full = {p for p in range(3) if phases[p] <= 1e-9}
        still = [d for d in open_ if shares[d.key] < d.max_a - 1e-9
                 and not full.intersection(d.phases) and power > 1e-6]
        if len(still) == len(open_):  # no progress possible (step was 0 for another reason)
            break
        open_ = still
    return {k: _floor(v) for k, v in shares.items()}


def _floor(amps: float) -> float:
    """Round down to 0.1 A, so rounding never pushes a phase over the fuse."""
    return max(0.0, int(amps * 10 + 1e-6) / 10)
