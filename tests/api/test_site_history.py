"""GET /api/v1/site/history, the page's 24 h site chart: bucket means from real InfluxDB 1.6's
`site` measurement (the recorder's own line format), and from the site states the API saw on the
real broker when InfluxDB is unreachable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.api.conftest import api_settings, eventually, running_api
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker, running
from voltbus_api.site_history import SERIES
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.devbroker import free_port
from voltbus_common.enums import StopReason
from voltbus_common.models import SessionCost, SessionSummary, SiteState
from voltbus_recorder import points


def _states(start: datetime, count: int, step_s: float) -> list[SiteState]:
    """Import while the car charges, then PV export; the grid meter silent for a while."""
    out = []
    for i in range(count):
        sunny, silent = i >= count // 2, count // 4 <= i < count // 4 + 3
        out.append(SiteState(
            grid_power_w=None if silent else (-1500.0 - i if sunny else 2500.0 + i),
            pv_power_w=6000.0 if sunny else 200.0 + i, charge_power_w=3700.0,
            battery_power_w=-800.0 if sunny else None, fuse_limit_a=25.0,
            price_per_kwh=0.18 if sunny else 0.31, fail_safe=silent,
            ts=start + timedelta(seconds=i * step_s)))
    return out


def _expected(states: list[SiteState], ts: list[float], interval_s: int
              ) -> dict[str, list[float | None]]:
    """Each series' mean per bucket [ts, ts + interval_s), from the states themselves."""
    out: dict[str, list[float | None]] = {name: [] for name in SERIES}
    for t in ts:
        inside = [s for s in states if t <= s.ts.timestamp() < t + interval_s]
        for name in SERIES:
            values = [v for s in inside if (v := (s.house_power_w() if name == "house_power_w"
                                                  else getattr(s, name))) is not None]
            out[name].append(sum(values) / len(values) if values else None)
    return out


def _check(answer: dict[str, object], states: list[SiteState]) -> None:
    ts = answer["ts"]
    assert isinstance(ts, list)
    expected = _expected(states, ts, int(answer["interval_s"]))  # type: ignore[call-overload]
    for name in SERIES:
        assert answer[name] == pytest.approx(expected[name], abs=1e-3), name
    covered = sum(1 for s in states if ts[0] <= s.ts.timestamp() < ts[-1] + answer["interval_s"])  # type: ignore[operator]
    assert covered == len(states)  # every state is in some bucket


async def test_history_comes_from_influxdb_as_bucket_means(
        mosquitto: Broker, influxdb: InfluxServer, station: str, tmp_path: Path) -> None:
    db = influxdb.create_database()
    site = f"site{station}"
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    states = _states(start, 120, 60.0)  # two hours, one a minute
    lines = [points.site(site, s) for s in states]
    lines.append(points.site(f"other{station}", states[0].model_copy(
        update={"grid_power_w": 99_999.0})))  # another site's: not in the answer
    assert influxdb.write(db, "\n".join(lines)).status_code == 204
    settings = api_settings(mosquitto, station, tmp_path, energy_site=site,
                            influx_url=influxdb.url, influx_database=db, ha_discovery=False)
    async with running_api(settings) as (client, _ctx):
        r = await client.get("/api/v1/site/history",
                             params={"from": start.isoformat(), "points": 24})
        assert r.status_code == 200, r.text
        answer = r.json()
        default = (await client.get("/api/v1/site/history")).json()
        naive = await client.get("/api/v1/site/history", params={"from": "2026-01-05T08:00:00"})
    assert (answer["source"], answer["site_id"], answer["influx_error"]) == (
        "influxdb", site, None)
    assert 300 <= answer["interval_s"] <= 310  # two hours and a little in at most 24 means
    assert 24 <= len(answer["ts"]) <= 25
    _check(answer, states)
    assert 99_999.0 not in answer["grid_power_w"]
    # The silent grid meter: no grid (nor house) in its bucket, PV still there.
    silent = next(i for i, t in enumerate(answer["ts"])
                  if t <= states[31].ts.timestamp() < t + answer["interval_s"])
    assert answer["pv_power_w"][silent] is not None
    # The default: the last 24 h in at most 288 means (5 min buckets, a second more for the
    # moments since "now - 24 h").
    assert default["source"] == "influxdb"
    assert default["interval_s"] in (300, 301)
    _check(default, states)
    assert naive.status_code == 422


async def test_history_from_the_bus_when_influxdb_is_unreachable(
        mosquitto: Broker, station: str, tmp_path: Path) -> None:
    site = f"site{station}"
    settings = api_settings(mosquitto, station, tmp_path, energy_site=site,
                            influx_url=f"http://127.0.0.1:{free_port()}", ha_discovery=False)
    energy = Bus(mosquitto.settings("energy"), station=site, service=None)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    states = _states(start + timedelta(seconds=1), 40, 29.0)  # 20 minutes, one every 29 s
    async with running_api(settings) as (client, _ctx), running(energy):
        for s in states:
            energy.publish(ch.ENERGY_SITE, s)
        energy.publish(ch.ENERGY_SITE, states[-1])  # a repeat (a reconnect's retained copy)

        async def all_seen() -> bool:
            got = (await client.get("/api/v1/site/history",
                                    params={"from": start.isoformat()})).json()
            return got["ts"] != [] and got["ts"][-1] >= states[-1].ts.timestamp() // 60 * 60

        await eventually(all_seen, within_s=10)
        answer = (await client.get("/api/v1/site/history",
                                   params={"from": start.isoformat(), "points": 10})).json()
    assert answer["source"] == "local"
    assert "127.0.0.1" in answer["influx_error"]
    assert answer["interval_s"] == 180  # 20 min in 10 means, rounded up to whole minutes
    _check(answer, states)


async def test_sessions_carry_their_cost_at_the_live_tariff(
        mosquitto: Broker, influxdb: InfluxServer, station: str, tmp_path: Path) -> None:
    db = influxdb.create_database()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)

    def summary(i: int) -> SessionSummary:
        return SessionSummary(transaction_id=i, id_tag="04A1B2C3",
                              started_at=t0 + timedelta(hours=i),
                              stopped_at=t0 + timedelta(hours=i, minutes=30), meter_start_wh=0.0,
                              meter_stop_wh=10_000.0, energy_wh=10_000.0,
                              stop_reason=StopReason.LOCAL)

    def priced(i: int, cost: float) -> SessionCost:
        s = summary(i)
        return SessionCost(transaction_ref=str(i), transaction_id=i, started_at=s.started_at,
                           stopped_at=s.stopped_at, energy_wh=s.energy_wh, cost=cost, final=True)

    # Session 1 priced in InfluxDB (the recorder's session_cost), 2 priced on the bus, 3 not.
    lines = [points.session(station, 1, summary(i)) for i in (1, 2, 3)]
    lines.append(points.session_cost(station, 1, priced(1, 2.345)) or "")
    assert influxdb.write(db, "\n".join(lines)).status_code == 204
    energy = Bus(mosquitto.settings("energy"), station=station, service=None)
    settings = api_settings(mosquitto, station, tmp_path, influx_url=influxdb.url,
                            influx_database=db, api_price_per_kwh=0.30, ha_discovery=False)
    running_cost = SessionCost(transaction_ref="4", transaction_id=4,
                               started_at=t0 + timedelta(hours=4), energy_wh=1500.0, cost=0.4)
    async with running_api(settings) as (client, _ctx), running(energy):
        energy.publish(ch.ENERGY_COST, priced(2, 1.115), connector=1)
        energy.publish(ch.ENERGY_COST, running_cost, connector=2)

        async def seen() -> bool:
            return len((await client.get("/api/v1/site")).json()["costs"]) == 2

        await eventually(seen)
        page = (await client.get("/api/v1/costs/sessions")).json()
        site = (await client.get("/api/v1/site")).json()
    by_id = {s["transaction_id"]: s for s in page["items"]}
    assert {i: (s["cost"], s["tariff_cost"]) for i, s in by_id.items()} == {
        1: (3.0, 2.35), 2: (3.0, 1.12), 3: (3.0, None)}  # 10 kWh x 0.30; the tariff's, to the cent
    live = {c["connector"]: c["cost"] for c in site["costs"]}
    assert (live[2]["cost"], live[2]["final"], live[1]["final"]) == (0.4, False, True)
