"""Readings published on the real broker land in real InfluxDB 1.6 and, via the 2.x API, in
VictoriaMetrics, with their original timestamps; bad input keeps the recorder running."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fixtures.influxdb import InfluxServer, VictoriaMetrics
from tests.fixtures.mosquitto import Broker, running
from tests.recorder.helpers import T0, ns, reading, recorder, settings, wait_for
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.devbroker import free_port
from voltbus_common.enums import (
    ConnectorStatus,
    RegistrationStatus,
    StopReason,
)
from voltbus_common.models import (
    MeterReading,
    OcppConnection,
    OcppConnectorStatus,
    RecorderHealth,
    RejectedMessage,
    SessionSummary,
)

SESSION = SessionSummary(transaction_id=7, id_tag="04A1B2C3", started_at=T0,
                         stopped_at=T0 + timedelta(minutes=30), meter_start_wh=1000.0,
                         meter_stop_wh=6500.0, energy_wh=5500.0, stop_reason=StopReason.REMOTE)


def _publish_run(hw: Bus, gw: Bus) -> list[MeterReading]:
    """A small charging run: connection, statuses, readings on two connectors, a session."""
    gw.publish(ch.OCPP_CONNECTION, OcppConnection(
        connected=True, registration=RegistrationStatus.ACCEPTED, since=T0 - timedelta(minutes=1)))
    gw.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING, ts=T0),
               connector=1)
    readings = [reading(i) for i in range(5)]
    for r in readings:
        hw.publish(ch.METER, r, connector=1)
    hw.publish(ch.METER, reading(0, phases=1, energy0=50.0), connector=2)
    gw.publish(ch.SESSION, SESSION, connector=1)
    return readings


async def test_influxdb_1x_gets_every_reading_with_its_timestamp(
        mosquitto: Broker, influxdb: InfluxServer, station: str, tmp_path: Path) -> None:
    db = influxdb.create_database()
    cfg = settings(mosquitto, station, tmp_path, influx_api=1, influx_url=influxdb.url,
                   influx_database=db)
    hw = Bus(mosquitto.settings("hardware"), station=station, service="hardware")
    gw = Bus(mosquitto.settings("gateway"), station=station, service="gateway")
    async with recorder(cfg), running(hw, gw):
        await asyncio.sleep(0.3)  # the recorder subscribes (non-retained session is not kept)
        readings = _publish_run(hw, gw)
        rows = await wait_for(
            lambda: influxdb.rows("SELECT * FROM meter WHERE connector='1'", db=db),
            lambda r: len(r) == 5, what="5 readings in InfluxDB")
        sessions = await wait_for(lambda: influxdb.rows("SELECT * FROM session", db=db),
                                  lambda r: len(r) == 1, what="the session")
    assert [r["time"] for r in rows] == [ns(x.ts) for x in readings]
    assert [r["energy_wh"] for r in rows] == [x.energy_wh for x in readings]
    assert rows[4]["power_w"] == 11004.0
    assert rows[0]["current_l3_a"] == 16.0
    assert rows[0]["phases"] == 3
    assert rows[0]["station"] == station
    one_phase = influxdb.rows("SELECT * FROM meter WHERE connector='2'", db=db)
    assert one_phase[0]["current_l1_a"] == 16.0
    assert one_phase[0]["current_l2_a"] is None
    s = sessions[0]
    assert s["time"] == ns(SESSION.stopped_at)
    assert (s["energy_kwh"], s["duration_s"], s["id_tag"], s["stop_reason"], s["month"]) == (
        5.5, 1800.0, "04A1B2C3", "Remote", "2026-03")
    assert s["transaction_id"] == 7
    status = influxdb.rows("SELECT * FROM connector_status", db=db)
    assert (status[0]["status"], status[0]["error_code"], status[0]["time"]) == (
        "Charging", "NoError", ns(T0))
    link = influxdb.rows("SELECT * FROM ocpp_connection", db=db)
    assert (link[0]["connected"], link[0]["up"], link[0]["registration"]) == (
        True, 1, "Accepted")


async def test_influxdb_2x_api_writes_reach_victoriametrics(
        mosquitto: Broker, victoriametrics: VictoriaMetrics, station: str, tmp_path: Path) -> None:
    cfg = settings(mosquitto, station, tmp_path, influx_api=2, influx_url=victoriametrics.url,
                   influx_org="voltbus", influx_bucket="voltbus", influx_token="secret-token")
    hw = Bus(mosquitto.settings("hardware"), station=station, service="hardware")
    gw = Bus(mosquitto.settings("gateway"), station=station, service="gateway")
    async with recorder(cfg), running(hw, gw):
        await asyncio.sleep(0.3)
        readings = _publish_run(hw, gw)
        match = f'{{__name__="meter_energy_wh",station="{station}",connector="1"}}'
        series = await asyncio.to_thread(
            victoriametrics.wait_export, match,
            lambda s: len(s) == 1 and len(s[0]["timestamps"]) == 5)
    assert series[0]["timestamps"] == [ns(r.ts) // 1_000_000 for r in readings]
    assert series[0]["values"] == pytest.approx([r.energy_wh for r in readings])
    session = await asyncio.to_thread(
        victoriametrics.wait_export, f'{{__name__="session_energy_kwh",station="{station}"}}',
        lambda s: len(s) == 1)
    assert session[0]["values"] == [5.5]
    assert session[0]["metric"]["id_tag"] == "04A1B2C3"
    assert session[0]["timestamps"] == [ns(SESSION.stopped_at) // 1_000_000]


@pytest.mark.expected_errors  # InfluxDB's rejection of the year-2300 reading is logged as ERROR
async def test_bad_input_is_reported_and_the_recorder_keeps_recording(
        mosquitto: Broker, influxdb: InfluxServer, station: str, tmp_path: Path) -> None:
    db = influxdb.create_database()
    cfg = settings(mosquitto, station, tmp_path, influx_database=db, influx_url=influxdb.url)
    hw = Bus(mosquitto.settings("hardware"), station=station, service="hardware")
    watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
    rejected: asyncio.Queue[RejectedMessage] = asyncio.Queue()

    async def put(msg: object) -> None:
        await rejected.put(msg.payload)  # type: ignore[attr-defined]

    watcher.on(ch.SERVICE_REJECTED, put, service="recorder")
    meter_topic = ch.METER.topic(mosquitto.root, station=station, connector=1)
    async with recorder(cfg), running(hw, watcher):
        await asyncio.sleep(0.3)
        hw.publish_raw(meter_topic, b"not json")
        hw.publish_raw(meter_topic, b'{"energy_wh": -5, "power_w": 1, "current_a": [1], '
                                    b'"voltage_v": [230]}')
        hw.publish_raw(ch.METER.topic(mosquitto.root, station=station, connector="x"),
                       reading(0).model_dump_json().encode())
        # Valid for the bus, but outside what InfluxDB can store: rejected there, set aside.
        hw.publish(ch.METER, reading(0, start=T0.replace(year=2300)), connector=1)
        hw.publish(ch.METER, reading(1), connector=1)
        reasons = [(await asyncio.wait_for(rejected.get(), 5)).reason for _ in range(3)]
        rows = await wait_for(lambda: influxdb.rows("SELECT energy_wh FROM meter", db=db),
                              lambda r: len(r) == 1, what="the good reading")
        await asyncio.sleep(0.3)
    assert "Invalid JSON" in reasons[0]
    assert "energy_wh" in reasons[1]
    assert "connector 'x'" in reasons[2]
    assert rows[0]["time"] == ns(reading(1).ts)
    assert len(influxdb.rows("SELECT energy_wh FROM meter", db=db)) == 1
    with sqlite3.connect(cfg.spool_path) as spool:
        dead = spool.execute("SELECT line, reason FROM dead_letter").fetchall()
        left = spool.execute("SELECT COUNT(*) FROM spool WHERE line LIKE 'meter,%'").fetchone()[0]
    assert len(dead) == 1
    assert str(ns(reading(0, start=T0.replace(year=2300)).ts)) in dead[0][0]
    assert "HTTP 400" in dead[0][1]
    assert left == 0


async def test_link_state_is_resampled_and_an_offline_gateway_counts_as_down(
        mosquitto: Broker, influxdb: InfluxServer, station: str, tmp_path: Path) -> None:
    db = influxdb.create_database()
    cfg = settings(mosquitto, station, tmp_path, influx_url=influxdb.url, influx_database=db,
                   recorder_link_sample_s=0.3)
    gw = Bus(mosquitto.settings("gateway"), station=station, service="gateway")
    sampled = "SELECT up, connected FROM ocpp_connection WHERE sampled = true"
    async with recorder(cfg):
        async with running(gw):
            gw.publish(ch.OCPP_CONNECTION, OcppConnection(
                connected=True, registration=RegistrationStatus.ACCEPTED, since=T0))
            await wait_for(lambda: influxdb.rows(sampled, db=db), lambda r: len(r) >= 1,
                           what="a sampled link point")
        # The gateway is gone (it said `offline`); its retained connection still says up.
        rows = await wait_for(lambda: influxdb.rows(sampled, db=db),
                              lambda r: r[-1]["up"] == 0, what="a sample saying down")
        services = await wait_for(
            lambda: influxdb.rows("SELECT up FROM service_status WHERE service = 'gateway'",
                                  db=db),
            lambda r: len(r) >= 2, what="gateway online and offline")
    assert rows[0]["up"] == 1
    assert all(r["time"] % 100_000_000 == 0 for r in rows), "samples on the interval grid"
    assert [r["up"] for r in services][:2] == [1, 0]
    every = influxdb.rows("SELECT up, sampled FROM ocpp_connection", db=db)
    assert [(r["time"], r["up"]) for r in every if r["sampled"] is None] == [(ns(T0), 1)]


async def test_all_stations_option_records_every_station_on_the_broker(
        mosquitto: Broker, influxdb: InfluxServer, tmp_path: Path) -> None:
    db = influxdb.create_database()
    stations = [f"A{uuid.uuid4().hex[:8]}" for _ in range(2)]
    cfg = settings(mosquitto, stations[0], tmp_path, influx_url=influxdb.url,
                   influx_database=db, recorder_all_stations=True)
    hws = [Bus(mosquitto.settings("hardware"), station=s, service=None) for s in stations]
    async with recorder(cfg), running(*hws):
        await asyncio.sleep(0.3)
        for i, hw in enumerate(hws):
            hw.publish(ch.METER, reading(i), connector=1)
        rows = await wait_for(
            lambda: influxdb.rows("SELECT energy_wh FROM meter WHERE station =~ "
                                  f"/^({stations[0]}|{stations[1]})$/ GROUP BY station", db=db),
            lambda r: len(r) == 2, what="both stations")
    assert sorted(r["station"] for r in rows) == sorted(stations)


async def test_health_knows_whether_influxdb_answers_before_anything_is_written(
        mosquitto: Broker, influxdb: InfluxServer, station: str, tmp_path: Path) -> None:
    watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
    health: asyncio.Queue[RecorderHealth] = asyncio.Queue()

    async def keep(msg: Received[RecorderHealth]) -> None:
        assert msg.payload is not None
        await health.put(msg.payload)

    watcher.on(ch.RECORDER_HEALTH, keep)
    good = settings(mosquitto, station, tmp_path / "a", influx_url=influxdb.url)
    bad = settings(mosquitto, station, tmp_path / "b", influx_url=f"http://127.0.0.1:{free_port()}")
    async with running(watcher):
        for cfg, reachable in ((good, True), (bad, False)):
            async with recorder(cfg):
                while (h := await asyncio.wait_for(health.get(), 5)).influx_reachable is None:
                    pass
            assert (h.influx_reachable, h.ok, h.spooled) == (reachable, reachable, 0)
            while not health.empty():
                health.get_nowait()
