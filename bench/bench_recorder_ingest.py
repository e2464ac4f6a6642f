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

from voltbus_common import channels as ch  # noqa: E402
from voltbus_common.bus import Bus  # noqa: E402
from voltbus_common.devbroker import LocalMosquitto  # noqa: E402
from voltbus_common.devinflux import LocalInfluxDB  # noqa: E402
from voltbus_common.models import MeterReading  # noqa: E402
from voltbus_recorder import points  # noqa: E402

BATCH = 5000


def readings(n: int, connectors: int, run: int) -> list[tuple[int, MeterReading]]:
    """n readings spread over connectors, one second apart per connector."""
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=run)
    return [(1 + i % connectors, MeterReading(
        energy_wh=1000.0 + i, power_w=7000.0 + i % 100, current_a=[10.0, 10.1, 10.2],
        voltage_v=[230.0, 231.0, 229.0], ts=start + timedelta(seconds=i // connectors)))
        for i in range(n)]


def count(influx: str, db: str) -> int:
    """Meter points queryable in db."""
    body = httpx.get(f"{influx}/query", params={"q": "SELECT count(energy_wh) FROM meter",
                                                "db": db}, timeout=30).json()
    result = body["results"][0]
    return int(result["series"][0]["values"][0][1]) if "series" in result else 0


def direct(influx: str, station: str, data: list[tuple[int, MeterReading]], db: str) -> float:
    """Points/s writing the same lines straight to /write in sequential 5000-point batches."""
    httpx.post(f"{influx}/query", params={"q": f'CREATE DATABASE "{db}"'})
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


async def through_recorder(broker: LocalMosquitto, influx: str, station: str,
                           data: list[tuple[int, MeterReading]], db: str,
                           work: Path) -> tuple[float, float]:
    """(recorder points/s end to end, publisher messages/s)."""
    env = {**os.environ, **broker.env("recorder"), "VOLTBUS_STATIONS": station,
           "VOLTBUS_DATA_DIR": str(work / station), "VOLTBUS_INFLUX_URL": influx,
           "VOLTBUS_INFLUX_DATABASE": db, "VOLTBUS_LOG_LEVEL": "WARNING"}
    log = open(work / f"{station}.log", "wb")  # noqa: SIM115, ASYNC230 - lives with the process
    proc = subprocess.Popen([sys.executable, "-m", "voltbus_recorder"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    settings = broker_settings(broker, station)
    hw = Bus(settings, station=station, service=None, outbox_limit=len(data) + 10)
    task = asyncio.create_task(hw.run())
    try:
        await hw.wait_connected(10)
        await asyncio.sleep(1.5)  # the recorder subscribes
        t0 = time.perf_counter()
        for connector, reading in data:
            hw.publish(ch.METER, reading, connector=connector)
        await hw.drain(120)
        published = time.perf_counter() - t0
        deadline = time.monotonic() + 300
        while await asyncio.to_thread(count, influx, db) < len(data):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"recorder got {count(influx, db)} of {len(data)}; "
                                   f"log: {(work / f'{station}.log').read_text()[-2000:]}")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        proc.terminate()
        proc.wait(10)
    return len(data) / elapsed, len(data) / published


def broker_settings(broker: LocalMosquitto, station: str):  # type: ignore[no-untyped-def]
    from voltbus_common.settings import BusSettings  # noqa: PLC0415

    return BusSettings(mqtt_host="127.0.0.1", mqtt_port=broker.port, mqtt_username="hardware",
                       mqtt_password=broker.passwords["hardware"], root=broker.root,
                       stations=[station])


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = LocalMosquitto(work / "mosquitto")
        broker.prepare()
        broker.start()
        influx = LocalInfluxDB(work / "influxdb")
        (work / "influxdb").mkdir()  # LocalInfluxDB.start opens its log before creating the dir
        influx.start()
        try:
            rec, pub, dir_ = [], [], []
            for run in range(args.runs):
                data = readings(args.points, args.connectors, run)
                dir_.append(direct(influx.url, f"D{run}", data, f"direct_{run}"))
                r, p = await through_recorder(broker, influx.url, f"R{run}", data,
                                              f"recorder_{run}", work)
                rec.append(r)
                pub.append(p)
                print(f"run {run + 1}: recorder {r:,.0f} points/s (publisher {p:,.0f} msg/s), "
                      f"direct {dir_[-1]:,.0f} points/s", flush=True)
        finally:
            influx.stop()
            broker.stop()
    r, d = statistics.median(rec), statistics.median(dir_)
    print(f"\n{args.points} meter readings, {args.connectors} connectors, {args.runs} runs "
          f"(medians):")
    print(f"  recorder, bus -> spool -> InfluxDB : {r:>10,.0f} points/s")
    print(f"  publisher (one bus client, QoS 0)  : {statistics.median(pub):>10,.0f} msg/s")
    print(f"  direct /write, 5000-point batches  : {d:>10,.0f} points/s")
    print(f"  ratio recorder / direct            : {r / d:>10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=60_000)
    parser.add_argument("--connectors", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
