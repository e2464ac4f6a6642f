"""The energy manager's `energy/site` goes into InfluxDB's `site` measurement through the same
spool as the meter readings: every state with its own timestamp, none lost while InfluxDB is down
and the recorder is killed. Real Mosquitto, real InfluxDB 1.6, the recorder in-process and as a
process."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker, running
from tests.fixtures.services import ServiceGroup
from tests.recorder.helpers import T0, ns, recorder, settings, wait_for
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.models import SessionCost, SiteState
from voltbus_recorder import points


def site_state(i: int, *, silent: bool = False) -> SiteState:
    """The i-th state, a second apart: 2 kW import, PV rising, one car at 4 kW."""
    return SiteState(grid_power_w=None if silent else 2000.0 + i,
                     grid_current_a=None if silent else [3.0, 2.5, 3.5],
                     pv_power_w=1000.0 + 10 * i, battery_power_w=-500.0, battery_soc_pct=55.0,
                     charge_power_w=4000.0, surplus_w=0.0, fuse_limit_a=25.0,
                     max_import_w=11000.0, price_per_kwh=0.2 + i / 1000, price_status="ok",
                     co2_g_per_kwh=300.0, fail_safe=silent, ts=T0 + timedelta(seconds=i))


async def test_site_states_land_in_influxdb_with_their_timestamps(
        mosquitto: Broker, influxdb: InfluxServer, station: str, tmp_path: Path) -> None:
    db = influxdb.create_database()
    site = f"site{station}"
    cfg = settings(mosquitto, station, tmp_path, influx_url=influxdb.url, influx_database=db,
                   energy_site=site)
    energy = Bus(mosquitto.settings("energy"), station=site, service=None)
    other = Bus(mosquitto.settings("energy"), station=f"other{station}", service=None)
    states = [site_state(i) for i in range(4)] + [site_state(4, silent=True)]
    async with recorder(cfg), running(energy, other):
        energy.publish(ch.ENERGY_SITE, states[0])  # retained: proves the subscription
        await wait_for(lambda: influxdb.rows("SELECT * FROM site", db=db),
                       lambda r: len(r) == 1, what="the first site state")
        for s in states[1:]:
            energy.publish(ch.ENERGY_SITE, s)
        other.publish(ch.ENERGY_SITE, site_state(9))  # another site: not this recorder's
        rows = await wait_for(lambda: influxdb.rows("SELECT * FROM site", db=db),
                              lambda r: len(r) == 5, what="5 site states in InfluxDB")
        await asyncio.sleep(0.5)
        rows = influxdb.rows("SELECT * FROM site", db=db)
    assert [r["time"] for r in rows] == [ns(s.ts) for s in states]
    assert {r["site"] for r in rows} == {site}
    first = rows[0]
    assert (first["grid_power_w"], first["pv_power_w"], first["charge_power_w"]) == (
        2000.0, 1000.0, 4000.0)
    # house = grid + PV + battery - cars = 2000 + 1000 - 500 - 4000
    assert first["house_power_w"] == -1500.0
    assert (first["grid_current_l1_a"], first["grid_current_l3_a"]) == (3.0, 3.5)
    assert (first["fuse_limit_a"], first["max_import_w"], first["price_per_kwh"]) == (
        25.0, 11000.0, 0.2)
    assert (first["battery_power_w"], first["battery_soc_pct"]) == (-500.0, 55.0)
    assert (first["fail_safe"], first["fail_safe_int"], first["price_status"]) == (
        False, 0, "ok")
    silent = rows[4]
    assert silent["grid_power_w"] is None
    assert silent["house_power_w"] is None
    assert (silent["fail_safe"], silent["fail_safe_int"]) == (True, 1)
    assert silent["grid_current_l1_a"] is None


def test_a_minimal_site_state_is_a_valid_point(influxdb: InfluxServer) -> None:
    db = influxdb.create_database()
    bare = SiteState(grid_power_w=None, fuse_limit_a=16.0, ts=T0)
    line = points.site("a site,x", bare)
    assert influxdb.write(db, line).status_code == 204
    (row,) = influxdb.rows("SELECT * FROM site", db=db)
    assert (row["site"], row["fuse_limit_a"], row["charge_power_w"], row["time"]) == (
        "a site,x", 16.0, 0.0, ns(T0))


def _spooled(path: Path) -> int:
    if not path.exists():
        return -1
    try:
        with sqlite3.connect(path) as db:
            return int(db.execute("SELECT COUNT(*) FROM spool WHERE line LIKE 'site,%'"
                                  ).fetchone()[0])
    except sqlite3.OperationalError:  # not made yet
        return -1


async def test_site_states_survive_an_influx_outage_and_a_recorder_sigkill(
        mosquitto: Broker, own_influxdb: InfluxServer, services: ServiceGroup,
        station: str, tmp_path: Path) -> None:
    site = f"site{station}"
    env = {**mosquitto.env("recorder"), "VOLTBUS_STATIONS": station, "VOLTBUS_ENERGY_SITE": site,
           "VOLTBUS_DATA_DIR": str(tmp_path / "data"), "VOLTBUS_INFLUX_API": "1",
           "VOLTBUS_INFLUX_URL": own_influxdb.url, "VOLTBUS_INFLUX_DATABASE": "voltbus",
           "VOLTBUS_RECORDER_BATCH_MAX_AGE_S": "0.2", "VOLTBUS_RECORDER_RETRY_MAX_S": "0.5",
           "VOLTBUS_RECORDER_HEALTH_INTERVAL_S": "1"}
    spool = tmp_path / "data" / "recorder" / "spool.sqlite3"
    energy = Bus(mosquitto.settings("energy"), station=site, service=None)
    states = [site_state(i) for i in range(90)]
    async with running(energy):
        proc = services.start("recorder", env)
        energy.publish(ch.ENERGY_SITE, states[0])  # retained: proves the subscription
        await wait_for(lambda: own_influxdb.rows("SELECT grid_power_w FROM site", db="voltbus"),
                       lambda r: len(r) == 1, what="the first site state in InfluxDB")
        own_influxdb.stop()
        for s in states[1:30]:
            energy.publish(ch.ENERGY_SITE, s)
        await wait_for(lambda: _spooled(spool), lambda n: n == 29, what="29 site states spooled")
        proc.kill()  # the broker queues the QoS 1 site states for the persistent session
        for s in states[30:60]:
            energy.publish(ch.ENERGY_SITE, s)
        assert await energy.drain(5)
        own_influxdb.start()
        proc = services.start("recorder", env)
        for s in states[60:]:
            energy.publish(ch.ENERGY_SITE, s)
        rows = await wait_for(
            lambda: own_influxdb.rows("SELECT grid_power_w FROM site", db="voltbus"),
            lambda r: len(r) >= 90, limit_s=20, what="90 site states in InfluxDB")
        await wait_for(lambda: _spooled(spool), lambda n: n == 0, what="empty spool")
    assert proc.alive(), services.logs()
    assert [r["time"] for r in rows] == [ns(s.ts) for s in states]
    assert [r["grid_power_w"] for r in rows] == [s.grid_power_w for s in states]


async def test_final_session_costs_land_next_to_their_session(
        mosquitto: Broker, influxdb: InfluxServer, station: str, tmp_path: Path) -> None:
    db = influxdb.create_database()
    cfg = settings(mosquitto, station, tmp_path, influx_url=influxdb.url, influx_database=db)
    energy = Bus(mosquitto.settings("energy"), station=station, service=None)
    running_cost = SessionCost(transaction_ref="7", transaction_id=7, started_at=T0,
                               energy_wh=1000.0, cost=0.25)
    final = running_cost.model_copy(update={
        "stopped_at": T0 + timedelta(hours=1), "energy_wh": 5500.0, "cost": 1.2345,
        "unpriced_wh": 10.0, "final": True})
    async with recorder(cfg), running(energy):
        energy.publish(ch.ENERGY_COST, running_cost, connector=2)  # not recorded: still running
        energy.publish(ch.ENERGY_COST, final, connector=2)
        (row,) = await wait_for(lambda: influxdb.rows("SELECT * FROM session_cost", db=db),
                                lambda r: len(r) == 1, what="the final cost")
        await asyncio.sleep(0.3)
        assert len(influxdb.rows("SELECT * FROM session_cost", db=db)) == 1
    assert (row["time"], row["station"], row["connector"]) == (
        ns(final.stopped_at), station, "2")  # type: ignore[arg-type]
    assert (row["cost"], row["energy_wh"], row["unpriced_wh"]) == (1.2345, 5500.0, 10.0)
    assert (row["transaction_id"], row["transaction_ref"], row["started_at_ns"]) == (
        7, "7", ns(T0))
