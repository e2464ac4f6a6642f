"""The site's power over time for the page's 24 h chart: grid, PV, house, cars, battery, price.

From the recorder's `site` measurement in InfluxDB (means per bucket); without InfluxDB, or while
it cannot answer, from the site states this API saw on the bus itself (1 min sums of the last
24 h in memory: 1440 buckets of 13 numbers, about 150 kB, whatever the control period).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from datetime import UTC, datetime

from pydantic import ConfigDict, Field

from voltbus_api.influx_reader import InfluxSessions, InfluxUnavailable
from voltbus_api.schemas import BucketSeries
from voltbus_common.models import SiteState

# (series name in the answer, field in InfluxDB's `site`); house_power_w is computed the same way
# by the recorder (SiteState.house_power_w).
SERIES = ("grid_power_w", "pv_power_w", "house_power_w", "charge_power_w", "battery_power_w",
          "price_per_kwh")


def _values(s: SiteState) -> tuple[float | None, ...]:
    return (s.grid_power_w, s.pv_power_w, s.house_power_w(), s.charge_power_w,
            s.battery_power_w, s.price_per_kwh)


class SiteHistory(BucketSeries):
    """The site over time: `ts[i]` (unix seconds, bucket start) has each series' mean `[i]`;
    null where the bucket has no value for that series (e.g. the grid meter was silent)."""

    site_id: str | None
    grid_power_w: list[float | None] = Field(description="> 0 import")
    pv_power_w: list[float | None]
    house_power_w: list[float | None] = Field(description="grid + PV + battery - cars")
    charge_power_w: list[float | None]
    battery_power_w: list[float | None] = Field(description="> 0 discharging")
    price_per_kwh: list[float | None]
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "site_id": "site", "source": "influxdb", "influx_error": None,
        "start": "2026-01-05T08:00:00Z", "interval_s": 300, "ts": [1767600000, 1767600300],
        "grid_power_w": [3200.0, -800.0], "pv_power_w": [1500.0, 5200.0],
        "house_power_w": [600.0, 300.0], "charge_power_w": [4100.0, 4100.0],
        "battery_power_w": [None, None], "price_per_kwh": [0.31, 0.31]}]})


class SiteBuffer:
    """The site states seen on the bus as per-minute sums and counts, for the last 24 h."""

    def __init__(self, *, bucket_s: int = 60, keep_s: int = 24 * 3600) -> None:
        self.bucket_s = bucket_s
        self._keep = keep_s // bucket_s
        self._buckets: OrderedDict[int, list[float]] = OrderedDict()  # sums, then counts
        self._last_ts = -math.inf

    def add(self, state: SiteState) -> None:
        """Count a state (a retained one seen again after a reconnect is not counted twice)."""
        ts = state.ts.timestamp()
        if ts <= self._last_ts:
            return
        self._last_ts = ts
        slot = int(ts // self.bucket_s * self.bucket_s)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = [0.0] * (2 * len(SERIES))
            while len(self._buckets) > self._keep:
                self._buckets.popitem(last=False)
        for i, value in enumerate(_values(state)):
            if value is not None:
                bucket[i] += value
                bucket[len(SERIES) + i] += 1

    def series(self, start: float, interval_s: int) -> tuple[list[float], list[list[float | None]]]:
        """Means per interval_s (a multiple of bucket_s, aligned to start) from start on."""
        n = len(SERIES)
        merged: dict[float, list[float]] = {}
        base = start // self.bucket_s * self.bucket_s
        for slot, bucket in self._buckets.items():
            if slot < base:
                continue
            key = base + (slot - base) // interval_s * interval_s
            into = merged.setdefault(key, [0.0] * (2 * n))
            for i in range(2 * n):
                into[i] += bucket[i]
        keys = sorted(merged)
        columns: list[list[float | None]] = [
            [round(merged[k][i] / merged[k][n + i], 4) if merged[k][n + i] else None
             for k in keys] for i in range(n)]
        return keys, columns


def influxql(site_id: str, start: datetime, interval_s: int) -> str:
    """Means of the site's series per bucket, the buckets aligned to start."""
    since = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    offset = int(start.timestamp()) % interval_s
    literal = "'" + site_id.replace("\\", "\\\\").replace("'", "\\'") + "'"
    means = ", ".join(f'mean("{name}") AS "{name}"' for name in SERIES)
    return (f'SELECT {means} FROM "site" WHERE "site" = {literal} AND time >= \'{since}\' '
            f"GROUP BY time({interval_s}s, {offset}s) fill(none)")


async def history(site_id: str | None, influx: InfluxSessions | None, buffer: SiteBuffer,
                  start: datetime, points: int) -> SiteHistory:
    """InfluxDB's means when it has any for the range, else the bus's."""
    span_s = max(1.0, (datetime.now(UTC) - start).total_seconds())
    interval_s = max(1, math.ceil(span_s / points))
    error = None
    if influx is not None and site_id is not None:
        try:
            rows = await influx.select(influxql(site_id, start, interval_s))
            if rows:
                def column(name: str) -> list[float | None]:
                    return [None if r.get(name) is None else round(float(r[name]), 4)
                            for r in rows]
                return SiteHistory(site_id=site_id, source="influxdb", start=start,
                                   interval_s=interval_s,
                                   ts=[int(r["time"]) / 1e9 for r in rows],
                                   **{name: column(name) for name in SERIES})
        except InfluxUnavailable as exc:
            error = str(exc)
    interval_s = math.ceil(interval_s / buffer.bucket_s) * buffer.bucket_s
    ts, columns = buffer.series(start.timestamp(), interval_s)
    return SiteHistory(site_id=site_id, source="local", influx_error=error, start=start,
                       interval_s=interval_s, ts=ts, **dict(zip(SERIES, columns, strict=True)))
