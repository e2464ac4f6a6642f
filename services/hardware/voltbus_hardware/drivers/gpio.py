"""GPIO relay, LEDs (single and RGB) and buzzer with gpiozero; the pin factory is injected.

gpiozero keeps a class-level default factory; we never touch it and pass ours to every device,
so tests run the real device classes on `MockFactory()` pins.
"""

from __future__ import annotations

from typing import Any, Self

from gpiozero import PWMLED, RGBLED, OutputDevice
from gpiozero import Buzzer as GpioZeroBuzzer

from voltbus_common.enums import LedPattern
from voltbus_hardware.config import (
    GpioBuzzerConfig,
    GpioLedConfig,
    GpioRelayConfig,
    GpioRgbLedConfig,
)
from voltbus_hardware.drivers.base import Rgb

BLINK_S = 0.5


class GpioRelay:
    """A relay module on one output pin."""

    def __init__(self, pin: int, *, active_high: bool = True, pin_factory: Any = None) -> None:
        self.device = OutputDevice(pin, active_high=active_high, initial_value=False,
                                   pin_factory=pin_factory)

    @classmethod
    def from_config(cls, cfg: GpioRelayConfig, *, pin_factory: Any = None) -> Self:
        """From a `relay: {type: gpio, pin: ...}` entry."""
        return cls(cfg.pin, active_high=cfg.active_high, pin_factory=pin_factory)

    async def set_closed(self, closed: bool) -> bool:
        """Drive the pin; returns what the pin reads back."""
        self.device.value = closed
        return bool(self.device.value)

    def close(self) -> None:
        """Release the pin (the relay drops out)."""
        self.device.close()


class GpioLed:
    """A single-colour LED (PWM, so `pulse` works); colour is ignored, black means off."""

    def __init__(self, pin: int, *, pin_factory: Any = None) -> None:
        self.device = PWMLED(pin, pin_factory=pin_factory)

    @classmethod
    def from_config(cls, cfg: GpioLedConfig, *, pin_factory: Any = None) -> Self:
        """From a `led: {type: gpio, pin: ...}` entry."""
        return cls(cfg.pin, pin_factory=pin_factory)

    async def show(self, color: Rgb, pattern: LedPattern) -> None:
        """Off, on, blink (1 Hz) or pulse."""
        if pattern is LedPattern.OFF or color.is_dark:
            self.device.off()
        elif pattern is LedPattern.SOLID:
            self.device.on()
        elif pattern is LedPattern.BLINK:
            self.device.blink(on_time=BLINK_S, off_time=BLINK_S)
        else:
            self.device.pulse(fade_in_time=1, fade_out_time=1)

    def close(self) -> None:
        """Release the pin."""
        self.device.close()


class GpioRgbLed:
    """An RGB LED on three PWM pins."""

    def __init__(self, red: int, green: int, blue: int, *, common_anode: bool = False,
                 pin_factory: Any = None) -> None:
        self.device = RGBLED(red, green, blue, active_high=not common_anode,
                             pin_factory=pin_factory)

    @classmethod
    def from_config(cls, cfg: GpioRgbLedConfig, *, pin_factory: Any = None) -> Self:
        """From a `led: {type: gpio_rgb, red: .., green: .., blue: ..}` entry."""
        return cls(cfg.red, cfg.green, cfg.blue, common_anode=cfg.common_anode,
                   pin_factory=pin_factory)

    async def show(self, color: Rgb, pattern: LedPattern) -> None:
        """The colour, solid, blinking (1 Hz) or pulsing."""
        rgb = (color.red / 255, color.green / 255, color.blue / 255)
        if pattern is LedPattern.OFF or color.is_dark:
            self.device.off()
        elif pattern is LedPattern.SOLID:
            self.device.color = rgb
        elif pattern is LedPattern.BLINK:
            self.device.blink(on_time=BLINK_S, off_time=BLINK_S, on_color=rgb)
        else:
            self.device.pulse(fade_in_time=1, fade_out_time=1, on_color=rgb)

    def close(self) -> None:
        """Release the pins."""
        self.device.close()


class GpioBuzzer:
    """An active buzzer on one pin; beeps run in gpiozero's background thread."""

    def __init__(self, pin: int, *, pin_factory: Any = None) -> None:
        self.device = GpioZeroBuzzer(pin, pin_factory=pin_factory)

    @classmethod
    def from_config(cls, cfg: GpioBuzzerConfig, *, pin_factory: Any = None) -> Self:
        """From a `buzzer: {type: gpio, pin: ...}` entry."""
        return cls(cfg.pin, pin_factory=pin_factory)

    async def beep(self, *, on_s: float = 0.1, times: int = 1) -> None:
        """Beep without blocking the event loop."""
        self.device.beep(on_time=on_s, off_time=on_s, n=times, background=True)

    def close(self) -> None:
        """Release the pin."""
        self.device.close()
