"""Recorder ingest throughput against its two floors, side by side in one run (issue 14).

Starts a real Mosquitto and a real InfluxDB 1.x and runs the recorder as its own process
(`python -m voltbus_recorder`, default settings: batches of 5000, spool fsync on). Per run:

- **MQTT receive floor**: the same meter readings queued by the broker for a persistent session,
  drained by one bare subscriber that only counts (aiomqtt, and paho's own loop in a thread),
  timed from its connection to the last message.
- **recorder, broker backlog**: the same number queued for the recorder's session while it is
  stopped, timed from the moment it is back online until the last reading is queryable in
  InfluxDB. Ratio to the MQTT floor: how close the recorder comes to what the broker delivers.
- **InfluxDB floor**: the same lines written straight to `/write` in one sequential stream of
  5000-point batches.
- **recorder, spool drain**: the same number spooled on disk while InfluxDB was unreachable,
  timed from the recorder's restart (InfluxDB reachable again) until all are queryable. The broker
  plays no part here. Ratio to the InfluxDB floor.
- live: readings published while the recorder runs (limited by the one publisher).

    uv run python bench/bench_recorder_ingest.py [--points 60000] [--connectors 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.devbroker import LocalMosquitto, free_port
from voltbus_common.devinflux import LocalInfluxDB
from voltbus_common.enums import ServiceState
from voltbus_common.models import MeterReading
from voltbus_common.settings import BusSettings
from voltbus_recorder import points

BATCH = 5000


def readings(n: int, connectors: int, run: int) -> list[tuple[int, MeterReading]]:
    """n readings spread over connectors, one second apart per connector."""
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=run)
    return [(1 + i % connectors, MeterReading(
        energy_wh=1000.0 + i, power_w=7000.0 + i % 100, current_a=[10.0, 10.1, 10.2],
        voltage_v=[230.0, 231.0, 229.0], ts=start + timedelta(seconds=i // connectors)))
        for i in range(n)]


# One client for all polling: a new httpx client loads the CA bundle each time (~70 ms of CPU),
# which would steal CPU from the processes being measured.
_HTTP = httpx.Client(timeout=30)


def count(influx: str, db: str) -> int:
    """Meter points queryable in db."""
    body = _HTTP.get(f"{influx}/query", params={"q": "SELECT count(energy_wh) FROM meter",
                                                "db": db}).json()
    result = body["results"][0]
    return int(result["series"][0]["values"][0][1]) if "series" in result else 0


def direct(influx: str, station: str, data: list[tuple[int, MeterReading]], db: str) -> float:
    """Points/s writing the same lines straight to /write in sequential 5000-point batches."""
    _HTTP.post(f"{influx}/query", params={"q": f'CREATE DATABASE "{db}"'})
    lines = [points.meter(station, c, r) for c, r in data]
    with httpx.Client(timeout=60) as client:
        t0 = time.perf_counter()
        for i in range(0, len(lines), BATCH):
            response = client.post(f"{influx}/write", params={"db": db, "precision": "ns"},
                                    content="\n".join(lines[i:i + BATCH]).encode())
            response.raise_for_status()
        elapsed = time.perf_counter() - t0
    assert count(influx, db) == len(lines)
    return len(lines) / elapsed


class Recorder:
    """The recorder as its own process, and a watcher for its `online` status."""

    def __init__(self, broker: LocalMosquitto, influx: str, station: str, db: str,
                 work: Path) -> None:
        self.env = {**os.environ, **broker.env("recorder"), "VOLTBUS_STATIONS": station,
                    "VOLTBUS_DATA_DIR": str(work / station), "VOLTBUS_INFLUX_URL": influx,
                    "VOLTBUS_INFLUX_DATABASE": db, "VOLTBUS_LOG_LEVEL": "WARNING"}
        self.log = work / f"{station}.log"
        self.work, self.station = work, station
        self.proc: subprocess.Popen[bytes] | None = None
        self.online = asyncio.Event()
        self.watcher = Bus(broker_settings(broker, station, "operator"), station=station,
                           service=None)
        self.watcher.on(ch.SERVICE_STATUS, self._status, service="recorder")

    async def _status(self, msg: Received[ServiceState]) -> None:
        if msg.payload is ServiceState.ONLINE and not msg.retain:
            self.online.set()

    async def start(self) -> float:
        """Start the process; return the perf_counter time it came online on the bus."""
        self.online.clear()
        self._spawn()
        await asyncio.wait_for(self.online.wait(), 30)
        return time.perf_counter()

    def _spawn(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "voltbus_recorder"],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        """SIGTERM (clean: its persistent MQTT session stays, the broker queues for it)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def failed(self) -> str | None:
        """The log tail if the process died."""
        if self.proc is not None and self.proc.poll() is not None:
            return self.log.read_text()[-2000:]
        return None


async def wait_count(influx: str, db: str, n: int, rec: Recorder) -> float:
    """Wait until n meter points are in InfluxDB; return the perf_counter time.

    The recorder deletes a point from its spool only once InfluxDB acknowledged it, so InfluxDB is
    asked to count (a query that costs it CPU the writes need) only while the spool is empty.
    """
    deadline = time.monotonic() + 300
    asked = 0.0
    while True:
        now = time.perf_counter()
        if now - asked >= 0.1 and await asyncio.to_thread(spool_empty, rec.work, rec.station):
            asked = now
            if (got := await asyncio.to_thread(count, influx, db)) >= n:
                return now
            if time.monotonic() > deadline or rec.failed():
                raise RuntimeError(f"recorder got {got} of {n}; log: {rec.failed()}")
        await asyncio.sleep(0.02)


async def through_recorder(broker: LocalMosquitto, influx: str, station: str,
                           data: list[tuple[int, MeterReading]], db: str,
                           work: Path) -> tuple[float, float, float]:
    """(live points/s, publisher msg/s, backlog points/s) through the recorder process.

    live: readings published while the recorder runs (limited by the one publisher on a
    shared CPU). backlog: the same number published while the recorder was stopped and queued
    by the broker for its persistent session, timed from the moment it is back online: what
    the recorder itself sustains.
    """
    rec = Recorder(broker, influx, station, db, work)
    hw = Bus(broker_settings(broker, station, "hardware"), station=station, service=None,
             outbox_limit=2 * len(data) + 10)
    tasks = [asyncio.create_task(hw.run()), asyncio.create_task(rec.watcher.run())]
    try:
        await hw.wait_connected(10)
        await rec.watcher.wait_connected(10)
        await rec.start()
        t0 = time.perf_counter()
        for connector, reading in data:
            hw.publish(ch.METER, reading, connector=connector)
        await hw.drain(300)
        published = time.perf_counter() - t0
        live = len(data) / (await wait_count(influx, db, len(data), rec) - t0)
        rec.stop()
        later = [(c, r.model_copy(update={"ts": r.ts + timedelta(days=1)})) for c, r in data]
        for connector, reading in later:
            hw.publish(ch.METER, reading, connector=connector)
        await hw.drain(300)
        await asyncio.sleep(1.0)  # the broker has queued them all
        t1 = await rec.start()
        backlog = len(later) / (await wait_count(influx, db, 2 * len(data), rec) - t1)
    finally:
        rec.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return live, len(data) / published, backlog


async def aiomqtt_floor(broker: LocalMosquitto, station: str,
                        backlog: Callable[[], Awaitable[None]], n: int) -> float:
    """msg/s of a bare aiomqtt subscriber draining n readings the broker queued for it."""
    import aiomqtt

    kwargs: dict[str, Any] = {
        "hostname": "127.0.0.1", "port": broker.port, "username": "recorder",
        "password": broker.passwords["recorder"], "identifier": f"floor-aiomqtt-{station}",
        "clean_session": False}
    async with aiomqtt.Client(**kwargs) as client:
        await client.subscribe(ch.METER.filter(broker.root, station=station), qos=1)
    await backlog()
    got = 0
    async with aiomqtt.Client(**kwargs) as client:
        t0 = time.perf_counter()
        async for _ in client.messages:
            got += 1
            if got >= n:
                break
        return n / (time.perf_counter() - t0)


def paho_floor(broker: LocalMosquitto, station: str, n: int, *, subscribe: bool) -> float:
    """msg/s of a bare paho subscriber (its own network loop in a thread), as aiomqtt_floor."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    done, times, got = threading.Event(), [0.0, 0.0], [0]

    def on_connect(*_: object) -> None:
        times[0] = time.perf_counter()

    def on_message(*_: object) -> None:
        got[0] += 1
        if got[0] == n:
            times[1] = time.perf_counter()
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"floor-paho-{station}",
                         clean_session=False)
    client.username_pw_set("recorder", broker.passwords["recorder"])
    client.on_connect, client.on_message = on_connect, on_message
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        if subscribe:
            client.subscribe(ch.METER.filter(broker.root, station=station), qos=1)
            time.sleep(0.5)
            return 0.0
        if not done.wait(300):
            raise RuntimeError(f"paho floor got {got[0]} of {n}")
        return n / (times[1] - times[0])
    finally:
        client.disconnect()
        client.loop_stop()


async def floors(broker: LocalMosquitto, station: str, data: list[tuple[int, MeterReading]]
                 ) -> tuple[float, float]:
    """(aiomqtt, paho) receive floors for the same readings through the same broker."""
    hw = Bus(broker_settings(broker, station, "hardware"), station=station, service=None,
             outbox_limit=2 * len(data) + 10)
    task = asyncio.create_task(hw.run())
    try:
        await hw.wait_connected(10)
        await asyncio.to_thread(paho_floor, broker, station, len(data), subscribe=True)

        async def backlog() -> None:
            for connector, reading in data:
                hw.publish(ch.METER, reading, connector=connector)
            await hw.drain(300)
            await asyncio.sleep(1.0)  # the broker has queued them all

        a = await aiomqtt_floor(broker, station, backlog, len(data))
        p = await asyncio.to_thread(paho_floor, broker, station, len(data), subscribe=False)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return a, p


def spool_empty(work: Path, station: str) -> bool:
    """Whether a recorder's spool holds nothing (cheap: one row looked up, not counted)."""
    path = work / station / "recorder" / "spool.sqlite3"
    if not path.exists():
        return True
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT id FROM spool LIMIT 1").fetchone() is None


def spooled(work: Path, station: str) -> int:
    """Points in a recorder's spool file."""
    path = work / station / "recorder" / "spool.sqlite3"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])


async def drain(broker: LocalMosquitto, influx: str, station: str,
                data: list[tuple[int, MeterReading]], db: str, work: Path) -> float:
    """points/s from the recorder's spool into InfluxDB (readings spooled while it was away)."""
    nowhere = Recorder(broker, f"http://127.0.0.1:{free_port()}", station, db, work)
    hw = Bus(broker_settings(broker, station, "hardware"), station=station, service=None,
             outbox_limit=2 * len(data) + 10)
    tasks = [asyncio.create_task(hw.run()), asyncio.create_task(nowhere.watcher.run())]
    rec = Recorder(broker, influx, station, db, work)
    try:
        await hw.wait_connected(10)
        await nowhere.watcher.wait_connected(10)
        await nowhere.start()
        for connector, reading in data:
            hw.publish(ch.METER, reading, connector=connector)
        await hw.drain(300)
        deadline = time.monotonic() + 300
        while await asyncio.to_thread(spooled, work, station) < len(data):
            if time.monotonic() > deadline or nowhere.failed():
                raise RuntimeError(f"spool did not fill; log: {nowhere.failed()}")
            await asyncio.sleep(0.1)
        nowhere.stop()
        rec.watcher = nowhere.watcher
        rec.online = nowhere.online
        t1 = await rec.start()
        return len(data) / (await wait_count(influx, db, len(data), rec) - t1)
    finally:
        nowhere.stop()
        rec.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def broker_settings(broker: LocalMosquitto, station: str, user: str) -> BusSettings:
    """Bus settings for a user of the bench broker."""
    return BusSettings(mqtt_host="127.0.0.1", mqtt_port=broker.port, mqtt_username=user,
                       mqtt_password=broker.passwords[user], root=broker.root,
                       stations=[station])


async def main(args: argparse.Namespace) -> None:
    figures: dict[str, list[float]] = {k: [] for k in (
        "aiomqtt", "paho", "backlog", "live", "publisher", "direct", "drain")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = LocalMosquitto(work / "mosquitto")
        broker.prepare()
        influx = LocalInfluxDB(work / "influxdb")
        try:
            broker.start()
            influx.start()
            for run in range(args.runs):
                data = readings(args.points, args.connectors, run * 3)
                a, p = await floors(broker, f"F{run}", data)
                r, pub, b = await through_recorder(broker, influx.url, f"R{run}", data,
                                                   f"recorder_{run}", work)
                # InfluxDB's floor right before the drain, in the state the writes so far left
                # it in (compactions of the earlier databases run in its background).
                d = direct(influx.url, f"D{run}", data, f"direct_{run}")
                dr = await drain(broker, influx.url, f"S{run}", data, f"drain_{run}", work)
                for key, value in zip(figures, (a, p, b, r, pub, d, dr), strict=True):
                    figures[key].append(value)
                print(f"run {run + 1}: floors aiomqtt {a:,.0f} paho {p:,.0f} msg/s, recorder "
                      f"backlog {b:,.0f}; direct /write {d:,.0f}, recorder drain {dr:,.0f}; "
                      f"live {r:,.0f} (publisher {pub:,.0f} msg/s) points/s", flush=True)
        finally:
            influx.stop()
            broker.stop()
    m = {k: statistics.median(v) for k, v in figures.items()}
    print(f"\n{args.points} meter readings, {args.connectors} connectors, {args.runs} runs "
          f"(medians), {os.cpu_count()} CPUs shared by broker, InfluxDB, recorder, publisher:")
    print(f"  MQTT receive floor, bare aiomqtt subscriber : {m['aiomqtt']:>9,.0f} msg/s")
    print(f"  MQTT receive floor, bare paho subscriber    : {m['paho']:>9,.0f} msg/s")
    print(f"  recorder, broker backlog -> InfluxDB        : {m['backlog']:>9,.0f} points/s")
    print(f"  InfluxDB floor, direct /write 5000-batches  : {m['direct']:>9,.0f} points/s")
    print(f"  recorder, spool drain -> InfluxDB           : {m['drain']:>9,.0f} points/s")
    print(f"  recorder, live publishing -> InfluxDB       : {m['live']:>9,.0f} points/s "
          f"(the one publisher: {m['publisher']:,.0f} msg/s)")
    print("ratios (per run, then median):")
    for name, num, den in (("backlog / aiomqtt floor", "backlog", "aiomqtt"),
                           ("backlog / paho floor", "backlog", "paho"),
                           ("drain / InfluxDB floor", "drain", "direct"),
                           ("backlog / InfluxDB floor", "backlog", "direct")):
        per_run = [x / y for x, y in zip(figures[num], figures[den], strict=True)]
        print(f"  {name:<26}: {statistics.median(per_run):6.2f}   "
              f"({', '.join(f'{r:.2f}' for r in per_run)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=60_000)
    parser.add_argument("--connectors", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
