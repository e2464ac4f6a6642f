"""Charge modes, pure: what one connector may take before the fuse guard shares the site.

PV mode switches with start/stop thresholds held for a while (hysteresis timers) and keeps the
contactor in each position for a minimum time, so a passing cloud does not toggle it and the car
is not switched every few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voltbus_common.enums import ChargeMode
from voltbus_energy.fuse import EV_MIN_A, VOLTAGE_V


@dataclass(frozen=True)
class PvTimers:
    """Seconds a threshold must hold before PV charging starts/stops, and minimum on/off times."""

    start_delay_s: float = 60.0
    stop_delay_s: float = 180.0
    min_on_s: float = 300.0
    min_off_s: float = 120.0


@dataclass
class PvSwitch:
    """The PV on/off state of one connector with its timers (monotonic seconds)."""

    on: bool = False
    changed_at: float = float("-inf")
    pending_since: float | None = None
    switches: int = field(default=0)

    def update(self, want_on: bool, now_s: float, timers: PvTimers) -> bool:
        """Follow want_on only after it held long enough and the minimum time passed."""
        if want_on == self.on:
            self.pending_since = None
            return self.on
        if self.pending_since is None:
            self.pending_since = now_s
        delay = timers.start_delay_s if want_on else timers.stop_delay_s
        minimum = timers.min_off_s if want_on else timers.min_on_s
        if now_s - self.pending_since >= delay and now_s - self.changed_at >= minimum:
            self.on, self.changed_at, self.pending_since = want_on, now_s, None
            self.switches += 1
        return self.on


@dataclass(frozen=True)
class PhaseTimers:
    """1p/3p switching: how long the surplus must hold before switching up/down, the least time
    between two switches, the IEC 61851 pause around a switch, and how long each step may take."""

    up_delay_s: float = 60.0
    down_delay_s: float = 180.0
    min_interval_s: float = 300.0
    pause_s: float = 5.0
    stop_timeout_s: float = 30.0
    confirm_timeout_s: float = 10.0


THREE_PHASE_MIN_W = EV_MIN_A * 3 * VOLTAGE_V  # 4140 W: the least a car draws on three phases


@dataclass
class PhaseChooser:
    """Which phases one connector should charge on, with hysteresis timers (monotonic s)."""

    pending: int | None = None
    pending_since: float = 0.0
    switched_at: float = float("-inf")

    def want(self, mode: ChargeMode, surplus_w: float, phases: int, now_s: float,
             timers: PhaseTimers) -> int:
        """Now and Plan: 3 at once. PV and Min+PV: 3 once the surplus (this connector's share
        plus its own draw) paid for 6 A on three phases for up_delay_s, 1 once it stayed below
        for down_delay_s, and never two switches within min_interval_s. Off: as it is."""
        if mode in (ChargeMode.NOW, ChargeMode.PLAN):
            self.pending = None
            return 3
        if mode not in (ChargeMode.PV, ChargeMode.MIN_PV):
            self.pending = None
            return phases
        target = 3 if surplus_w >= THREE_PHASE_MIN_W else 1
        if target == phases:
            self.pending = None
            return phases
        if self.pending != target:
            self.pending, self.pending_since = target, now_s
        delay = timers.up_delay_s if target == 3 else timers.down_delay_s
        if now_s - self.pending_since >= delay \
                and now_s - self.switched_at >= timers.min_interval_s:
            return target
        return phases


def surplus_amps(surplus_w: float, phases: int) -> float:
    """The current per phase a surplus (W) pays for."""
    return max(0.0, surplus_w) / (VOLTAGE_V * max(1, phases))


def mode_cap(mode: ChargeMode, *, max_a: float, phases: int, surplus_w: float, pv: PvSwitch,
             now_s: float, timers: PvTimers, plan_active: bool = False,
             min_a: float = EV_MIN_A) -> float:
    """The most this connector may draw in its mode (A per phase); 0 pauses it.

    surplus_w is what this connector could take from PV: the export plus its own draw now.
    """
    available = surplus_amps(surplus_w, phases)
    if mode is ChargeMode.OFF:
        return 0.0
    if mode is ChargeMode.NOW:
        return max_a
    if mode is ChargeMode.MIN_PV:
        return min(max_a, max(min_a, available))
    if mode is ChargeMode.PLAN:
        return max_a if plan_active else 0.0
    if pv.update(available >= min_a, now_s, timers):
        return min(max_a, max(min_a, available))
    return 0.0
