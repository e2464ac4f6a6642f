"""Safety bookkeeping, pure: overcurrent timing and the faults active on a connector."""

from __future__ import annotations

from dataclasses import dataclass, field

from voltbus_common.enums import ChargePointErrorCode, PilotState

# Pilot states in which the relay must be open: no EV (A), pilot short/EVSE off (E), error (F).
OPEN_PILOTS = frozenset({PilotState.A, PilotState.E, PilotState.F})


@dataclass
class OvercurrentGuard:
    """Trips when current stays above limit + margin for longer than hold_s."""

    margin_a: float
    hold_s: float
    _since: float | None = None

    def update(self, now: float, current_a: float, limit_a: float) -> bool:
        """Feed one reading; True when the relay must open."""
        if current_a <= limit_a + self.margin_a:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self.hold_s

    def reset(self) -> None:
        """Forget an excursion in progress (relay opened)."""
        self._since = None


PRIORITY = ("evse", "relay", "overcurrent", "lock", "meter")  # then readers; the first active shows


@dataclass
class FaultSet:
    """Faults by source; the error topic shows the most severe: EVSE board, relay,
    overcurrent, cable lock, meter, then card readers (one topic carries one code)."""

    _active: dict[str, tuple[ChargePointErrorCode, str | None]] = field(default_factory=dict)

    def set(self, source: str, code: ChargePointErrorCode, info: str | None = None) -> None:
        """Record (or with NoError clear) the fault of one source."""
        if code is ChargePointErrorCode.NO_ERROR:
            self._active.pop(source, None)
        elif self._active.get(source) != (code, info):
            self._active.pop(source, None)
            self._active[source] = (code, info)

    def clear(self, source: str) -> None:
        """The source works again."""
        self._active.pop(source, None)

    def has(self, source: str) -> bool:
        """Whether this source has a fault."""
        return source in self._active

    def shown(self) -> tuple[ChargePointErrorCode, str | None]:
        """What the error topic should say now."""
        for source in sorted(self._active, key=_rank):
            return self._active[source]
        return ChargePointErrorCode.NO_ERROR, None


def _rank(source: str) -> int:
    return PRIORITY.index(source) if source in PRIORITY else len(PRIORITY)
