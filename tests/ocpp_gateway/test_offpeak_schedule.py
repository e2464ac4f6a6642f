"""Off-peak windows as tables (pure, no I/O): midnight crossing, weekday boundaries, holidays,
DST in Europe/Amsterdam, parsing and its error messages, the settings' errors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from voltbus_ocpp.model.offpeak import (
    OffPeakChanged,
    OffPeakError,
    OffPeakSchedule,
    parse_windows,
)
from voltbus_ocpp.offpeak_timer import OffPeakSettings, OffPeakTimer


def z(text: str) -> datetime:
    """An instant written in UTC: '2026-01-05 23:30'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# 2026-01-05 is a Monday. Amsterdam: CET (UTC+1) in winter, CEST (UTC+2) from 2026-03-29 01:00Z
# (02:00 -> 03:00 local) until 2026-10-25 01:00Z (03:00 -> 02:00 local).
@pytest.mark.parametrize(("windows", "holidays", "zone", "now", "is_open", "change"), [
    # crossing midnight: Monday 23:00 to Tuesday 07:00, only on Mondays
    ("mon 23:00-07:00", "", "UTC", "2026-01-05 22:59", False, "2026-01-05 23:00"),
    ("mon 23:00-07:00", "", "UTC", "2026-01-05 23:00", True, "2026-01-06 07:00"),
    ("mon 23:00-07:00", "", "UTC", "2026-01-06 06:59", True, "2026-01-06 07:00"),
    ("mon 23:00-07:00", "", "UTC", "2026-01-06 07:00", False, "2026-01-12 23:00"),
    ("mon 23:00-07:00", "", "UTC", "2026-01-06 23:30", False, "2026-01-12 23:00"),
    # Sunday night into Monday morning (the day before now's date is looked at too)
    ("sun 22:00-06:00", "", "UTC", "2026-01-05 05:00", True, "2026-01-05 06:00"),
    # weekday ranges and their edges
    ("mon-fri 08:00-09:00", "", "UTC", "2026-01-09 08:30", True, "2026-01-09 09:00"),
    ("mon-fri 08:00-09:00", "", "UTC", "2026-01-10 08:30", False, "2026-01-12 08:00"),
    ("fri-mon 08:00-09:00", "", "UTC", "2026-01-10 08:30", True, "2026-01-10 09:00"),
    ("mon-fri 08:00-09:00", "", "UTC", "2026-01-05 00:00", False, "2026-01-05 08:00"),
    # several windows a day; a whole day; 24:00 as an end
    ("tue 01:00-02:00,03:00-04:00", "", "UTC", "2026-01-06 02:30", False, "2026-01-06 03:00"),
    ("wed 00:00-24:00", "", "UTC", "2026-01-07 23:59", True, "2026-01-08 00:00"),
    # the weekend plus nights merge into one window: Friday 23:00 .. Monday 07:00
    ("daily 23:00-07:00; sat,sun 00:00-24:00", "", "UTC", "2026-01-09 22:00", False,
     "2026-01-09 23:00"),
    ("daily 23:00-07:00; sat,sun 00:00-24:00", "", "UTC", "2026-01-09 23:00", True,
     "2026-01-12 07:00"),
    ("daily 23:00-07:00; sat,sun 00:00-24:00", "", "UTC", "2026-01-11 12:00", True,
     "2026-01-12 07:00"),
    # always open: no change ever
    ("daily 00:00-24:00", "", "UTC", "2026-01-07 12:00", True, None),
    # holidays: the whole day, merged with the nights around it
    ("mon-fri 23:00-07:00", "2026-01-07", "UTC", "2026-01-07 12:00", True, "2026-01-08 07:00"),
    ("mon-fri 23:00-07:00", "2026-01-07", "UTC", "2026-01-06 23:30", True, "2026-01-08 07:00"),
    ("mon-fri 23:00-07:00", "2026-01-07", "UTC", "2026-01-06 12:00", False, "2026-01-06 23:00"),
    # a holiday far ahead is still found
    ("mon 10:00-11:00", "2026-06-02", "UTC", "2026-05-26 12:00", False, "2026-06-01 10:00"),
    ("mon 10:00-11:00", "2026-06-02", "UTC", "2026-06-01 12:00", False, "2026-06-02 00:00"),
    # holidays are local dates: 2026-01-07 in Amsterdam is 2026-01-06 23:00Z .. 2026-01-07 23:00Z
    ("mon 10:00-11:00", "2026-01-07", "Europe/Amsterdam", "2026-01-06 23:00", True,
     "2026-01-07 23:00"),
    ("mon 10:00-11:00", "2026-01-07", "Europe/Amsterdam", "2026-01-06 22:59", False,
     "2026-01-06 23:00"),
    # local time in winter: 23:00 CET is 22:00Z
    ("daily 23:00-07:00", "", "Europe/Amsterdam", "2026-01-05 21:59", False, "2026-01-05 22:00"),
    # spring forward: the night of 28/29 March is an hour shorter (22:00Z .. 05:00Z)
    ("daily 23:00-07:00", "", "Europe/Amsterdam", "2026-03-28 22:00", True, "2026-03-29 05:00"),
    ("daily 23:00-07:00", "", "Europe/Amsterdam", "2026-03-29 05:00", False, "2026-03-29 21:00"),
    # ... a start the clock skips (02:30) opens when the clock jumps to 03:00 (01:00Z)
    ("sun 02:30-05:00", "", "Europe/Amsterdam", "2026-03-29 00:59", False, "2026-03-29 01:00"),
    ("sun 02:30-05:00", "", "Europe/Amsterdam", "2026-03-29 01:00", True, "2026-03-29 03:00"),
    # fall back: the night of 24/25 October is an hour longer (21:00Z .. 06:00Z)
    ("daily 23:00-07:00", "", "Europe/Amsterdam", "2026-10-24 21:00", True, "2026-10-25 06:00"),
    # ... a start the clock shows twice (02:30) opens the first time and does not flicker when
    # the clock goes back from 03:00 to 02:00
    ("sun 02:30-05:00", "", "Europe/Amsterdam", "2026-10-25 00:29", False, "2026-10-25 00:30"),
    ("sun 02:30-05:00", "", "Europe/Amsterdam", "2026-10-25 01:15", True, "2026-10-25 04:00"),
    # ... and an end the clock shows twice (02:30) ends the first time
    ("sun 01:00-02:30", "", "Europe/Amsterdam", "2026-10-25 00:45", False, "2026-11-01 00:00"),
])
def test_window_table(windows: str, holidays: str, zone: str, now: str, is_open: bool,
                      change: str | None) -> None:
    schedule = OffPeakSchedule.parse(windows, holidays, zone)
    assert schedule.is_open(z(now)) is is_open
    assert schedule.next_change(z(now)) == (z(change) if change else None)


def test_far_holidays_are_found_only_when_nothing_changes_before_them() -> None:
    only_holidays = OffPeakSchedule({}, frozenset({date(2026, 12, 25)}))
    assert only_holidays.next_change(z("2026-01-05 12:00")) == z("2026-12-25 00:00")
    assert only_holidays.next_change(z("2026-12-25 12:00")) == z("2026-12-26 00:00")
    assert only_holidays.next_change(z("2026-12-26 12:00")) is None  # never again
    weekly = OffPeakSchedule.parse("mon 10:00-11:00", "2026-12-25")
    assert weekly.next_change(z("2026-01-05 12:00")) == z("2026-01-12 10:00")
    always = OffPeakSchedule.parse("daily 00:00-24:00", "2026-12-25")
    assert always.next_change(z("2026-01-05 12:00")) is None


def test_next_open_is_now_when_open_and_the_change_when_closed() -> None:
    schedule = OffPeakSchedule.parse("mon 23:00-07:00")
    assert schedule.next_open(z("2026-01-05 23:30")) == z("2026-01-05 23:30")
    assert schedule.next_open(z("2026-01-05 12:00")) == z("2026-01-05 23:00")


def test_json_form_means_the_same_as_text() -> None:
    text = parse_windows("mon-fri 23:00-07:00; sat,sun 00:00-24:00")
    assert parse_windows('{"mon-fri": ["23:00-07:00"], "sat,sun": "00:00-24:00"}') == text
    assert text[0] == ((23 * 60, 7 * 60),)
    assert text[6] == ((0, 24 * 60),)


def test_holidays_json_list() -> None:
    schedule = OffPeakSchedule.parse("mon 01:00-02:00", '["2026-12-25", "2026-12-26"]')
    assert schedule.holidays == frozenset({date(2026, 12, 25), date(2026, 12, 26)})


@pytest.mark.parametrize(("text", "message"), [
    ("mon 23:00", "'23:00' is not a window HH:MM-HH:MM"),
    ("mon", "expected weekdays then windows"),
    ("xyz 10:00-11:00", "'xyz' is not a weekday"),
    ("mon 25:00-26:00", "'25:00' is not a time of day"),
    ("mon 10:61-11:00", "'10:61' is not a time of day"),
    ("mon 24:00-05:00", "'24:00' is not a time of day"),
    ("mon 10:00-10:00", "empty window"),
    ("mon 1000-1100", "is not a time HH:MM"),
    ('{"mon": 5}', "expected a list of windows"),
    ("{nope", "not valid JSON"),
])
def test_bad_windows_say_why(text: str, message: str) -> None:
    with pytest.raises(OffPeakError, match=message):
        parse_windows(text)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("offpeak_windows", "mon-fry 23:00-07:00", "'fry' is not a weekday"),
    ("offpeak_windows", " ; ", "no window given"),
    ("offpeak_holidays", "2026-02-30", "'2026-02-30' is not a date YYYY-MM-DD"),
    ("offpeak_timezone", "Europe/Atlantis", "not a known IANA time zone"),
    ("offpeak_timezone", "../../etc/passwd", "not a known IANA time zone"),
])
def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch, field: str,
                                           value: str, message: str) -> None:
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Env(BaseSettings, OffPeakSettings):
        model_config = SettingsConfigDict(env_prefix="VOLTBUS_")

    monkeypatch.setenv(f"VOLTBUS_{field.upper()}", value)
    with pytest.raises(ValidationError) as caught:
        Env()
    [err] = caught.value.errors()
    assert err["loc"] == (field,)  # load_settings prints it as VOLTBUS_<FIELD>
    assert message in err["msg"]


def test_settings_defaults_and_schedule() -> None:
    s = OffPeakSettings(offpeak_enabled=True, offpeak_timezone="Europe/Amsterdam",
                        offpeak_holidays="2026-12-25")
    schedule = s.offpeak_schedule()
    assert schedule.zone.key == "Europe/Amsterdam"
    # default: nights plus whole weekends, so Friday 23:00 .. Monday 07:00 is one window
    assert schedule.next_change(z("2026-01-09 22:30")) == z("2026-01-12 06:00")
    assert "holidays 2026-12-25" in schedule.describe()


def test_timer_tells_the_model_only_at_boundaries_and_after_a_clock_step_back() -> None:
    now = [z("2026-01-05 22:00")]
    timer = OffPeakTimer(OffPeakSchedule.parse("daily 23:00-07:00"), enabled=True,
                         clock=lambda: now[0])
    sent: list[OffPeakChanged] = []
    assert timer.current() == OffPeakChanged(True, False, z("2026-01-05 23:00"))
    timer.poll(sent.append)
    assert sent == []  # no boundary passed: nothing recomputed, nothing sent
    for minute in range(0, 60, 5):
        now[0] = z(f"2026-01-05 22:{minute:02d}")
        timer.poll(sent.append)
    assert sent == []
    now[0] = z("2026-01-05 23:00")
    timer.poll(sent.append)
    now[0] = z("2026-01-06 06:59")
    timer.poll(sent.append)
    assert sent == [OffPeakChanged(True, True, None)]
    now[0] = z("2026-01-05 12:00")  # the clock was stepped back (NTP): look again at once
    timer.poll(sent.append)
    assert sent[-1] == OffPeakChanged(True, False, z("2026-01-05 23:00"))


def test_disabled_timer_never_dispatches() -> None:
    timer = OffPeakTimer(OffPeakSchedule.parse("daily 23:00-07:00"), enabled=False,
                         clock=lambda: z("2026-01-05 23:30"))
    sent: list[OffPeakChanged] = []
    timer.poll(sent.append)
    assert sent == []
    assert timer.current() == OffPeakChanged(False, True, None)
