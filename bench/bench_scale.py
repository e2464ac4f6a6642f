"""The whole pipeline at scale: N simulated connectors charging, metering every second, end to end.

Starts a real Mosquitto, a local InfluxDB 1.x, the development central system, and the hardware
(simulated), gateway and recorder services as processes, for N connectors split into stations of
`--per-station` connectors. Every connector is plugged in and tapped until it charges, then for
`--seconds` it counts, side by side:

- meter readings published on the bus (`hw/{c}/meter`, one bare subscriber counting) and meter
  points stored in InfluxDB (`meter` measurement), both by the reading's own timestamp,
- MeterValues received by the central system over the window (MeterValueSampleInterval = the meter
  interval), against the number expected,
- the gateway outbox backlog (rows waiting in each station's sqlite outbox) at start and end,
- CPU per service as a share of one core over the window, and its RSS.

    uv run python bench/bench_scale.py --connectors 100 [--per-station 10] [--seconds 60]

Issue 14's goal: 1000 connectors, zero readings lost, MeterValues on time, no growing backlog,
the whole pipeline on at most one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.services import ServiceGroup, cpu_seconds, rss_kib
from voltbus_common import channels as ch
from voltbus_common.bus import _NODELAY
from voltbus_common.devbroker import LocalMosquitto, free_port, wait_for_port
from voltbus_common.devinflux import LocalInfluxDB
from voltbus_common.enums import ConnectorStatus
from voltbus_common.models import SimPlug, SimTap

SERVICES = ("devcsms", "hardware", "gateway", "recorder")


def http_json(url: str, timeout: float = 30.0) -> object:
    """GET a URL and parse its JSON body."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def influx_count(url: str, start_ns: int, end_ns: int) -> int:
    """Meter points stored in [start, end)."""
    query = (f"SELECT count(power_w) FROM meter WHERE time >= {start_ns} AND time < {end_ns}")
    body = http_json(f"{url}/query?db=voltbus&epoch=ns&q={urllib.parse.quote(query)}")
    try:
        return int(body["results"][0]["series"][0]["values"][0][1])  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return 0


def meter_values_at_csms(http_port: int, stations: list[str]) -> int:
    """MeterValues the central system received so far, over every station."""
    total = 0
    for station in stations:
        # counts are exact; the message list keeps only the newest (VOLTBUS_DEVCSMS_HISTORY_LIMIT)
        counts = http_json(f"http://127.0.0.1:{http_port}/chargers/{station}/counts")
        total += int(counts.get("MeterValues", 0)) if isinstance(counts, dict) else 0
    return total


def outbox_backlog(data_dir: Path, stations: list[str]) -> int:
    """Rows waiting in the gateway's durable outboxes (read-only)."""
    total = 0
    for station in stations:
        path = data_dir / "gateway" / station / "state.sqlite"
        if not path.exists():
            continue
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            total += int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        except sqlite3.Error:
            pass
        finally:
            db.close()
    return total


class Watcher:
    """One bare MQTT subscriber: counts meter readings and follows connector statuses."""

    def __init__(self, broker: LocalMosquitto) -> None:
        self.broker = broker
        self.meter_ts_ns: list[int] = []  # each live reading's own timestamp
        self.status: dict[tuple[str, str], str] = {}
        self.changed = asyncio.Event()
        self.ready = asyncio.Event()

    async def run(self) -> None:
        root = self.broker.root
        async with aiomqtt.Client("127.0.0.1", self.broker.port, username="operator",
                                  password=self.broker.passwords["operator"],
                                  socket_options=_NODELAY, max_queued_incoming_messages=0) as c:
            await c.subscribe(ch.METER.filter(root, station="+"), qos=0)
            await c.subscribe(ch.OCPP_STATUS.filter(root, station="+"), qos=1)
            self.ready.set()
            async for message in c.messages:
                topic = str(message.topic)
                if topic.endswith("/meter"):
                    if not message.retain and isinstance(message.payload, bytes | bytearray):
                        with contextlib.suppress(ValueError, KeyError):
                            ts = json.loads(message.payload)["ts"].replace("Z", "+00:00")
                            self.meter_ts_ns.append(int(datetime.fromisoformat(ts).timestamp()
                                                        * 1e9))
                    continue
                args = ch.OCPP_STATUS.match(root, topic)
                if args is None or not isinstance(message.payload, bytes | bytearray):
                    continue
                with contextlib.suppress(Exception):
                    status = ch.OCPP_STATUS.decode(bytes(message.payload))
                    if status is not None:
                        self.status[(args["station"], args["connector"])] = status.status
                        self.changed.set()

    async def wait_status(self, station: str, connector: int, wanted: ConnectorStatus,
                          timeout: float) -> bool:  # noqa: ASYNC109
        """True once the connector reports `wanted` within timeout seconds."""
        deadline = time.monotonic() + timeout
        key = (station, str(connector))
        while self.status.get(key) != wanted.value:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
        return True


async def start_sessions(broker: LocalMosquitto, watcher: Watcher, stations: list[str],
                         per_station: int, timeout: float) -> tuple[int, float]:  # noqa: ASYNC109
    """Plug in and tap every connector (one station's connectors one after the other, since the
    station's reader serves whichever connector is Preparing); returns (charging, seconds)."""
    root = broker.root
    started = time.monotonic()
    async with aiomqtt.Client("127.0.0.1", broker.port, username="operator",
                              password=broker.passwords["operator"],
                              socket_options=_NODELAY) as client:
        async def one_station(index: int, station: str) -> int:
            charging = 0
            for connector in range(1, per_station + 1):
                await client.publish(ch.SIM_PLUG.topic(root, station=station, connector=connector),
                                     ch.SIM_PLUG.encode(SimPlug(plugged=True)), qos=1)
                if not await watcher.wait_status(station, connector, ConnectorStatus.PREPARING,
                                                 timeout):
                    continue
                tag = f"SCALE{index:03d}{connector:03d}"
                await client.publish(ch.SIM_TAP.topic(root, station=station),
                                     ch.SIM_TAP.encode(SimTap(id_tag=tag)), qos=1)
                if await watcher.wait_status(station, connector, ConnectorStatus.CHARGING,
                                             timeout):
                    charging += 1
            return charging

        counts = await asyncio.gather(*(one_station(i, s) for i, s in enumerate(stations)))
    return sum(counts), time.monotonic() - started


def profile(pid: int, name: str, seconds: float, directory: Path) -> subprocess.Popen[bytes]:
    """py-spy (if installed) samples a service over the window; collapsed stacks in a file."""
    directory.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(["py-spy", "record", "-p", str(pid), "-d", str(int(seconds)),
                             "-f", "raw", "-o", str(directory / f"{name}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def main(connectors: int, per_station: int, seconds: float, interval_s: float,
               profile_dir: Path | None = None) -> None:
    per_station = min(per_station, connectors)
    stations = [f"SC{i:03d}" for i in range(max(1, connectors // per_station))]
    connectors = len(stations) * per_station
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = LocalMosquitto(work / "mosquitto")
        broker.prepare()
        broker.start()
        influx = LocalInfluxDB(work / "influx")
        influx.start()
        group = ServiceGroup(work)
        data_dir = work / "data"
        try:
            ws_port, http_port = free_port(), free_port()
            base = {"VOLTBUS_STATIONS": ",".join(stations), "VOLTBUS_DATA_DIR": str(data_dir),
                    "VOLTBUS_LOG_LEVEL": "WARNING", "VOLTBUS_CONNECTORS": str(per_station)}
            group.start("devcsms", {**base, "VOLTBUS_DEVCSMS_PORT": str(ws_port),
                                    "VOLTBUS_DEVCSMS_HTTP_PORT": str(http_port)})
            wait_for_port(ws_port, 60)
            group.start("recorder", {**base, **broker.env("recorder"), "VOLTBUS_INFLUX_API": "1",
                                     "VOLTBUS_INFLUX_URL": influx.url,
                                     "VOLTBUS_INFLUX_DATABASE": "voltbus"})
            interval = str(max(1, round(interval_s)))
            group.start("gateway", {
                **base, **broker.env("gateway"),
                "VOLTBUS_CSMS_URL": f"ws://127.0.0.1:{ws_port}/ocpp",
                "VOLTBUS_OCPP_CONFIG": json.dumps({"MeterValueSampleInterval": interval})})
            group.start("hardware", {**base, **broker.env("hardware"),
                                     "VOLTBUS_METER_INTERVAL_S": str(interval_s)})
            watcher = Watcher(broker)
            watch_task = asyncio.create_task(watcher.run())
            await asyncio.wait_for(watcher.ready.wait(), 30)
            for station in stations:  # every connector Available: the gateway is up
                for c in range(1, per_station + 1):
                    if not await watcher.wait_status(station, c, ConnectorStatus.AVAILABLE, 120):
                        raise TimeoutError(f"{station}/{c} never Available\n{group.logs()}")
            charging, took = await start_sessions(broker, watcher, stations, per_station, 60)
            print(f"connectors {connectors} ({len(stations)} stations x {per_station}), meter "
                  f"every {interval_s:g} s; charging {charging}/{connectors} after {took:.1f} s")
            await asyncio.sleep(max(5.0, 3 * interval_s))  # let the start burst settle

            procs = {p.name: p for p in group.started}
            cpu0 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
            backlog0 = outbox_backlog(data_dir, stations)
            mv0 = meter_values_at_csms(http_port, stations)
            start_ns, t0 = time.time_ns(), time.monotonic()
            spies = [profile(procs[name].pid, name, seconds, profile_dir)
                     for name in ("gateway", "devcsms", "recorder") if profile_dir]
            await asyncio.sleep(seconds)
            for spy in spies:
                spy.wait()
            end_ns, elapsed = time.time_ns(), time.monotonic() - t0
            cpu = {n: (cpu_seconds(p.pid) - cpu0[n]) / elapsed * 100 for n, p in procs.items()}
            rss = {n: rss_kib(p.pid) / 1024 for n, p in procs.items()}
            mv_n = meter_values_at_csms(http_port, stations) - mv0
            backlog1 = outbox_backlog(data_dir, stations)
            await asyncio.sleep(min(30.0, 5 + seconds / 4))  # let the recorder catch up
            stored = influx_count(influx.url, start_ns, end_ns)
            bus_n = sum(1 for ts in watcher.meter_ts_ns if start_ns <= ts < end_ns)
            expected_mv = charging * elapsed / max(1.0, round(interval_s))

            print(f"window {elapsed:.1f} s")
            print(f"meter readings on the bus      {bus_n}")
            print(f"meter points in InfluxDB       {stored}   "
                  f"({stored / bus_n:.3f} of the bus)" if bus_n else "no readings")
            print(f"MeterValues at the central sys {mv_n}   "
                  f"({mv_n / expected_mv:.3f} of {expected_mv:.0f} expected)"
                  if expected_mv else "no MeterValues expected")
            print(f"gateway outbox backlog         {backlog0} -> {backlog1}")
            total = 0.0
            for name in SERVICES:
                if name in cpu:
                    total += cpu[name]
                    print(f"{name:<10} CPU {cpu[name]:6.1f} % of one core   "
                          f"RSS {rss[name]:6.1f} MiB")
            pipeline = total - cpu.get("devcsms", 0.0)
            print(f"pipeline (hardware+gateway+recorder) {pipeline:.1f} % of one core; "
                  f"with the central system {total:.1f} %")
            watch_task.cancel()
            await asyncio.gather(watch_task, return_exceptions=True)
            errors = Counter(line.split(" ", 3)[2] for p in group.started
                             for line in p.log().splitlines() if " ERROR " in line)
            if errors:
                print(f"ERROR lines in service logs: {dict(errors)}")
        finally:
            group.stop_all()
            influx.stop()
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connectors", type=int, default=100)
    parser.add_argument("--per-station", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--meter-interval", type=float, default=1.0)
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory for py-spy profiles of gateway, devcsms and recorder")
    args = parser.parse_args()
    asyncio.run(main(args.connectors, args.per_station, args.seconds, args.meter_interval,
                     args.profile))
