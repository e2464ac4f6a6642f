"""Energy manager: reaction from a grid-meter step to the new limits on the bus, and CPU per
controlled connector at a 1 s control period, for 1, 10 and 100 connectors.

A real Mosquitto and `python -m voltbus_energy` as a process (grid meter: an MQTT JSON topic).
The bench plays the grid meter (one reading a second, plus the steps), the gateway (a running
transaction per connector, retained) and the hardware (one meter reading per connector a second).

* reaction: the house load steps between 4 A and half the fuse; the time from publishing the
  stepped grid reading until every connector's limit on the bus is the new decision (computed
  by the bench with the same pure allocator; at 100 connectors most are paused at 0 A, as a
  100 A fuse cannot give 100 cars 6 A). The floor is two MQTT hops (grid in, limit out),
  measured in the same run.
* CPU: the energy process's user+system time over a window of steady load, per connector.
* step: the manager's decision alone, in process (no broker), per call.

    uv run python bench/bench_energy.py [--steps 100] [--cpu-seconds 30] [--sizes 1,10,100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.energy.site_sim import SiteSim
from tests.fixtures.services import ServiceGroup, cpu_seconds, rss_kib, wait_online
from voltbus_common import channels as ch
from voltbus_common.bus import _NODELAY, Bus, Received
from voltbus_common.devbroker import LocalMosquitto
from voltbus_common.enums import ChargeMode
from voltbus_common.models import (
    ChargeModeSetting,
    EnergyLimitCommand,
    MeterReading,
    TransactionState,
)
from voltbus_common.settings import BusSettings
from voltbus_energy.fuse import Demand, Grid, Site, allocate
from voltbus_energy.manager import ConnectorView

PER_STATION = 25
LOW_HOUSE_A = 4.0


def pct(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def layout(n: int) -> list[tuple[str, int]]:
    """(station, connector) for n connectors, 25 per station (own stations for each n)."""
    return [(f"E{n}B{i // PER_STATION}", i % PER_STATION + 1) for i in range(n)]


def settings(broker: LocalMosquitto, user: str, stations: list[str]) -> BusSettings:
    return BusSettings(mqtt_host="127.0.0.1", mqtt_port=broker.port, mqtt_username=user,
                       mqtt_password=broker.passwords[user], root=broker.root, stations=stations)


class _Broker:
    """What wait_online needs of a broker: settings for a user."""

    def __init__(self, broker: LocalMosquitto) -> None:
        self.broker = broker

    def settings(self, user: str, *, stations: list[str]) -> BusSettings:
        return settings(self.broker, user, stations)


class Rig:
    """The bench's side of the bus: grid meter, gateway and hardware roles, and a listener."""

    def __init__(self, broker: LocalMosquitto, n: int, grid_topic: str) -> None:
        self.broker, self.n, self.grid_topic = broker, n, grid_topic
        self.connectors = layout(n)
        self.stations = sorted({s for s, _ in self.connectors})
        self.fuse_a = min(100.0, max(25.0, 10.0 * n))  # the contract's most is 100 A
        self.high_house_a = self.fuse_a / 2
        self.limits: dict[tuple[str, int], float] = {}
        self.changed = asyncio.Event()
        self.listener = Bus(settings(broker, "operator", self.stations), station=self.stations[0],
                            service=None)
        self.gateway = Bus(settings(broker, "gateway", self.stations), station=self.stations[0],
                           service=None)
        self.hardware = Bus(settings(broker, "hardware", self.stations),
                            station=self.stations[0], service=None)
        for station in self.stations:
            self.listener.on(ch.ENERGY_LIMIT, self._limit, station=station)
        self.house_a = LOW_HOUSE_A

    async def _limit(self, msg: Received[EnergyLimitCommand]) -> None:
        if msg.payload is not None:
            self.limits[(msg.station, msg.connector)] = msg.payload.amps
            self.changed.set()

    def start_sessions(self) -> None:
        now = datetime.now(UTC)
        for station, connector in self.connectors:
            self.gateway.publish(ch.TRANSACTION, TransactionState(
                transaction_id=connector, id_tag="BENCH", started_at=now, meter_start_wh=0.0),
                station=station, connector=connector)

    def meter_readings(self, energy_wh: float) -> None:
        """One reading per connector: the car draws nothing (the grid is the house alone)."""
        for station, connector in self.connectors:
            self.hardware.publish(ch.METER, MeterReading(
                energy_wh=energy_wh, power_w=0.0, current_a=[0.0, 0.0, 0.0],
                voltage_v=[230.0, 230.0, 230.0]), station=station, connector=connector)

    def expected(self) -> dict[tuple[str, int], float]:
        """The limits the fuse guard must give for the house now (the same pure allocator)."""
        h = self.house_a
        demands = [Demand(f"{s}/{c}", (0, 1, 2), 16.0) for s, c in self.connectors]
        got = allocate(Site(fuse_a=self.fuse_a), Grid((h, h, h), 3 * h * 230.0), demands)
        return {(s, c): got[f"{s}/{c}"] for s, c in self.connectors}

    def grid_payload(self) -> bytes:
        amps = [self.house_a] * 3
        return json.dumps({"P": sum(amps) * 230.0, "I": amps}).encode()


async def raw_client(broker: LocalMosquitto, user: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", broker.port, username=user,
                          password=broker.passwords[user], socket_options=_NODELAY)


async def mqtt_hop(broker: LocalMosquitto, n: int) -> list[float]:
    """QoS 0 publish in one client -> message in another (the grid reading's hop)."""
    samples: list[float] = []
    topic = "homeassistant/sensor/bench/hop"
    async with await raw_client(broker, "homeassistant") as tx, \
            await raw_client(broker, "energy") as rx:
        await rx.subscribe(topic, qos=0)
        it = rx.messages.__aiter__()
        for i in range(n):
            start = time.perf_counter()
            await tx.publish(topic, str(i).encode(), qos=0)
            await it.__anext__()
            samples.append(time.perf_counter() - start)
    return samples[n // 10:]


async def reaction(rig: Rig, feeder: aiomqtt.Client, steps: int
                   ) -> tuple[list[float], list[float]]:
    """Grid step published -> every connector's new limit received; and, for the steps up,
    -> the first lowered limit received (the cut that ends an overload)."""
    samples, cuts = [], []
    for i in range(steps):
        await asyncio.sleep(random.uniform(0.3, 0.7))
        before = dict(rig.limits)
        rig.house_a = rig.high_house_a if i % 2 == 0 else LOW_HOUSE_A
        want = rig.expected()
        start = time.perf_counter()
        cut_at = None
        await feeder.publish(rig.grid_topic, rig.grid_payload(), qos=0)
        while rig.limits != want:
            rig.changed.clear()
            await asyncio.wait_for(rig.changed.wait(), 10)
            if cut_at is None and any(rig.limits[k] < before[k] for k in before):
                cut_at = time.perf_counter()
        samples.append(time.perf_counter() - start)
        if i % 2 == 0:
            cuts.append((cut_at or time.perf_counter()) - start)
    return samples, cuts


async def steady(rig: Rig, feeder: aiomqtt.Client, seconds: float) -> None:
    """One grid reading and one meter reading per connector a second."""
    energy = 0.0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        tick = loop.time()
        energy += 1.0
        rig.meter_readings(energy)
        await feeder.publish(rig.grid_topic, rig.grid_payload(), qos=0)
        await asyncio.sleep(max(0.0, 1.0 - (loop.time() - tick)))


async def one_size(broker: LocalMosquitto, work: Path, n: int, steps: int, cpu_s: float
                   ) -> dict[str, Any]:
    grid_topic = f"homeassistant/sensor/bench{n}/grid/state"
    rig = Rig(broker, n, grid_topic)
    group = ServiceGroup(work)
    tasks = [asyncio.create_task(b.run()) for b in (rig.listener, rig.gateway, rig.hardware)]
    try:
        for b in (rig.listener, rig.gateway, rig.hardware):
            await b.wait_connected(10)
        rig.start_sessions()
        rig.meter_readings(0.0)
        site = f"ESITE{n}"
        proc = group.start("energy", {
            **broker.env("energy"), "VOLTBUS_STATIONS": ",".join(rig.stations),
            "VOLTBUS_ENERGY_SITE": site, "VOLTBUS_ENERGY_CONNECTORS": str(min(n, PER_STATION)),
            "VOLTBUS_ENERGY_FUSE_A": str(rig.fuse_a), "VOLTBUS_ENERGY_PERIOD_S": "1",
            "VOLTBUS_ENERGY_GRID": "mqtt", "VOLTBUS_ENERGY_GRID_TOPIC": grid_topic,
            "VOLTBUS_ENERGY_GRID_POWER_PATH": "P",
            "VOLTBUS_ENERGY_GRID_CURRENT_PATHS": "I[0],I[1],I[2]",
            "VOLTBUS_DATA_DIR": str(work / "data"),
            "VOLTBUS_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING")})
        await wait_online(_Broker(broker), site, ("energy",))
        async with await raw_client(broker, "homeassistant") as feeder:
            await feeder.publish(grid_topic, rig.grid_payload(), qos=0)
            deadline = time.monotonic() + 20
            while rig.limits != rig.expected():
                if time.monotonic() > deadline:
                    want = rig.expected()
                    diff = {k: (v, want.get(k)) for k, v in rig.limits.items() if v != want.get(k)}
                    raise TimeoutError(f"limits not as expected: {list(diff.items())[:8]}\n"
                                       + group.logs()[-3000:])
                await asyncio.sleep(0.1)
                await feeder.publish(grid_topic, rig.grid_payload(), qos=0)
            react, cuts = await reaction(rig, feeder, steps)
            await steady(rig, feeder, 3.0)  # settle
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            await steady(rig, feeder, cpu_s)
            cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            rss = rss_kib(proc.pid) / 1024
        return {"n": n, "react": react, "cuts": cuts, "cpu": cpu, "rss": rss}
    finally:
        group.stop_all()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def step_cost(n: int, calls: int = 2000) -> list[float]:
    """manager.step() alone for n charging connectors (now mode), seconds per call."""
    views = [ConnectorView(s, c, (0, 1, 2), 16.0) for s, c in layout(n)]
    sim = SiteSim(views, fuse_a=min(100.0, max(25.0, 10.0 * n)),
                  start=datetime(2026, 12, 3, tzinfo=UTC))
    for v in views:
        sim.manager.set_mode(v.station, v.connector, ChargeModeSetting(mode=ChargeMode.NOW))
        sim.plug_in(v.key)
    out = []
    for _ in range(calls):
        sim.house_a = (random.uniform(0, 10),) * 3
        sim.manager.on_grid(sim.grid())
        start = time.perf_counter()
        sim.manager.step()
        out.append(time.perf_counter() - start)
        sim.bus._outbox.clear()  # never connected: keep the queue from growing
    return out


async def main(steps: int, cpu_s: float, sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = LocalMosquitto(work / "mosquitto")
        broker.prepare()
        broker.start()
        try:
            hop = await mqtt_hop(broker, 1000)
            floor50, floor99 = 2 * pct(hop, 0.5), 2 * pct(hop, 0.99)
            print(f"floor: 2 MQTT hops                  p50 {floor50:7.2f} ms   "
                  f"p99 {floor99:7.2f} ms")
            for n in sizes:
                r = await one_size(broker, work, n, steps, cpu_s)
                react = r["react"]
                print(f"{n:>3} connectors: grid step -> limits  p50 {pct(react, 0.5):7.2f} ms   "
                      f"p99 {pct(react, 0.99):7.2f} ms   (x{pct(react, 0.5) / floor50:.1f} / "
                      f"x{pct(react, 0.99) / floor99:.1f} the floor, n={len(react)})")
                cuts = r["cuts"]
                print(f"{'':>16}grid step up -> first cut  p50 {pct(cuts, 0.5):7.2f} ms   "
                      f"p99 {pct(cuts, 0.99):7.2f} ms   (n={len(cuts)})")
                print(f"{'':>16}CPU {r['cpu'] * 100:6.2f} % of a core = "
                      f"{r['cpu'] * 1000 / n:6.3f} ms CPU per connector per second   "
                      f"RSS {r['rss']:.1f} MiB")
            for n in sizes:
                cost = step_cost(n)
                med = statistics.median(cost) * 1e6
                print(f"{n:>3} connectors: manager.step() alone median {med:8.1f} us "
                      f"({med / n:6.1f} us per connector), p99 {pct(cost, 0.99) * 1000:8.1f} us")
        finally:
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--cpu-seconds", type=float, default=30.0)
    parser.add_argument("--sizes", default="1,10,100")
    args = parser.parse_args()
    asyncio.run(main(args.steps, args.cpu_seconds, [int(s) for s in args.sizes.split(",")]))
