"""Charge modes, pure: PV follows a surplus curve without toggling more often than its timers."""

from __future__ import annotations

import itertools
import math

import pytest

from voltbus_common.enums import ChargeMode
from voltbus_energy.modes import PvSwitch, PvTimers, mode_cap

TIMERS = PvTimers(start_delay_s=60, stop_delay_s=180, min_on_s=300, min_off_s=120)


def cap(mode: ChargeMode, surplus_w: float, pv: PvSwitch | None = None, now_s: float = 0.0,
        plan_active: bool = False) -> float:
    return mode_cap(mode, max_a=16.0, phases=3, surplus_w=surplus_w, pv=pv or PvSwitch(),
                    now_s=now_s, timers=TIMERS, plan_active=plan_active)


@pytest.mark.parametrize(("mode", "surplus_w", "plan", "expected"), [
    (ChargeMode.OFF, 20000.0, False, 0.0),
    (ChargeMode.NOW, 0.0, False, 16.0),
    (ChargeMode.MIN_PV, 0.0, False, 6.0),
    (ChargeMode.MIN_PV, 6900.0, False, 10.0),
    (ChargeMode.MIN_PV, 50000.0, False, 16.0),
    (ChargeMode.PLAN, 0.0, True, 16.0),
    (ChargeMode.PLAN, 9000.0, False, 0.0),
])
def test_mode_caps(mode: ChargeMode, surplus_w: float, plan: bool, expected: float) -> None:
    assert cap(mode, surplus_w, plan_active=plan) == pytest.approx(expected)


def test_pv_starts_only_after_the_start_delay() -> None:
    pv = PvSwitch()
    assert cap(ChargeMode.PV, 6900.0, pv, now_s=0) == 0.0
    assert cap(ChargeMode.PV, 6900.0, pv, now_s=59) == 0.0
    assert cap(ChargeMode.PV, 6900.0, pv, now_s=60) == pytest.approx(10.0)


def test_a_passing_cloud_does_not_stop_pv_charging() -> None:
    pv = PvSwitch()
    for t in range(0, 400, 10):
        cap(ChargeMode.PV, 6900.0, pv, now_s=t)
    assert pv.on
    for t in range(400, 500, 10):  # 100 s of cloud: shorter than the stop delay
        assert cap(ChargeMode.PV, 500.0, pv, now_s=t) == 6.0  # keeps the minimum meanwhile
    assert pv.on
    assert pv.switches == 1


def test_pv_follows_a_surplus_curve_within_its_timers() -> None:
    """A day of surplus with clouds (200 s of every 600 s, plus 20 s flicker): the contactor
    switches only as often as the timers allow."""
    pv = PvSwitch()
    changes: list[float] = []
    last = pv.on
    for t in range(0, 12 * 3600, 5):
        sun = max(0.0, math.sin(math.pi * t / (12 * 3600))) * 9000.0
        cloud = 0.3 if t % 600 < 200 or (t // 20) % 7 == 0 else 1.0
        cap(ChargeMode.PV, sun * cloud, pv, now_s=float(t))
        if pv.on != last:
            changes.append(float(t))
            last = pv.on
    assert len(changes) >= 4, f"PV charging should follow the clouds: {changes}"
    gaps = [b - a for a, b in itertools.pairwise(changes)]
    assert all(g >= min(TIMERS.min_on_s, TIMERS.min_off_s) for g in gaps), gaps
    assert len(changes) <= 12 * 3600 / (TIMERS.min_on_s + TIMERS.min_off_s) + 1
