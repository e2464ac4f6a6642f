"""A motor cable lock on GPIO: two motor pins (H-bridge lock/unlock) and a feedback switch.

Socket-outlet lock actuators (Bals, Phoenix Contact, Walther) are DC motors driven one way to
lock and the other to unlock, for a few hundred ms, with a microswitch that closes when the
pin is home. The driver runs the motor for `pulse_s`, then believes only the feedback: if it
does not read the new position within `timeout_s` of the start, the move failed.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self

from gpiozero import DigitalInputDevice, OutputDevice

from voltbus_common.enums import ChargePointErrorCode
from voltbus_hardware.config import GpioMotorLockConfig
from voltbus_hardware.drivers.base import DeviceUnavailable

POLL_S = 0.01


class GpioMotorLock:
    """A cable lock: motor pins for each direction and a feedback input (active = locked)."""

    def __init__(self, lock_pin: int, unlock_pin: int, feedback_pin: int, *,
                 motor_active_high: bool = True, feedback_pull_up: bool = True,
                 locked_when_active: bool = True, pulse_s: float = 0.6, timeout_s: float = 1.5,
                 pin_factory: Any = None) -> None:
        self.lock_motor = OutputDevice(lock_pin, active_high=motor_active_high,
                                       initial_value=False, pin_factory=pin_factory)
        self.unlock_motor = OutputDevice(unlock_pin, active_high=motor_active_high,
                                         initial_value=False, pin_factory=pin_factory)
        self.feedback = DigitalInputDevice(feedback_pin, pull_up=feedback_pull_up,
                                           pin_factory=pin_factory)
        self.locked_when_active = locked_when_active
        self.pulse_s, self.timeout_s = pulse_s, max(timeout_s, pulse_s)

    @classmethod
    def from_config(cls, cfg: GpioMotorLockConfig, *, pin_factory: Any = None) -> Self:
        """From a `lock: {type: gpio_motor, lock_pin: .., unlock_pin: .., feedback_pin: ..}`."""
        return cls(cfg.lock_pin, cfg.unlock_pin, cfg.feedback_pin,
                   motor_active_high=cfg.motor_active_high,
                   feedback_pull_up=cfg.feedback_pull_up,
                   locked_when_active=cfg.locked_when_active, pulse_s=cfg.pulse_s,
                   timeout_s=cfg.timeout_s, pin_factory=pin_factory)

    async def is_locked(self) -> bool:
        """The feedback switch."""
        return bool(self.feedback.is_active) == self.locked_when_active

    async def set_locked(self, locked: bool) -> None:
        """Drive the motor one way for pulse_s; DeviceUnavailable unless the feedback
        confirms within timeout_s. The motor is never left running."""
        loop = asyncio.get_running_loop()
        motor, other = ((self.lock_motor, self.unlock_motor) if locked
                        else (self.unlock_motor, self.lock_motor))
        start = loop.time()
        other.off()  # never both directions at once (an H-bridge short)
        motor.on()
        try:
            await asyncio.sleep(self.pulse_s)
            motor.off()
            while await self.is_locked() != locked:
                if loop.time() - start >= self.timeout_s:
                    word = "locked" if locked else "unlocked"
                    raise DeviceUnavailable(f"lock: not {word} after {self.timeout_s:g}s",
                                            ChargePointErrorCode.CONNECTOR_LOCK_FAILURE)
                await asyncio.sleep(POLL_S)
        finally:
            motor.off()

    def close(self) -> None:
        """Release the pins (the motor stops)."""
        for device in (self.lock_motor, self.unlock_motor, self.feedback):
            device.close()
