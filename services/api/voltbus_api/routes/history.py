"""Session history (filtered, paged) and energy per day/week/month."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from voltbus_api.deps import SessionsDep, SettingsDep
from voltbus_api.history import EnergyBucket, Period, SessionFilter, SessionRecord, energy_totals
from voltbus_api.query import Connector, From, IdTagFilter, Station, To
from voltbus_api.schemas import error_responses

router = APIRouter(tags=["history"])


class SessionPage(BaseModel):
    """One page of sessions, newest first, with totals over every matching session."""

    total: int = Field(description="matching sessions (all pages)")
    total_energy_wh: float = Field(description="energy of all matching sessions")
    limit: int
    offset: int
    items: list[SessionRecord]
    influx_error: str | None = Field(default=None, description="set when InfluxDB could not be "
                                     "read and only the API's local copy is shown")
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "total": 1, "total_energy_wh": 7000.0, "limit": 50, "offset": 0, "influx_error": None,
        "items": SessionRecord.model_config["json_schema_extra"]["examples"]}]})  # type: ignore[index]


class EnergyReport(BaseModel):
    """Energy of the sessions that started in each period."""

    period: Period
    timezone: str
    total_energy_wh: float
    buckets: list[EnergyBucket]
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "period": "month", "timezone": "Europe/Berlin", "total_energy_wh": 26500.5,
        "buckets": [{"period": "2026-01", "start": "2026-01-01", "energy_wh": 21500.5,
                     "sessions": 3},
                    {"period": "2026-02", "start": "2026-02-01", "energy_wh": 5000.0,
                     "sessions": 1}]}]})


def session_filter(station: Station = None, connector: Connector = None,
                   id_tag: IdTagFilter = None, start: From = None,
                   end: To = None) -> SessionFilter:
    """The common filter query parameters."""
    return SessionFilter(station=station, connector=connector, id_tag=id_tag, start=start,
                         end=end)


@router.get("/sessions", response_model=SessionPage, responses=error_responses(401, 422))
async def sessions(
    source: SessionsDep,
    station: Station = None, connector: Connector = None, id_tag: IdTagFilter = None,
    start: From = None, end: To = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SessionPage:
    """Finished sessions from InfluxDB and the API's own copy, newest first."""
    f = session_filter(station, connector, id_tag, start, end)
    found = await source.sessions(f)
    return SessionPage(total=len(found), total_energy_wh=sum(r.energy_wh for r in found),
                       limit=limit, offset=offset, items=found[offset:offset + limit],
                       influx_error=source.influx_error)


@router.get("/energy", response_model=EnergyReport, responses=error_responses(401, 422))
async def energy(
    source: SessionsDep, settings: SettingsDep,
    period: Period = Period.DAY,
    station: Station = None, connector: Connector = None, id_tag: IdTagFilter = None,
    start: From = None, end: To = None,
) -> EnergyReport:
    """Energy per day, ISO week or month (in VOLTBUS_API_TIMEZONE), by session start."""
    found = await source.sessions(session_filter(station, connector, id_tag, start, end))
    buckets = energy_totals(found, period, settings.zone)
    return EnergyReport(period=period, timezone=settings.api_timezone,
                        total_energy_wh=sum(b.energy_wh for b in buckets), buckets=buckets)
