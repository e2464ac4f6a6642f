"""The routes the page needs: a connector's power curve (InfluxDB, else the API's own bus
readings) and costs that agree with the report. Real Mosquitto and influxd; no browser."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.api.conftest import Peers, api_settings, eventually, running_api
from tests.api.test_history import SESSIONS, publish_sessions
from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker
from voltbus_api.app import STATIC
from voltbus_common import channels as ch
from voltbus_common.devbroker import free_port
from voltbus_common.enums import ConnectorStatus
from voltbus_common.models import MeterReading, OcppConnectorStatus, TransactionState
from voltbus_recorder import points

ROOT = Path(__file__).resolve().parents[2]


def reading(ts: datetime, power_w: float) -> MeterReading:
    return MeterReading(energy_wh=1000.0, power_w=power_w, current_a=[power_w / 230],
                        voltage_v=[230.0], ts=ts)


async def publish_readings(client: httpx.AsyncClient, peers: Peers, station: str,
                           readings: list[MeterReading]) -> None:
    for r in readings:
        peers.hardware.publish(ch.METER, r, connector=1)

    async def seen() -> bool:
        state = (await client.get(f"/api/v1/stations/{station}")).json()
        meters = [c["meter"] for c in state["connectors"] if c["meter"]]
        return bool(meters) and meters[0]["ts"].startswith(readings[-1].ts.isoformat()[:19])

    await eventually(seen)


async def test_without_influxdb_the_curve_is_the_readings_the_api_saw(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    # The API keeps 10 s sums; a start on a 10 s boundary 95..105 s ago, 12 points: 10 s means.
    now = datetime.now(UTC).timestamp()
    start = datetime.fromtimestamp((now - 95) // 10 * 10, UTC)
    async with running_api(api_settings(mosquitto, station, tmp_path)) as (client, _):
        # 90 s of readings, one per second, and one older (before `from`: not shown).
        await publish_readings(client, peers, station,
                               [reading(start - timedelta(seconds=30), 9999.0)]
                               + [reading(start + timedelta(seconds=i), 100.0 * i)
                                  for i in range(90)])
        r = await client.get(f"/api/v1/stations/{station}/connectors/1/power",
                             params={"from": start.isoformat(), "points": 12})
        body = r.json()
        assert r.status_code == 200, body
        assert body["source"] == "local"
        assert body["influx_error"] is None
        assert body["interval_s"] == 10
        assert body["ts"] == [start.timestamp() + 10 * i for i in range(9)]
        assert body["power_w"] == [450.0 + 1000 * i for i in range(9)]  # 0..900, 1000..1900...
        # Over 250 s, 10 points: 30 s means (epoch-aligned), each reading weighing the same.
        wide = (await client.get(f"/api/v1/stations/{station}/connectors/1/power", params={
            "from": (start - timedelta(seconds=150)).isoformat(), "points": 10})).json()
        assert wide["interval_s"] == 30
        published = [(start.timestamp() - 30, 9999.0)] + [
            (start.timestamp() + i, 100.0 * i) for i in range(90)]
        groups: dict[float, list[float]] = {}
        for ts, w in published:
            groups.setdefault(ts // 30 * 30, []).append(w)
        assert wide["ts"] == sorted(groups)
        assert wide["power_w"] == [round(sum(g) / len(g), 1) for _, g in sorted(groups.items())]
        # Before the readings: nothing; an unknown connector: 404; a naive time: 422.
        later = await client.get(f"/api/v1/stations/{station}/connectors/1/power",
                                 params={"from": (start + timedelta(hours=1)).isoformat()})
        assert later.json()["ts"] == []
        missing = await client.get(f"/api/v1/stations/{station}/connectors/7/power")
        assert missing.status_code == 404
        naive = await client.get(f"/api/v1/stations/{station}/connectors/1/power",
                                 params={"from": "2026-01-01T00:00:00"})
        assert naive.status_code == 422
        assert "time zone" in naive.json()["detail"]


async def test_the_curve_defaults_to_the_running_session_and_comes_from_influxdb(
        mosquitto: Broker, influxdb: InfluxServer, peers: Peers, station: str,
        tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    started = now - timedelta(seconds=1190)  # 4 s buckets for 300 points (for 10 s)
    db = influxdb.create_database()
    # Readings before the session (must not show) and 10 minutes of it, one per 30 s.
    stored = [reading(started - timedelta(minutes=5), 9999.0)]
    stored += [reading(started + timedelta(seconds=30 * i), 2000.0 + i) for i in range(20)]
    assert influxdb.write(db, "\n".join(points.meter(station, 1, r) for r in stored)
                          ).status_code == 204
    settings = api_settings(mosquitto, station, tmp_path, influx_url=influxdb.url,
                            influx_database=db)
    peers.gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.CHARGING),
                          connector=1)
    peers.gateway.publish(ch.TRANSACTION, TransactionState(
        transaction_id=3, id_tag="04A1B2C3", started_at=started, meter_start_wh=0.0),
        connector=1)
    async with running_api(settings) as (client, _):
        async def has_transaction() -> bool:
            state = (await client.get(f"/api/v1/stations/{station}")).json()
            return any(c["transaction"] for c in state["connectors"])

        await eventually(has_transaction)
        body = (await client.get(f"/api/v1/stations/{station}/connectors/1/power")).json()
    assert body["source"] == "influxdb"
    assert datetime.fromisoformat(body["start"]) == started
    assert body["interval_s"] == 4
    assert body["ts"][0] == started.timestamp()
    assert body["power_w"] == [2000.0 + i for i in range(20)]
    assert 9999.0 not in body["power_w"]


async def test_influxdb_down_the_curve_comes_from_the_bus_and_says_why(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    settings = api_settings(mosquitto, station, tmp_path,
                            influx_url=f"http://127.0.0.1:{free_port()}")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    async with running_api(settings) as (client, _):
        await publish_readings(client, peers, station, [reading(start, 3000.0)])
        body = (await client.get(f"/api/v1/stations/{station}/connectors/1/power",
                                 params={"from": start.isoformat()})).json()
    assert body["source"] == "local"
    assert "ConnectError" in body["influx_error"]
    assert body["power_w"] == [3000.0]


async def test_the_months_cost_is_the_reports_total_and_each_session_has_its_cost(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    settings = api_settings(mosquitto, station, tmp_path, api_price_per_kwh=0.333,
                            api_currency="CHF")
    async with running_api(settings) as (client, _):
        await publish_sessions(client, peers, SESSIONS)
        month = (await client.get("/api/v1/costs", params={"month": "2026-01"})).json()
        report = (await client.get("/api/v1/reports/2026-01.csv")).text
        page = (await client.get("/api/v1/costs/sessions", params={"limit": 2})).json()
        bad = await client.get("/api/v1/costs", params={"month": "2026-13"})
        this_month = (await client.get("/api/v1/costs")).json()
    total = list(csv.reader(io.StringIO(report.lstrip("\ufeff"))))[-1]
    assert month["cost"] == float(total[7])
    assert month == {"month": "2026-01", "timezone": "UTC", "currency": "CHF",
                     "price_per_kwh": 0.333, "sessions": 3, "energy_wh": 21500.5,
                     "cost": 7.16, "tariff_sessions": 0, "influx_error": None}  # 2.33 + 3.66 + 1.17
    assert bad.status_code == 422
    assert this_month["month"] == datetime.now(UTC).strftime("%Y-%m")
    assert this_month["sessions"] == 0
    assert page["total"] == 4
    assert page["currency"] == "CHF"
    assert [(s["transaction_id"], s["cost"], s["stop_reason"]) for s in page["items"]] == [
        (4, 1.67, "Local"), (3, 1.17, "Local")]  # 5.000 and 3.501 kWh (3500.5 Wh, half up)


def test_the_chart_library_is_the_locked_npm_package_unmodified() -> None:
    """static/vendor holds uPlot as services/api/web/vendor.py copied it from the package that
    package-lock.json pins: the manifest matches the lock and every file its recorded hash."""
    import hashlib

    manifest = json.loads((STATIC / "vendor" / "VENDORED.json").read_text())
    lock = json.loads((ROOT / "services/api/web/package-lock.json").read_text())["packages"]
    wanted = json.loads((ROOT / "services/api/web/package.json").read_text())["dependencies"]
    assert set(manifest) == set(wanted) == {"uplot"}
    for package, entry in manifest.items():
        assert entry["version"] == wanted[package] == lock[f"node_modules/{package}"]["version"]
        assert entry["integrity"] == lock[f"node_modules/{package}"]["integrity"]
        for name, digest in entry["files"].items():
            assert hashlib.sha256((STATIC / "vendor" / name).read_bytes()).hexdigest() == digest
    banner = (STATIC / "vendor" / "uPlot.iife.min.js").read_text()[:80]
    assert f"(v{manifest['uplot']['version']})" in banner
    page = (STATIC / "index.html").read_text()
    assert 'src="vendor/uPlot.iife.min.js"' in page
    assert "http" not in page.split("<body>")[0]  # nothing from another host


async def test_the_vendored_library_is_served(mosquitto: Broker, peers: Peers, station: str,
                                              tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path), as_admin=False) as (
            client, _):
        js = await client.get("/vendor/uPlot.iife.min.js")
        css = await client.get("/vendor/uPlot.min.css")
    assert js.status_code == css.status_code == 200
    assert js.content == (STATIC / "vendor" / "uPlot.iife.min.js").read_bytes()
    assert "javascript" in js.headers["content-type"]


async def test_the_local_curve_keeps_8_hours_in_bounded_memory() -> None:
    from voltbus_api.routes.page import PowerBuffer
    from voltbus_api.state_cache import Change

    buffer = PowerBuffer()
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    for i in range(0, 10 * 3600, 2):  # 10 h, a reading every 2 s
        r = reading(t0 + timedelta(seconds=i), 1000.0 + i % 7)
        await buffer.on_change(Change(station="CP1", connector=1, kind="meter",
                                      data=r.model_dump(mode="json")))
    # A retained replay of an old reading changes nothing.
    await buffer.on_change(Change(station="CP1", connector=1, kind="meter",
                                  data=reading(t0, 5e5).model_dump(mode="json")))
    ts, watts = buffer.series("CP1", 1, t0.timestamp(), 10)
    assert 8 * 360 <= len(ts) <= 8 * 360 + 256  # 10 s buckets of the last 8 h (+ a trim chunk)
    assert ts[-1] == (t0 + timedelta(seconds=10 * 3600 - 10)).timestamp()
    assert max(watts) < 1010


async def test_a_browser_leaving_the_live_stream_leaves_no_task_behind(
        mosquitto: Broker, peers: Peers, station: str, tmp_path: Path) -> None:
    """The page closes its EventSource on logout; the stream's pending queue.get() must go too
    (it lingered until garbage collection: 'Task was destroyed but it is pending!')."""
    import asyncio

    from tests.api.served import served_api

    def getters_of(queues: set[object]) -> set[asyncio.Task[object]]:
        """Pending queue.get() tasks on these queues."""
        found = set()
        for task in asyncio.all_tasks():
            frame = getattr(task.get_coro(), "cr_frame", None)
            if frame is not None and frame.f_locals.get("self") in queues:
                found.add(task)
        return found

    async with served_api(api_settings(mosquitto, station, tmp_path)) as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=5) as client, client.stream(
                "GET", "/api/v1/events",
                headers={"Authorization": f"Bearer {api.token}"}) as stream:
            chunks = stream.aiter_bytes()  # held open: the browser is still there
            received = b""
            while b"event: snapshot" not in received:
                received += await anext(chunks)
            streams = set(api.ctx.cache._queues)  # the live stream's queue
            assert len(streams) == 1

            async def waiting() -> bool:
                return len(getters_of(streams)) == 1

            await eventually(waiting)
            getter = getters_of(streams)

        async def gone() -> bool:
            return all(t.done() for t in getter) and not api.ctx.cache._queues

        await eventually(gone)
