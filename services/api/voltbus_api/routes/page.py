"""What the web page shows beyond the REST resources: a connector's power curve and costs.

The power curve comes from the recorder's `meter` measurement in InfluxDB (averaged into at most
`points` buckets); without InfluxDB, or while it cannot answer, from the readings this API saw on
the bus itself (10 s means of the last 8 hours per connector, in memory). Costs use the report's
arithmetic (kWh to 3 decimals, times the price, half up to the cent, or the energy manager's cost
at the tariff in force where one was recorded), so page and report agree.
"""

from __future__ import annotations

import bisect
import logging
import math
from array import array
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from voltbus_api import reports
from voltbus_api.context import ApiContext
from voltbus_api.deps import ConnectorDep, ContextDep, SessionsDep, StateDep, StationDep
from voltbus_api.errors import ApiError
from voltbus_api.history import SessionFilter, SessionRecord
from voltbus_api.influx_reader import InfluxUnavailable
from voltbus_api.query import month_range
from voltbus_api.schemas import BucketSeries, error_responses
from voltbus_api.sessions import tariff_costs
from voltbus_api.state_cache import Change

log = logging.getLogger(__name__)
router = APIRouter(tags=["page"])


class _Means:
    """One connector's readings as (bucket start, sum of W, count), oldest first."""

    def __init__(self) -> None:
        self.start, self.total, self.count = array("d"), array("d"), array("d")
        self.last_ts = -math.inf


class PowerBuffer:
    """The meter readings seen on the bus, per connector: the curve when InfluxDB cannot help.

    Kept as 10 s sums for the last 8 h: 2880 buckets of 24 bytes (70 kB) per connector, however
    often the meter reports, so a site with many connectors does not grow the API's memory.
    """

    def __init__(self, *, bucket_s: int = 10, keep_s: int = 8 * 3600) -> None:
        self.bucket_s = bucket_s
        self._keep = keep_s // bucket_s
        self._means: dict[tuple[str, int], _Means] = {}

    async def on_change(self, change: Change) -> None:
        """State-cache listener: add each meter reading (not a replay of one we have)."""
        if change.kind != "meter" or change.connector is None or not change.data:
            return
        ts = datetime.fromisoformat(change.data["ts"]).timestamp()
        m = self._means.setdefault((change.station, change.connector), _Means())
        if ts <= m.last_ts:
            return
        m.last_ts = ts
        slot = ts // self.bucket_s * self.bucket_s
        if m.start and m.start[-1] == slot:
            m.total[-1] += float(change.data["power_w"])
            m.count[-1] += 1
            return
        m.start.append(slot)
        m.total.append(float(change.data["power_w"]))
        m.count.append(1)
        if len(m.start) > self._keep + 256:  # trim in chunks: deleting from an array's head
            for column in (m.start, m.total, m.count):  # moves the rest
                del column[:256]

    def series(self, station: str, connector: int, start: float,
               interval_s: int) -> tuple[list[float], list[float]]:
        """Means per interval_s (a multiple of bucket_s, aligned to it) from start on."""
        m = self._means.get((station, connector))
        if m is None:
            return [], []
        sums: dict[float, list[float]] = {}
        first = bisect.bisect_left(m.start, start // self.bucket_s * self.bucket_s)
        for i in range(first, len(m.start)):
            slot = sums.setdefault(m.start[i] // interval_s * interval_s, [0.0, 0.0])
            slot[0] += m.total[i]
            slot[1] += m.count[i]
        keys = sorted(sums)
        return keys, [round(sums[k][0] / sums[k][1], 1) for k in keys]


class PowerSeries(BucketSeries):
    """A connector's power over time: `ts[i]` (unix seconds, bucket start) has `power_w[i]`."""

    station: str
    connector: int
    power_w: list[float]
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "station": "CP1", "connector": 1, "source": "influxdb", "influx_error": None,
        "start": "2026-01-05T08:00:00Z", "interval_s": 10,
        "ts": [1767600000, 1767600010], "power_w": [11040.0, 11020.5]}]})


class MonthCost(BaseModel):
    """Energy and cost of the finished sessions that started in a month (local time)."""

    month: str = Field(examples=["2026-01"])
    timezone: str
    currency: str
    price_per_kwh: float
    sessions: int
    energy_wh: float
    cost: float = Field(description="at the tariff in force where recorded, else at the price "
                        "(as the month's report)")
    tariff_sessions: int = Field(default=0, description="sessions whose cost is at the tariff "
                                 "in force (the rest at price_per_kwh)")
    influx_error: str | None = None


class CostedSession(SessionRecord):
    """A finished session with its cost at the configured price and, when the energy manager
    priced it, at the live tariff."""

    cost: float
    tariff_cost: float | None = Field(
        default=None, description="at the tariff in force while it charged (energy/{c}/cost, "
        "from the bus or InfluxDB's session_cost), to the cent; null: not priced")


class CostedSessionPage(BaseModel):
    """Newest sessions first with their cost, and totals over all of them."""

    currency: str
    price_per_kwh: float
    total: int
    total_energy_wh: float
    items: list[CostedSession]
    influx_error: str | None = None


def _influxql(station: str, connector: int, start: datetime, interval_s: int) -> str:
    def literal(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    since = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # GROUP BY time() buckets align to the epoch; the offset aligns them to `start` instead.
    offset = int(start.timestamp()) % interval_s
    return (f'SELECT mean("power_w") AS "power_w" FROM "meter" WHERE "station" = '
            f'{literal(station)} AND "connector" = {literal(str(connector))} AND time >= '
            f"{literal(since)} GROUP BY time({interval_s}s, {offset}s) fill(none)")


@router.get("/stations/{station}/connectors/{n}/power", response_model=PowerSeries,
            responses=error_responses(401, 404, 422))
async def power(
    request: Request, ctx: ContextDep, cache: StateDep, station: StationDep, n: ConnectorDep,
    start: Annotated[datetime | None, Query(
        alias="from", description="default: the running session's start, else an hour ago")
    ] = None,
    points: Annotated[int, Query(ge=10, le=2000)] = 300,
) -> PowerSeries:
    """The connector's power curve from `from` until now, as at most `points` means."""
    if start is None:
        running = cache.connector(station, n)
        start = (running.transaction.started_at if running and running.transaction
                 else datetime.now(UTC) - timedelta(hours=1))
    if start.tzinfo is None:
        raise ApiError(422, "'from' needs a time zone, e.g. 2026-01-05T08:00:00Z")
    span_s = max(1.0, (datetime.now(UTC) - start).total_seconds())
    interval_s = max(1, math.ceil(span_s / points))
    influx, error = ctx.sessions.influx, None
    if influx is not None:
        try:
            rows = await influx.select(_influxql(station, n, start, interval_s))
            values = [(int(r["time"]) / 1e9, float(r["power_w"])) for r in rows
                      if r.get("power_w") is not None]
            if values:
                return PowerSeries(station=station, connector=n, source="influxdb", start=start,
                                   interval_s=interval_s, ts=[t for t, _ in values],
                                   power_w=[round(w, 1) for _, w in values])
        except InfluxUnavailable as exc:
            error = str(exc)
    buffer: PowerBuffer = request.app.state.power_buffer
    interval_s = math.ceil(interval_s / buffer.bucket_s) * buffer.bucket_s
    ts, watts = buffer.series(station, n, start.timestamp(), interval_s)
    return PowerSeries(station=station, connector=n, source="local", influx_error=error,
                       start=start, interval_s=interval_s, ts=ts, power_w=watts)


def _cost(energy_wh: float, price: Decimal) -> Decimal:
    kwh = (Decimal(str(energy_wh)) / 1000).quantize(Decimal("0.001"), ROUND_HALF_UP)
    return (kwh * price).quantize(Decimal("0.01"), ROUND_HALF_UP)


@router.get("/costs", response_model=MonthCost, responses=error_responses(401, 422))
async def month_cost(
    request: Request, ctx: ContextDep, source: SessionsDep,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                       description="YYYY-MM; default: this month")] = None,
) -> MonthCost:
    """The month's finished sessions, their energy and cost (the same sum as its report)."""
    s = ctx.settings
    if month is None:
        month = datetime.now(s.zone).strftime("%Y-%m")
    first, after = month_range(month, s.zone)  # 422 for year 0 or 9999-12 (was a 500)
    found = await source.sessions(SessionFilter(start=first, end=after))
    report = reports.build(found, title=month, price_per_kwh=s.api_price_per_kwh,
                           currency=s.api_currency, zone=s.zone,
                           tariff=await tariff_costs(source, _finals(request), found))
    return MonthCost(month=month, timezone=s.api_timezone, currency=s.api_currency,
                     price_per_kwh=s.api_price_per_kwh, sessions=len(found),
                     energy_wh=sum(r.energy_wh for r in found), cost=float(report.total_cost),
                     tariff_sessions=report.at_tariff, influx_error=source.influx_error)


@router.get("/costs/sessions", response_model=CostedSessionPage,
            responses=error_responses(401, 422))
async def costed_sessions(request: Request, ctx: ContextDep, source: SessionsDep,
                          limit: Annotated[int, Query(ge=1, le=500)] = 50) -> CostedSessionPage:
    """The newest finished sessions with their cost, for the page's history table."""
    s = ctx.settings
    price = Decimal(str(s.api_price_per_kwh))
    found = await source.sessions(SessionFilter())
    tariff = await tariff_costs(source, _finals(request), found[:limit])
    items = [CostedSession(**r.model_dump(exclude={"duration_s"}),
                           cost=float(_cost(r.energy_wh, price)),
                           tariff_cost=None if r.key not in tariff else float(tariff[r.key]))
             for r in found[:limit]]
    return CostedSessionPage(currency=s.api_currency, price_per_kwh=s.api_price_per_kwh,
                             total=len(found), total_energy_wh=sum(r.energy_wh for r in found),
                             items=items, influx_error=source.influx_error)


def _finals(request: Request) -> dict[tuple[str, int, datetime], Any] | None:
    """The final session costs the API saw on the bus (None without the energy routes)."""
    energy = getattr(request.app.state, "energy", None)
    return None if energy is None else energy.finals


def install(app: FastAPI, ctx: ApiContext, dependencies: list[Any]) -> None:
    """Mount these routes and start keeping the bus's meter readings for the power curve."""
    buffer = PowerBuffer()
    ctx.cache.add_listener(buffer.on_change)
    app.state.power_buffer = buffer
    app.include_router(router, prefix="/api/v1", dependencies=dependencies)
