"""Finished sessions: a local sqlite copy of every SESSION event, filtering and energy totals.

The local copy makes history work without InfluxDB and covers sessions InfluxDB has not got yet;
influx_reader.py adds what the recorder stored before this API ran.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, computed_field

from voltbus_api.state_cache import Change
from voltbus_common.models import SessionSummary, UtcDatetime
from voltbus_common.private_files import private_sqlite

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    station TEXT NOT NULL, connector INTEGER NOT NULL, transaction_id INTEGER,
    id_tag TEXT NOT NULL, started_at TEXT NOT NULL, stopped_at TEXT NOT NULL,
    meter_start_wh REAL NOT NULL, meter_stop_wh REAL NOT NULL, energy_wh REAL NOT NULL,
    stop_reason TEXT NOT NULL, transaction_ref TEXT,
    PRIMARY KEY (station, connector, started_at));
"""
_COLUMNS = ("station", "connector", "transaction_id", "id_tag", "started_at", "stopped_at",
            "meter_start_wh", "meter_stop_wh", "energy_wh", "stop_reason", "transaction_ref")


class SessionRecord(BaseModel):
    """A finished charging session."""

    station: str
    connector: int
    transaction_id: int | None = None
    transaction_ref: str | None = Field(
        default=None, description="the OCPP transaction id as text (1.6's integer, 2.0.1's "
        "UUID); null for sessions recorded before it was kept")
    id_tag: str | None = Field(
        default=None, description="the card that authorised it; null for an OCPP 2.0.1 "
        "session started at plug-in that was never authorised")
    started_at: UtcDatetime
    stopped_at: UtcDatetime
    meter_start_wh: float
    meter_stop_wh: float
    energy_wh: float = Field(description="Wh charged in the session")
    stop_reason: str
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "station": "CP1", "connector": 1, "transaction_id": 42, "transaction_ref": "42",
        "id_tag": "04A1B2C3",
        "started_at": "2026-01-05T08:00:00Z", "stopped_at": "2026-01-05T09:00:00Z",
        "meter_start_wh": 12000.0, "meter_stop_wh": 19000.0, "energy_wh": 7000.0,
        "stop_reason": "Local", "duration_s": 3600.0}]})

    @property
    def key(self) -> tuple[str, int, datetime]:
        """Identity across sources: a connector starts one session at a time."""
        return self.station, self.connector, self.started_at

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_s(self) -> float:
        """Seconds from start to stop."""
        return max(0.0, (self.stopped_at - self.started_at).total_seconds())


class SessionFilter(BaseModel):
    """Which sessions: by station, connector, id tag and start time [start, end)."""

    station: str | None = None
    connector: int | None = None
    id_tag: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def matches(self, r: SessionRecord) -> bool:
        """Whether a record passes the filter."""
        return ((self.station is None or r.station == self.station)
                and (self.connector is None or r.connector == self.connector)
                and (self.id_tag is None or r.id_tag == self.id_tag)
                and (self.start is None or r.started_at >= self.start)
                and (self.end is None or r.started_at < self.end))


class Period(StrEnum):
    """Granularity of energy totals."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class EnergyBucket(BaseModel):
    """Energy of the sessions that started in one period (local time)."""

    period: str = Field(examples=["2026-01"])
    start: date
    energy_wh: float
    sessions: int


def period_start(moment: datetime, period: Period, zone: tzinfo) -> date:
    """The first day of the period containing moment, in the given zone (weeks start Monday)."""
    day = moment.astimezone(zone).date()
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return day


def energy_totals(records: Iterable[SessionRecord], period: Period,
                  zone: tzinfo) -> list[EnergyBucket]:
    """Sum energy per period, oldest first."""
    buckets: dict[date, EnergyBucket] = {}
    for r in records:
        start = period_start(r.started_at, period, zone)
        label = {Period.DAY: start.isoformat(), Period.MONTH: start.strftime("%Y-%m"),
                 Period.WEEK: f"{start.isocalendar().year}-W{start.isocalendar().week:02d}"}[period]
        b = buckets.setdefault(start, EnergyBucket(period=label, start=start, energy_wh=0,
                                                   sessions=0))
        b.energy_wh += r.energy_wh
        b.sessions += 1
    return [buckets[k] for k in sorted(buckets)]


class LocalHistory:
    """sqlite file of sessions seen on the bus while the API ran."""

    def __init__(self, path: Path) -> None:
        # Id tags and times of day are personal data: 0600 like the auth store.
        self._db = sqlite3.connect(private_sqlite(path), isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        if "transaction_ref" not in columns:  # a history file from before the column
            self._db.execute("ALTER TABLE sessions ADD COLUMN transaction_ref TEXT")

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def add(self, station: str, connector: int, s: SessionSummary) -> None:
        """Store a finished session (a repeat of the same session replaces it)."""
        self._db.execute(
            f"INSERT OR REPLACE INTO sessions ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_COLUMNS))})",
            (station, connector, s.transaction_id, s.id_tag or "", s.started_at.isoformat(),
             s.stopped_at.isoformat(), s.meter_start_wh, s.meter_stop_wh, s.energy_wh,
             s.stop_reason.value, s.transaction_ref))

    async def on_change(self, change: Change) -> None:
        """State-cache listener: keep every session event."""
        if change.kind != "session" or change.data is None or change.connector is None:
            return
        self.add(change.station, change.connector, SessionSummary.model_validate(change.data))

    def query(self, f: SessionFilter) -> list[SessionRecord]:
        """Sessions matching the filter (filtering in SQL where it is cheap)."""
        where, args = [], []
        for column, value in (("station", f.station), ("connector", f.connector),
                              ("id_tag", f.id_tag)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        records = [SessionRecord(**{**dict(zip(_COLUMNS, row, strict=True)),
                                    "id_tag": row[3] or None})  # "": never authorised
                   for row in self._db.execute(sql, args)]
        return [r for r in records if f.matches(r)]
