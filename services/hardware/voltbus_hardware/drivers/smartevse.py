"""SmartEVSE as Oppleo wires it: an enable pin, and the status LED's PWM read back as the state.

The LED output, wired to an input pin, tells the state by its pattern (SmartEVSE v2 manual):
off = no EV (A), steady on = EV connected (B), slowly fading = charging (C), fast blinking =
error (F); a fast steady PWM is a dimmed LED, i.e. steady on. Edges are timestamped in
gpiozero's callback thread and judged over a short window.
The board takes no current limit over these wires, so the controller says so on the bus.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections import deque
from typing import Any, Self

from gpiozero import DigitalInputDevice, DigitalOutputDevice

from voltbus_common.enums import ChargePointErrorCode, PilotState
from voltbus_hardware.config import SmartEvseConfig
from voltbus_hardware.drivers.base import EvseStatus

FADING_SPREAD = 0.3    # duty-cycle spread over the window that means "fading"
ERROR_BLINK_HZ = (1.5, 10.0)  # a visible steady blink is the error pattern; faster is dimming


def classify(edges: list[tuple[float, bool]], level: bool) -> EvseStatus:
    """The state from the LED's edges (time, new level) in the window and its level now."""
    rises = [t for t, high in edges if high]
    if len(rises) < 3:
        return EvseStatus(PilotState.B if level else PilotState.A)
    duties = []
    for start, end in itertools.pairwise(rises):
        fall = next((t for t, high in edges if not high and start < t < end), None)
        if fall is not None:
            duties.append((fall - start) / (end - start))
    frequency = 1 / statistics.median(b - a for a, b in itertools.pairwise(rises))
    if len(duties) >= 5:  # spread between 10th and 90th percentile: ignores stray cycles
        deciles = statistics.quantiles(duties, n=10)
        if deciles[-1] - deciles[0] >= FADING_SPREAD:
            return EvseStatus(PilotState.C)
    elif duties and max(duties) - min(duties) >= FADING_SPREAD:
        return EvseStatus(PilotState.C)
    if ERROR_BLINK_HZ[0] <= frequency < ERROR_BLINK_HZ[1]:
        return EvseStatus(PilotState.F, ChargePointErrorCode.OTHER_ERROR, "SmartEVSE error blink")
    return EvseStatus(PilotState.B)


class SmartEvse:
    """Enable pin out, status LED in."""

    def __init__(self, enable_pin: int, status_pin: int, *, enable_active_high: bool = True,
                 window_s: float = 2.0, pin_factory: Any = None) -> None:
        self.window_s = window_s
        self.enable = DigitalOutputDevice(enable_pin, active_high=enable_active_high,
                                          initial_value=False, pin_factory=pin_factory)
        self.led = DigitalInputDevice(status_pin, pull_up=False, pin_factory=pin_factory)
        self._edges: deque[tuple[float, bool]] = deque(maxlen=4096)
        self._lock = threading.Lock()
        self.led.when_activated = lambda: self._edge(True)
        self.led.when_deactivated = lambda: self._edge(False)

    @classmethod
    def from_config(cls, cfg: SmartEvseConfig, *, pin_factory: Any = None) -> Self:
        """From an `evse: {type: smartevse, enable_pin: .., status_pin: ..}` entry."""
        return cls(cfg.enable_pin, cfg.status_pin, enable_active_high=cfg.enable_active_high,
                   pin_factory=pin_factory)

    def _edge(self, high: bool) -> None:
        with self._lock:
            self._edges.append((time.monotonic(), high))

    async def status(self) -> EvseStatus:
        """The state the LED has shown over the last window."""
        since = time.monotonic() - self.window_s
        with self._lock:
            edges = [e for e in self._edges if e[0] >= since]
        return classify(edges, bool(self.led.value))

    async def set_enabled(self, enabled: bool) -> None:
        """Drive the enable pin: SmartEVSE charges only while it is active."""
        self.enable.value = enabled

    def close(self) -> None:
        """Release both pins."""
        self.enable.close()
        self.led.close()
