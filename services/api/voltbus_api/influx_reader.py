"""Read the recorder's `session` measurement with InfluxQL (1.x, or 2.x/3.x's 1.x query API)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from voltbus_api.history import SessionFilter, SessionRecord
from voltbus_api.settings import ApiSettings

log = logging.getLogger(__name__)


class InfluxUnavailable(Exception):
    """InfluxDB could not be asked; the message says why."""


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class InfluxSessions:
    """Sessions from InfluxDB as the recorder wrote them (see docs/influxdb.md)."""

    def __init__(self, settings: ApiSettings, *, timeout_s: float = 5.0) -> None:
        assert settings.influx_url is not None
        self._url = settings.influx_url.rstrip("/") + "/query"
        self._params: dict[str, str] = {"epoch": "ns"}
        self._headers: dict[str, str] = {}
        if settings.influx_api == 1:
            self._params["db"] = settings.influx_database
            if settings.influx_username:
                self._params["u"] = settings.influx_username
                self._params["p"] = settings.influx_password_secret() or ""
        else:
            self._params["db"] = settings.influx_bucket or settings.influx_database
            token = settings.influx_token_secret()
            if token:
                self._headers["Authorization"] = f"Token {token}"
        self._timeout_s = timeout_s

    def influxql(self, f: SessionFilter) -> str:
        """The query; time is the stop time, so widen the start side by the longest session."""
        where = []
        if f.station is not None:
            where.append(f'"station" = {_literal(f.station)}')
        if f.connector is not None:
            where.append(f'"connector" = {_literal(str(f.connector))}')
        if f.id_tag is not None:
            where.append(f'"id_tag" = {_literal(f.id_tag)}')
        if f.start is not None:
            where.append(f"time >= {_literal(_ts(f.start))}")
        if f.end is not None:
            where.append(f"time < {_literal(_ts(f.end + timedelta(days=7)))}")
        query = 'SELECT * FROM "session"'
        return query + (" WHERE " + " AND ".join(where) if where else "")

    async def select(self, influxql: str) -> list[dict[str, Any]]:
        """The rows of one InfluxQL query (time in ns); InfluxUnavailable when it cannot answer."""
        import httpx  # on first use: httpx also loads its CLI (rich, pygments, click) when present

        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                r = await client.get(self._url, params={**self._params, "q": influxql},
                                     headers=self._headers)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"{self._url}: {exc!r}") from None
        if r.status_code != 200:
            raise InfluxUnavailable(f"{self._url}: HTTP {r.status_code} {r.text[:200]}")
        return _rows(r.json())

    async def tariff_costs(self, f: SessionFilter) -> dict[tuple[str, int, datetime], float]:
        """The energy manager's costs at the live tariff (`session_cost`), by session key."""
        # no id_tag there: the sessions asked for are matched by key
        query = self.influxql(f.model_copy(update={"id_tag": None})).replace(
            'FROM "session"', 'FROM "session_cost"')
        out = {}
        for row in await self.select(query):
            try:
                out[(row["station"], int(row["connector"]), _from_ns(row["started_at_ns"]))] = \
                    float(row["cost"])
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping a session_cost point InfluxDB returned: %s (%s)", exc, row)
        return out

    async def query(self, f: SessionFilter) -> list[SessionRecord]:
        """Matching sessions; raises InfluxUnavailable when InfluxDB cannot answer."""
        records = []
        for row in await self.select(self.influxql(f)):
            try:
                records.append(_record(row))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping a session point InfluxDB returned: %s (%s)", exc, row)
        return [rec for rec in records if f.matches(rec)]


def _rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for result in body.get("results", []):
        if "error" in result:
            raise InfluxUnavailable(f"InfluxDB: {result['error']}")
        for series in result.get("series", []):
            columns = series["columns"]
            rows.extend(dict(zip(columns, values, strict=True)) for values in series["values"])
    return rows


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _from_ns(value: Any) -> datetime:
    """Exact to the microsecond (a float would round and break de-duplication)."""
    return _EPOCH + timedelta(microseconds=int(value) // 1000)


def _record(row: dict[str, Any]) -> SessionRecord:
    stopped = _from_ns(row["time"])
    started = (_from_ns(row["started_at_ns"]) if row.get("started_at_ns") is not None
               else datetime.fromisoformat(row["started_at"]))
    tid = row.get("transaction_id")
    return SessionRecord(
        station=row["station"], connector=int(row["connector"]),
        transaction_id=int(tid) if tid is not None else None,
        transaction_ref=str(row["transaction_ref"]) if row.get("transaction_ref") is not None
        else None, id_tag=row.get("id_tag") or None,  # no tag: never authorised
        started_at=started, stopped_at=stopped, meter_start_wh=float(row["meter_start_wh"]),
        meter_stop_wh=float(row["meter_stop_wh"]), energy_wh=float(row["energy_wh"]),
        stop_reason=row["stop_reason"])
