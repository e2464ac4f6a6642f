"""Cost of the compose healthcheck on a Pi: the bus probe (python -m voltbus_common.healthcheck)
against the floor of starting Python at all, plus the size and build time of the HA discovery
config for 1..1000 connectors.

Each bus service runs the probe every 30 s, so its CPU time is what three services add to an idle
Pi. Runs against a local Mosquitto with one station's gateway online.
Usage: uv run python bench/bench_healthcheck.py [--n 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voltbus_common.bus import Bus
from voltbus_common.devbroker import LocalMosquitto
from voltbus_common.homeassistant import StationDiscovery
from voltbus_common.settings import BusSettings


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, child CPU seconds and exit code of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = subprocess.run(cmd, env=env, capture_output=True, check=False).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, code


def summary(name: str, runs: list[tuple[float, float, int]]) -> tuple[float, float]:
    walls = sorted(r[0] * 1000 for r in runs)
    cpus = sorted(r[1] * 1000 for r in runs)
    p99 = walls[min(len(walls) - 1, int(len(walls) * 0.99))]
    print(f"{name:<36} wall p50 {statistics.median(walls):7.1f} ms  p99 {p99:7.1f} ms   "
          f"CPU p50 {statistics.median(cpus):7.1f} ms")
    return statistics.median(walls), statistics.median(cpus)


async def online_gateway(broker: LocalMosquitto, station: str) -> asyncio.Task[None]:
    """A gateway bus that stays connected (its retained status reads online)."""
    settings = BusSettings(mqtt_port=broker.port, mqtt_username="gateway",
                           mqtt_password=broker.passwords["gateway"], root=broker.root,
                           stations=[station])
    bus = Bus(settings, station=station, service="gateway")
    task = asyncio.create_task(bus.run())
    await bus.wait_connected(10)
    await bus.drain()
    return task


def discovery_sizes() -> None:
    print("\nHA discovery config (one retained message per station):")
    for n in (1, 10, 100, 1000):
        start = time.perf_counter()
        config = StationDiscovery(station="CP1", connectors=tuple(range(1, n + 1)),
                                  max_current_a=32, min_current_a=6, sw_version="0.1.0",
                                  model="voltbus").config()
        text = json.dumps(config, separators=(",", ":"))
        ms = (time.perf_counter() - start) * 1000
        print(f"  {n:5d} connectors: {len(config['components']):6d} entities, "
              f"{len(text) / 1024:8.1f} KiB, built+encoded in {ms:7.1f} ms")


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalMosquitto(Path(tmp) / "mosquitto")
        broker.prepare()
        broker.start()
        try:
            task = await online_gateway(broker, "CP1")
            env = {**os.environ, **broker.env("gateway"), "VOLTBUS_STATIONS": "CP1"}
            probe = [sys.executable, "-m", "voltbus_common.healthcheck", "gateway"]
            floor = [sys.executable, "-c", "pass"]
            # What a probe built on the contract and BusSettings would import (pydantic).
            imports = [sys.executable, "-c",
                       "import aiomqtt, voltbus_common.channels, voltbus_common.settings"]
            runs = {name: [await asyncio.to_thread(timed, cmd, env) for _ in range(n)]
                    for name, cmd in (("python -c pass (floor)", floor),
                                      ("importing channels+settings (heavy)", imports),
                                      ("healthcheck probe (gateway online)", probe))}
            assert all(code == 0 for _, _, code in runs["healthcheck probe (gateway online)"])
            print(f"{n} runs each, this machine ({os.cpu_count()} CPUs):")
            results = {name: summary(name, r) for name, r in runs.items()}
            probe_wall, probe_cpu = results["healthcheck probe (gateway online)"]
            floor_wall, floor_cpu = results["python -c pass (floor)"]
            _, heavy_cpu = results["importing channels+settings (heavy)"]
            print(f"probe / floor: wall x{probe_wall / floor_wall:.1f}, "
                  f"CPU x{probe_cpu / floor_cpu:.1f}; heavy imports / probe: CPU "
                  f"x{heavy_cpu / probe_cpu:.1f}; three services every 30 s cost "
                  f"{3 * probe_cpu / 30 / 10:.2f} % of one core here")
            task.cancel()
        finally:
            broker.stop()
    discovery_sizes()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30)
    asyncio.run(main(parser.parse_args().n))
