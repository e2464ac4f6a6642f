"""Nothing lost: InfluxDB down, the recorder killed with SIGKILL meanwhile, InfluxDB back ->
every reading arrives once, with its original timestamp. Runs the recorder as a real process."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.fixtures.influxdb import InfluxServer, VictoriaMetrics
from tests.fixtures.mosquitto import Broker, running
from tests.fixtures.services import ServiceGroup
from tests.recorder.helpers import ns, reading, recorder, settings, wait_for
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.models import RecorderHealth


def _spooled(path: Path) -> int:
    if not path.exists():
        return -1
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM spool WHERE line LIKE 'meter,%'"
                              ).fetchone()[0])


async def test_influx_outage_and_recorder_sigkill_lose_nothing(
        mosquitto: Broker, own_influxdb: InfluxServer, services: ServiceGroup,
        station: str, tmp_path: Path) -> None:
    env = {**mosquitto.env("recorder"), "VOLTBUS_STATIONS": station,
           "VOLTBUS_DATA_DIR": str(tmp_path / "data"), "VOLTBUS_INFLUX_API": "1",
           "VOLTBUS_INFLUX_URL": own_influxdb.url, "VOLTBUS_INFLUX_DATABASE": "voltbus",
           "VOLTBUS_RECORDER_BATCH_MAX_AGE_S": "0.2", "VOLTBUS_RECORDER_RETRY_MAX_S": "0.5",
           "VOLTBUS_RECORDER_HEALTH_INTERVAL_S": "1", "VOLTBUS_RECORDER_BATCH_SIZE": "100"}
    spool = tmp_path / "data" / "recorder" / "spool.sqlite3"
    hw = Bus(mosquitto.settings("hardware"), station=station, service="hardware")
    watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
    health: list[RecorderHealth] = []

    async def keep(msg: Received[RecorderHealth]) -> None:
        assert msg.payload is not None
        health.append(msg.payload)

    watcher.on(ch.RECORDER_HEALTH, keep)
    readings = [reading(i) for i in range(600)]
    async with running(hw, watcher):
        proc = services.start("recorder", env)
        await wait_for(lambda: len(health), lambda n: n > 0, what="recorder health")
        # 1. InfluxDB goes away; the recorder spools what it receives.
        own_influxdb.stop()
        for r in readings[:200]:
            hw.publish(ch.METER, r, connector=1)
        await wait_for(lambda: _spooled(spool), lambda n: n == 200, what="200 spooled")
        await wait_for(lambda: health[-1].influx_reachable, lambda ok: ok is False,
                       what="health: influx unreachable")
        # 2. The recorder dies without a chance to clean up; the broker queues for it.
        proc.kill()
        for r in readings[200:400]:
            hw.publish(ch.METER, r, connector=1)
        assert await hw.drain(5)
        await asyncio.sleep(0.2)
        # 3. InfluxDB back, recorder back: backlog from disk and from the broker, plus live data.
        own_influxdb.start()
        proc = services.start("recorder", env)
        for r in readings[400:]:
            hw.publish(ch.METER, r, connector=1)
        rows = await wait_for(
            lambda: own_influxdb.rows("SELECT energy_wh, power_w FROM meter", db="voltbus"),
            lambda r: len(r) >= 600, limit_s=20, what="600 readings in InfluxDB")
        await wait_for(lambda: _spooled(spool), lambda n: n == 0, what="empty spool")
        await wait_for(lambda: health[-1].ok, bool, what="health ok again")
    assert proc.alive(), services.logs()
    assert [r["time"] for r in rows] == [ns(r.ts) for r in readings]
    assert [r["energy_wh"] for r in rows] == [r.energy_wh for r in readings]
    assert health[-1].dropped == 0
    assert "InfluxDB unavailable" in services.logs()


async def test_2x_api_outage_spools_and_recovers(
        mosquitto: Broker, own_victoriametrics: VictoriaMetrics, station: str,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    vm = own_victoriametrics
    cfg = settings(mosquitto, station, tmp_path, influx_api=2, influx_url=vm.url,
                   influx_org="home", influx_bucket="voltbus", influx_token="t0ken",
                   influx_timeout_s=2)
    hw = Bus(mosquitto.settings("hardware"), station=station, service="hardware")
    readings = [reading(i) for i in range(100)]
    async with recorder(cfg), running(hw):
        await asyncio.sleep(0.3)
        vm.stop()
        for r in readings[:50]:
            hw.publish(ch.METER, r, connector=1)
        await wait_for(lambda: _spooled(cfg.spool_path), lambda n: n == 50, what="50 spooled")
        await wait_for(lambda: "InfluxDB unavailable" in caplog.text, bool, what="outage seen")
        vm.start()
        for r in readings[50:]:
            hw.publish(ch.METER, r, connector=1)
        match = f'{{__name__="meter_energy_wh",station="{station}"}}'
        series = await asyncio.to_thread(
            vm.wait_export, match, lambda s: len(s) == 1 and len(s[0]["timestamps"]) == 100, 20)
        await wait_for(lambda: _spooled(cfg.spool_path), lambda n: n == 0, what="empty spool")
    assert series[0]["timestamps"] == [ns(r.ts) // 1_000_000 for r in readings]
    assert "InfluxDB is back" in caplog.text
