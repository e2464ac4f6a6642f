"""A 1p/3p phase-switch contactor on GPIO: one output pin (through a relay module) drives the
contactor that connects L2 and L3; its auxiliary contact on an input pin, when wired, confirms.

The contactor is rated for the load but must never switch under it: the controller
(phase_switches.py) switches only while no current can flow. The driver switches, waits
`settle_s` (a contactor closes in 10-50 ms and bounces), and with feedback believes only the
auxiliary contact: if it does not show the new position within `timeout_s`, the switch failed.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self

from gpiozero import DigitalInputDevice, OutputDevice

from voltbus_common.enums import ChargePointErrorCode
from voltbus_hardware.config import GpioPhaseSwitchConfig
from voltbus_hardware.drivers.base import DeviceUnavailable

POLL_S = 0.01


class GpioPhaseSwitch:
    """The L2/L3 contactor: output pin, optional auxiliary contact (active = pulled in)."""

    def __init__(self, pin: int, *, active_high: bool = True,
                 three_phase_when_active: bool = True, feedback_pin: int | None = None,
                 feedback_pull_up: bool = True, settle_s: float = 0.1, timeout_s: float = 1.0,
                 pin_factory: Any = None) -> None:
        self.three_phase_when_active = three_phase_when_active
        # Start in the position the coil gives without power: what the contactor does anyway
        # while the Pi boots (1 phase for a normally-open contactor on L2/L3).
        self.coil = OutputDevice(pin, active_high=active_high, initial_value=False,
                                 pin_factory=pin_factory)
        self.feedback = None if feedback_pin is None else DigitalInputDevice(
            feedback_pin, pull_up=feedback_pull_up, pin_factory=pin_factory)
        self.settle_s, self.timeout_s = settle_s, max(timeout_s, settle_s)

    @classmethod
    def from_config(cls, cfg: GpioPhaseSwitchConfig, *, pin_factory: Any = None) -> Self:
        """From a `phase_switch: {type: gpio, pin: .., feedback_pin: ..}` entry."""
        return cls(cfg.pin, active_high=cfg.active_high,
                   three_phase_when_active=cfg.three_phase_when_active,
                   feedback_pin=cfg.feedback_pin, feedback_pull_up=cfg.feedback_pull_up,
                   settle_s=cfg.settle_s, timeout_s=cfg.timeout_s, pin_factory=pin_factory)

    def _phases_of(self, pulled_in: bool) -> int:
        return 3 if pulled_in == self.three_phase_when_active else 1

    async def phases(self) -> int:
        """The auxiliary contact's position, or the coil's without feedback."""
        pulled_in = (bool(self.coil.value) if self.feedback is None
                     else bool(self.feedback.is_active))
        return self._phases_of(pulled_in)

    async def set_phases(self, phases: int) -> int:
        """Drive the coil; with feedback, DeviceUnavailable(PowerSwitchFailure) unless the
        auxiliary contact confirms within timeout_s."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.coil.value = (phases == 3) == self.three_phase_when_active
        await asyncio.sleep(self.settle_s)
        while (now := await self.phases()) != phases:
            if loop.time() - start >= self.timeout_s:
                raise DeviceUnavailable(
                    f"phase contactor: still {now} phases after {self.timeout_s:g}s",
                    ChargePointErrorCode.POWER_SWITCH_FAILURE)
            await asyncio.sleep(POLL_S)
        return now

    def close(self) -> None:
        """Release the pins (the contactor drops out)."""
        self.coil.close()
        if self.feedback is not None:
            self.feedback.close()
