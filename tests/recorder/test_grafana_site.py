"""The provisioned Grafana site dashboard: every panel's InfluxQL query, with Grafana's macros
substituted, runs against real InfluxDB 1.6 after an hour of site states went through the bus and
the recorder, and shows what that hour implies (as tests/recorder/test_grafana.py does for the
charging dashboard)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker, running
from tests.recorder.helpers import recorder, settings, wait_for
from tests.recorder.test_grafana import GRAFANA, Run, render
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.models import SiteState

DASHBOARD = GRAFANA / "dashboards" / "voltbus-site.json"
T = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
HOUR = (T, T + timedelta(minutes=59, seconds=59))
SILENT = range(40, 45)  # the grid meter is silent: fail-safe


BATTERY_SILENT = range(48, 53)  # the battery's source is silent (stale: no reading)


def _battery(minute: int) -> tuple[float | None, float | None]:
    """The home battery: no reading for 20 minutes, then discharging 500 W (its state of
    charge falling 0.1 % a minute from 40 %), from minute 30 charging 500 W (rising)."""
    if minute < 20 or minute in BATTERY_SILENT:
        return None, None
    if minute < 30:
        return 500.0, round(40.0 - 0.1 * (minute - 20), 1)
    return -500.0, round(39.0 + 0.1 * (minute - 30), 1)


def _state(minute: int) -> SiteState:
    """Import 3 kW for half an hour, then the sun: export 1 kW; the car takes 3 kW throughout."""
    first = minute < 30
    silent = minute in SILENT
    battery_w, soc = _battery(minute)
    return SiteState(battery_power_w=battery_w, battery_soc_pct=soc,
        grid_power_w=None if silent else (3000.0 if first else -1000.0),
        grid_current_a=None if silent else ([5.0, 4.0, 6.0] if first else [-1.0, -2.0, -1.5]),
        pv_power_w=1000.0 if first else 5000.0, charge_power_w=3000.0,
        surplus_w=0.0 if first else 1000.0, fuse_limit_a=25.0, max_import_w=11000.0,
        price_per_kwh=0.20 if first else 0.30, fail_safe=silent,
        ts=T + timedelta(minutes=minute))


async def _record(mosquitto: Broker, influxdb: InfluxServer, data: Path) -> Run:
    """The hour through the bus and the recorder (Run.station is the site id)."""
    run = Run(station=f"home{uuid.uuid4().hex[:8]}", db=influxdb.create_database())
    cfg = settings(mosquitto, f"S{run.station}", data, influx_url=influxdb.url,
                   influx_database=run.db, energy_site=run.station)
    energy = Bus(mosquitto.settings("energy"), station=run.station, service=None)

    def count() -> int:
        return sum(r["count"] for r in influxdb.rows(
            "SELECT count(fuse_limit_a) FROM site", db=run.db))

    async with recorder(cfg), running(energy):
        energy.publish(ch.ENERGY_SITE, _state(0))  # retained: proves the subscription
        await wait_for(count, lambda n: n == 1, what="the first state in InfluxDB")
        for minute in range(1, 60):
            energy.publish(ch.ENERGY_SITE, _state(minute))
        await wait_for(count, lambda n: n == 60, what="the hour in InfluxDB")
    return run


@pytest.fixture(scope="module")
def recorded(mosquitto: Broker, influxdb: InfluxServer,
             tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The hour, recorded once for every panel test of this module."""
    return asyncio.run(_record(mosquitto, influxdb, tmp_path_factory.mktemp("grafana-site")))


def _panels() -> list[dict[str, Any]]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def rows(influxdb: InfluxServer, run: Run, title: str) -> list[dict[str, Any]]:
    """The panel's query over the hour in 1 min buckets: its one series' rows."""
    (panel,) = [p for p in _panels() if p["title"] == title]
    (target,) = panel["targets"]
    query = render(target["query"].replace("$site", run.station), run, HOUR)
    (series,) = influxdb.query(query, db=run.db, epoch="ms")
    return [dict(zip(series["columns"], v, strict=True)) for v in series["values"]]


def at(result: list[dict[str, Any]], minute: int) -> dict[str, Any]:
    ms = int((T + timedelta(minutes=minute)).timestamp() * 1000)
    return next(r for r in result if r["time"] == ms)


def _net_grid_kwh() -> float:
    """What InfluxDB's integral() gives: trapezoids between the readings (the gap bridged)."""
    known = [(m, w) for m in range(60) if (w := _state(m).grid_power_w) is not None]
    wmin = sum((b - a) * (pa + pb) / 2 for (a, pa), (b, pb) in itertools.pairwise(known))
    return wmin / 60 / 1000


CHECKS: dict[str, Any] = {
    "Grid now": lambda r: r[0]["Grid"] == -1000.0,
    "PV now": lambda r: r[0]["PV"] == 5000.0,
    "Charging now": lambda r: r[0]["Cars"] == 3000.0,
    "Price now": lambda r: r[0]["Price"] == 0.30,
    "Net grid energy in range": lambda r: r[0]["Grid"] == pytest.approx(_net_grid_kwh()),
    "Site power": lambda r: (
        (at(r, 0)["Grid"], at(r, 0)["PV"], at(r, 0)["House"], at(r, 0)["Cars"],
         at(r, 0)["Battery"]) == (3000.0, 1000.0, 1000.0, 3000.0, None)
        and (at(r, 50)["Grid"], at(r, 50)["House"]) == (-1000.0, 1000.0)
        and (at(r, 42)["Grid"], at(r, 42)["House"], at(r, 42)["PV"]) == (None, None, 5000.0)),
    "Grid current and fuse": lambda r: (
        (at(r, 0)["L1"], at(r, 0)["L2"], at(r, 0)["L3"], at(r, 0)["Fuse"]) == (5.0, 4.0, 6.0, 25.0)
        and at(r, 42)["L1"] is None and at(r, 42)["Fuse"] == 25.0),
    "Import and cap": lambda r: (at(r, 10)["Grid"], at(r, 10)["Cap"]) == (3000.0, 11000.0),
    "Price": lambda r: [at(r, m)["Price"] for m in (0, 29, 30, 59)] == [0.20, 0.20, 0.30, 0.30],
    "Home battery": lambda r: (
        [(at(r, m)["Power"], at(r, m)["State of charge"]) for m in (10, 20, 25, 30, 50, 59)]
        == [(None, None), (500.0, 40.0), (500.0, 39.5), (-500.0, 39.0), (None, None),
            (-500.0, 41.9)]),
    "Grid meter": lambda r: [at(r, m)["Grid meter"] for m in (39, 40, 44, 45)] == [0, 1, 1, 0],
}


def test_every_panel_is_checked_and_uses_the_provisioned_datasource() -> None:
    assert {p["title"] for p in _panels()} == set(CHECKS)
    charging = json.loads((GRAFANA / "dashboards" / "voltbus-charging.json").read_text())
    site = json.loads(DASHBOARD.read_text())
    assert site["uid"] != charging["uid"]
    uid = "voltbus-influxdb"
    for panel in _panels():
        assert panel["datasource"]["uid"] == uid
        assert all(t["datasource"]["uid"] == uid and t["rawQuery"] for t in panel["targets"])


@pytest.mark.parametrize("title", sorted(CHECKS))
def test_panel_shows_the_recorded_hour(title: str, recorded: Run, influxdb: InfluxServer) -> None:
    result = rows(influxdb, recorded, title)
    assert CHECKS[title](result), result[:3]


def test_site_variable_lists_the_recorded_site(recorded: Run, influxdb: InfluxServer) -> None:
    (variable,) = json.loads(DASHBOARD.read_text())["templating"]["list"]
    (series,) = influxdb.query(variable["query"], db=recorded.db)
    assert [v[1] for v in series["values"]] == [recorded.station]
