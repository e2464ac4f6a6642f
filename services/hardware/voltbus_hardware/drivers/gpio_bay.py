"""A parking bay detector on a GPIO input: an inductive loop detector's relay contact or an
ultrasonic sensor's switching output says whether a vehicle stands in front of the connector.

gpiozero debounces the input (bounce_s): a loop flickering as a car rolls over its edge, or a
person walking past an ultrasonic sensor, does not count as a vehicle coming or going. The value
is read when the controller polls, like the pilot; the pin factory is injected (mock pins in
tests).
"""

from __future__ import annotations

from typing import Any, Self

from gpiozero import DigitalInputDevice

from voltbus_hardware.config import GpioBayDetectorConfig


class GpioBayDetector:
    """Occupied while the input is active (or inactive, occupied_when_active False)."""

    def __init__(self, pin: int, *, pull_up: bool = True, occupied_when_active: bool = True,
                 bounce_s: float = 1.0, pin_factory: Any = None) -> None:
        self.input = DigitalInputDevice(pin, pull_up=pull_up, bounce_time=bounce_s or None,
                                        pin_factory=pin_factory)
        self.occupied_when_active = occupied_when_active

    @classmethod
    def from_config(cls, cfg: GpioBayDetectorConfig, *, pin_factory: Any = None) -> Self:
        """From a connector's `bay: {type: gpio, pin: .., ...}`."""
        return cls(cfg.pin, pull_up=cfg.pull_up, occupied_when_active=cfg.occupied_when_active,
                   bounce_s=cfg.bounce_s, pin_factory=pin_factory)

    def occupied(self) -> bool:
        """What the detector says now."""
        return bool(self.input.is_active) == self.occupied_when_active

    def close(self) -> None:
        """Release the pin."""
        self.input.close()
