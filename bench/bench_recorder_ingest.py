"""Recorder ingest throughput: points/s from the bus into InfluxDB, against the direct floor.

Starts a real Mosquitto and a real InfluxDB 1.x, runs the recorder as its own process
(`python -m voltbus_recorder`, default settings: batches of 5000, spool fsync on), and publishes
meter readings for many connectors as fast as one bus client can. The figure is the rate from the
first publish until the last reading is queryable in InfluxDB. In the same run, the same points
are written straight to InfluxDB's `/write` in one sequential stream of 5000-point batches (the
floor: what InfluxDB itself takes). The ratio recorder/direct is the figure to report.

    uv run python bench/bench_recorder_ingest.py [--points 60000] [--connectors 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.devbroker import LocalMosquitto
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
    """Wait until n meter points are queryable; return the perf_counter time."""
    deadline = time.monotonic() + 300
    while (got := await asyncio.to_thread(count, influx, db)) < n:
        if time.monotonic() > deadline or rec.failed():
            raise RuntimeError(f"recorder got {got} of {n}; log: {rec.failed()}")
        await asyncio.sleep(0.05)
    return time.perf_counter()


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


def broker_settings(broker: LocalMosquitto, station: str, user: str) -> BusSettings:
    """Bus settings for a user of the bench broker."""
    return BusSettings(mqtt_host="127.0.0.1", mqtt_port=broker.port, mqtt_username=user,
                       mqtt_password=broker.passwords[user], root=broker.root,
                       stations=[station])


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = LocalMosquitto(work / "mosquitto")
        broker.prepare()
        influx = LocalInfluxDB(work / "influxdb")
        try:
            broker.start()
            influx.start()
            live, pub, backlog, dir_ = [], [], [], []
            for run in range(args.runs):
                data = readings(args.points, args.connectors, run * 3)
                dir_.append(direct(influx.url, f"D{run}", data, f"direct_{run}"))
                r, p, b = await through_recorder(broker, influx.url, f"R{run}", data,
                                                 f"recorder_{run}", work)
                live.append(r)
                pub.append(p)
                backlog.append(b)
                print(f"run {run + 1}: recorder live {r:,.0f} points/s (publisher {p:,.0f} "
                      f"msg/s), backlog {b:,.0f} points/s; direct {dir_[-1]:,.0f} points/s",
                      flush=True)
        finally:
            influx.stop()
            broker.stop()
    b, d = statistics.median(backlog), statistics.median(dir_)
    print(f"\n{args.points} meter readings, {args.connectors} connectors, {args.runs} runs "
          f"(medians), {os.cpu_count()} CPUs shared by broker, InfluxDB, recorder, publisher:")
    print(f"  recorder, broker backlog -> InfluxDB  : {b:>10,.0f} points/s")
    print(f"  recorder, live publishing -> InfluxDB : {statistics.median(live):>10,.0f} points/s")
    print(f"    (the one publisher managed           {statistics.median(pub):>10,.0f} msg/s)")
    print(f"  direct /write, 5000-point batches     : {d:>10,.0f} points/s")
    print(f"  ratio recorder (backlog) / direct     : {b / d:>10.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=60_000)
    parser.add_argument("--connectors", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
