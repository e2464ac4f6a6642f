"""Off-peak charging in the running station: its settings, and the timer that tells the model
when the window opens or closes (polled on every tick, like the smart-charging boundaries)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, field_validator

from voltbus_ocpp.model.offpeak import (
    OffPeakChanged,
    OffPeakError,
    OffPeakSchedule,
    parse_holidays,
    parse_windows,
    parse_zone,
)
from voltbus_ocpp.model.station import StationModel

log = logging.getLogger(__name__)

DEFAULT_WINDOWS = "daily 23:00-07:00; sat,sun 00:00-24:00"


class OffPeakSettings(BaseModel):
    """VOLTBUS_OFFPEAK_ENABLED, _WINDOWS, _HOLIDAYS, _TIMEZONE (mixed into GatewaySettings)."""

    offpeak_enabled: bool = False
    offpeak_windows: str = DEFAULT_WINDOWS
    """`mon-fri 23:00-07:00; sat,sun 00:00-24:00` or JSON {"mon-fri": ["23:00-07:00"]}."""
    offpeak_holidays: str = ""
    """Whole off-peak days: `2026-12-25,2026-12-26`."""
    offpeak_timezone: str = "UTC"
    """IANA zone the windows are in, e.g. Europe/Amsterdam (DST handled)."""

    @field_validator("offpeak_windows")
    @classmethod
    def _windows(cls, value: str) -> str:
        try:
            if not parse_windows(value):
                raise OffPeakError("no window given (like 'mon-fri 23:00-07:00')")
        except OffPeakError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("offpeak_holidays")
    @classmethod
    def _holidays(cls, value: str) -> str:
        try:
            parse_holidays(value)
        except OffPeakError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("offpeak_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            parse_zone(value)
        except OffPeakError as exc:
            raise ValueError(str(exc)) from None
        return value

    def offpeak_schedule(self) -> OffPeakSchedule:
        """The configured schedule (validated when the settings were read)."""
        return OffPeakSchedule.parse(self.offpeak_windows, self.offpeak_holidays,
                                     self.offpeak_timezone)


class OffPeakTimer:
    """Dispatches OffPeakChanged when the window opens or closes; cheap between boundaries."""

    RECHECK = timedelta(hours=1)
    """Without a boundary in sight, look again this often (holidays far ahead, clock steps)."""

    def __init__(self, schedule: OffPeakSchedule, *, enabled: bool,
                 clock: Callable[[], datetime]) -> None:
        self.schedule = schedule
        self.enabled = enabled
        self.clock = clock
        self._checked: datetime | None = None
        self._due: datetime | None = None
        self._sent: OffPeakChanged | None = None

    @property
    def due(self) -> datetime | None:
        """When poll has something to look at next (None: disabled)."""
        return self._due if self.enabled else None

    def current(self) -> OffPeakChanged:
        """The policy state now; remembers when to look again."""
        now = self.clock()
        self._checked = now
        if not self.enabled:
            self._due = None
            return OffPeakChanged(False, True, None)
        change = self.schedule.next_change(now)
        self._due = change if change is not None else now + self.RECHECK
        is_open = self.schedule.is_open(now)
        return OffPeakChanged(True, is_open, None if is_open else change)

    def prime(self, model: StationModel) -> None:
        """Put the state in force into the model before start-up publishes anything."""
        self._sent = self.current()
        model.offpeak.apply(self._sent, model.connectors.values())
        if self.enabled:
            log.info("off-peak charging on: %s; window %s", self.schedule.describe(),
                     "open" if self._sent.open else f"closed until {self._sent.next_open}")

    def poll(self, dispatch: Callable[[OffPeakChanged], object]) -> None:
        """On every tick: at a boundary (or after a clock step back) tell the model."""
        if not self.enabled:
            return
        now = self.clock()
        if (self._due is not None and self._checked is not None
                and self._checked <= now < self._due):
            return
        event = self.current()
        if event != self._sent:
            log.info("off-peak window %s", "open" if event.open else
                     f"closed until {event.next_open}")
            self._sent = event
            dispatch(event)
