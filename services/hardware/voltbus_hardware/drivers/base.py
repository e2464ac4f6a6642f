"""One small protocol per device kind; optional capabilities are protocols of their own.

Units are in the names: amps per phase, watts, watt-hours, volts, seconds. Every driver raises
`DeviceUnavailable` when its device does not answer; the controller reports it on the bus, retries
with backoff and never invents a reading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from voltbus_common.enums import ChargePointErrorCode, LedPattern, PilotState
from voltbus_common.models import MeterReading


class DeviceUnavailable(Exception):
    """A device that stopped answering (timeout, CRC error, reader gone)."""

    def __init__(self, message: str,
                 code: ChargePointErrorCode = ChargePointErrorCode.OTHER_ERROR) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class EvseStatus:
    """What an EVSE board reports: the pilot state and its own fault, if any."""

    pilot: PilotState
    error: ChargePointErrorCode = ChargePointErrorCode.NO_ERROR
    info: str | None = None


@dataclass(frozen=True)
class Rgb:
    """An LED colour, 0..255 per channel."""

    red: int
    green: int
    blue: int

    @property
    def is_dark(self) -> bool:
        """True for black (the LED shows nothing)."""
        return self.red == self.green == self.blue == 0


class Evse(Protocol):
    """The EVSE board or pilot circuit of one connector: what the car is doing."""

    async def status(self) -> EvseStatus:
        """The current pilot state (IEC 61851 A..F) and the board's fault."""
        ...


class Meter(Protocol):
    """Energy meter on one connector."""

    async def read(self) -> MeterReading:
        """One reading: Wh register, W total, A and V per phase."""
        ...


class Relay(Protocol):
    """The contactor that switches mains to one connector."""

    async def set_closed(self, closed: bool) -> bool:
        """Switch it; returns the position actually switched."""
        ...


class BayDetector(Protocol):
    """A parking bay occupancy detector (loop or ultrasonic sensor on a digital input)."""

    def occupied(self) -> bool:
        """A vehicle is in the bay now (debounced by the driver)."""
        ...


class CableLock(Protocol):
    """A connector's cable lock (motor or solenoid) with a position feedback switch."""

    async def set_locked(self, locked: bool) -> None:
        """Move it; DeviceUnavailable(ConnectorLockFailure) when the feedback does not confirm
        the new position in time."""
        ...

    async def is_locked(self) -> bool:
        """What the feedback says now."""
        ...


class PhaseSwitch(Protocol):
    """The contactor that connects L2 and L3 to a connector (1p/3p switching)."""

    async def set_phases(self, phases: int) -> int:
        """Switch to 1 or 3 phases; returns the phases the switch confirms (DeviceUnavailable
        with PowerSwitchFailure when its feedback does not confirm in time)."""
        ...

    async def phases(self) -> int:
        """The phases it has now (its feedback where it has one)."""
        ...


class RfidReader(Protocol):
    """A card reader; reports each presentation once, however long the card is held. A reader
    may say what cards it reads with a `card_type` attribute (CardType; ISO14443 without it)."""

    name: str

    async def read_tag(self) -> str | None:
        """A newly presented card's id as upper-case hex, or None."""
        ...


class Led(Protocol):
    """A connector's indicator light."""

    async def show(self, color: Rgb, pattern: LedPattern) -> None:
        """Show a colour (ignored by single-colour LEDs) in a pattern."""
        ...


class Buzzer(Protocol):
    """A station's buzzer, for feedback on a card tap."""

    async def beep(self, *, on_s: float = 0.1, times: int = 1) -> None:
        """Beep `times` times, each `on_s` seconds long."""
        ...


@runtime_checkable
class SupportsCurrentLimit(Protocol):
    """An EVSE that can tell the car how much it may draw (pilot PWM, RAPI $SC)."""

    async def set_current_limit(self, amps: float) -> None:
        """Current per phase the car may draw, A; 0 pauses charging."""
        ...


@runtime_checkable
class SupportsEnable(Protocol):
    """An EVSE board that switches its own relay (OpenEVSE $FE/$FS, SmartEVSE enable pin)."""

    async def set_enabled(self, enabled: bool) -> None:
        """Allow or stop charging."""
        ...


@runtime_checkable
class SupportsWake(Protocol):
    """A driver that learns of changes by itself (simulator, RAPI $AT) and asks for a poll."""

    def set_wake(self, wake: Callable[[], None]) -> None:
        """Register the callback to call (from the event loop thread) after a change."""
        ...


def wakes_on_every_change(driver: object) -> bool:
    """Whether the driver's state changes only with a wake (the simulator): nothing to poll.

    A real board's wake ($AT) only hurries a poll: it says nothing when the board goes silent.
    """
    return getattr(driver, "wakes_on_every_change", False) is True


@runtime_checkable
class SupportsClose(Protocol):
    """A driver holding an OS resource (serial port, GPIO pin, input device)."""

    def close(self) -> None:
        """Release it."""
        ...
