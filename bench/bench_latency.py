"""Tap-to-relay latency through the real stack, against the raw floor of the same hops.

Starts a real Mosquitto, the development central system and the OCPP gateway as processes, plays
the hardware role on the bus, and times RFID event published -> relay/set received over many
sessions. In the same run it measures the floors: one MQTT QoS 1 hop and one OCPP call over a
WebSocket (Heartbeat, `ocpp` package on both sides), and one durable sqlite commit. Tap-to-relay
needs two MQTT hops (rfid in, relay/set out), one OCPP round trip (Authorize) and one durable write
(StartTransaction goes to the outbox before the relay closes; the relay does not wait for its
answer), so the floor is 2 x hop + 1 x call + 1 x commit. Then it reports each service's idle
resident memory and CPU.

    uv run python bench/bench_latency.py [--sessions 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.services import ServiceGroup, cpu_seconds, rss_kib
from voltbus_common import channels as ch
from voltbus_common.bus import _NODELAY, Bus, Received
from voltbus_common.devbroker import LocalMosquitto, free_port, wait_for_port
from voltbus_common.enums import ConnectorStatus, PilotState
from voltbus_common.models import MeterReading, PilotEvent, RelayState, RfidSeen
from voltbus_common.settings import BusSettings


def pct(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def summary(name: str, samples: list[float]) -> str:
    return (f"{name:<34} p50 {pct(samples, 0.5):7.2f} ms   p99 {pct(samples, 0.99):7.2f} ms"
            f"   (n={len(samples)})")


async def mqtt_hop(broker: LocalMosquitto, n: int) -> list[float]:
    """QoS 1 publish in one client -> message in another, both with TCP_NODELAY."""
    samples: list[float] = []
    kw = {"username": "operator", "password": broker.passwords["operator"],
          "socket_options": _NODELAY}
    topic = ch.SIM_TAP.topic(broker.root, station="hop-bench")  # a topic `operator` may write
    async with aiomqtt.Client("127.0.0.1", broker.port, **kw) as rx, \
            aiomqtt.Client("127.0.0.1", broker.port, **kw) as tx:
        await rx.subscribe(topic, qos=1)
        messages = aiomqtt_iter(rx)
        for i in range(n):
            start = time.perf_counter()
            await tx.publish(topic, str(i).encode(), qos=1)
            await anext(messages)
            samples.append(time.perf_counter() - start)
    return samples[n // 10:]


async def aiomqtt_iter(client: aiomqtt.Client):  # type: ignore[no-untyped-def]
    async for message in client.messages:
        yield message


class _Csms(ChargePoint):
    @on("Heartbeat")
    async def heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time="2026-01-01T00:00:00Z")


async def ocpp_call(n: int) -> list[float]:
    """One OCPP 1.6 call and its answer over a loopback WebSocket with the `ocpp` package."""
    async def handler(ws: websockets.ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await _Csms("bench", ws).start()

    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}/bench",
                                      subprotocols=["ocpp1.6"]) as ws:
            cp = ChargePoint("bench", ws)
            reader = asyncio.create_task(cp.start())
            samples = []
            for _ in range(n):
                start = time.perf_counter()
                await cp.call(call.Heartbeat())
                samples.append(time.perf_counter() - start)
            reader.cancel()
    return samples[n // 10:]


async def tap_to_relay(broker: LocalMosquitto, station: str, sessions: int) -> list[float]:
    """Play the hardware role; time each tap until the gateway's relay/set closed arrives."""
    settings = BusSettings(mqtt_port=broker.port, mqtt_username="hardware",
                           mqtt_password=broker.passwords["hardware"], stations=[station])
    hw = Bus(settings, station=station, service="hardware")
    relay_cmds: asyncio.Queue[bool] = asyncio.Queue()
    statuses: asyncio.Queue[ConnectorStatus] = asyncio.Queue()

    async def on_relay(msg: Received) -> None:
        hw.publish(ch.RELAY, RelayState(closed=msg.payload.closed), connector=1)
        await relay_cmds.put(msg.payload.closed)

    async def on_status(msg: Received) -> None:
        await statuses.put(msg.payload.status)

    async def wait_status(wanted: ConnectorStatus) -> None:
        while (await asyncio.wait_for(statuses.get(), 20)) is not wanted:
            pass

    hw.on(ch.RELAY_SET, on_relay, connector=1)
    hw.on(ch.OCPP_STATUS, on_status, connector=1)
    task = asyncio.create_task(hw.run())
    await hw.wait_connected(10)
    hw.publish(ch.RELAY, RelayState(closed=False), connector=1)
    hw.publish(ch.METER, MeterReading(energy_wh=1000, power_w=0, current_a=[0, 0, 0],
                                      voltage_v=[230, 230, 230]), connector=1)
    hw.publish(ch.PILOT, PilotEvent(state=PilotState.A), connector=1)
    await wait_status(ConnectorStatus.AVAILABLE)
    samples: list[float] = []
    for i in range(sessions):
        tag = f"BENCH{i % 50:04d}"
        hw.publish(ch.PILOT, PilotEvent(state=PilotState.B), connector=1)
        await wait_status(ConnectorStatus.PREPARING)
        # A driver taps seconds after plugging in: let the StatusNotification(Preparing) call
        # finish first, or the tap queues behind it (OCPP allows one call in flight).
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        hw.publish(ch.RFID, RfidSeen(id_tag=tag, reader="bench"))
        while not await asyncio.wait_for(relay_cmds.get(), 20):
            pass
        samples.append(time.perf_counter() - start)
        hw.publish(ch.RFID, RfidSeen(id_tag=tag, reader="bench"))
        while await asyncio.wait_for(relay_cmds.get(), 20):
            pass
        hw.publish(ch.PILOT, PilotEvent(state=PilotState.A), connector=1)
        await wait_status(ConnectorStatus.AVAILABLE)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return samples[min(10, sessions // 10):]


def durable_commit(directory: Path, n: int) -> list[float]:
    """One sqlite commit in WAL mode with synchronous=FULL (how the gateway's outbox writes)."""
    import sqlite3

    db = sqlite3.connect(directory / "fsync-bench.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")
    samples = []
    for i in range(n):
        start = time.perf_counter()
        db.execute("INSERT INTO t (body) VALUES (?)", (f"message {i}",))
        samples.append(time.perf_counter() - start)
    db.close()
    return samples[n // 10:]


def idle_footprint(group: ServiceGroup, seconds: float) -> list[str]:
    """RSS and CPU share of each running service over `seconds` of idleness."""
    before = {p.name: cpu_seconds(p.pid) for p in group.started if p.alive()}
    time.sleep(seconds)
    lines = []
    for proc in group.started:
        if proc.alive() and proc.name in before:
            cpu = (cpu_seconds(proc.pid) - before[proc.name]) / seconds * 100
            lines.append(f"{proc.name:<10} RSS {rss_kib(proc.pid) / 1024:6.1f} MiB   "
                         f"CPU {cpu:5.2f} % of one core (idle, {seconds:.0f} s)")
    return lines


async def main(sessions: int, idle_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = LocalMosquitto(work / "mosquitto")
        broker.prepare()
        broker.start()
        group = ServiceGroup(work)
        try:
            hop = await mqtt_hop(broker, 1000)
            ocpp = await ocpp_call(1000)
            commit = durable_commit(work, 300)
            station = "BENCH1"
            ws_port, http_port = free_port(), free_port()
            base = {"VOLTBUS_STATIONS": station, "VOLTBUS_DATA_DIR": str(work / "data"),
                    "VOLTBUS_LOG_LEVEL": "WARNING"}
            group.start("devcsms", {**base, "VOLTBUS_DEVCSMS_PORT": str(ws_port),
                                    "VOLTBUS_DEVCSMS_HTTP_PORT": str(http_port)})
            wait_for_port(ws_port, 30)
            group.start("gateway", {**base, **broker.env("gateway"),
                                    "VOLTBUS_CSMS_URL": f"ws://127.0.0.1:{ws_port}/ocpp"})
            try:
                stack = await tap_to_relay(broker, station, sessions)
            except TimeoutError:
                print(group.logs()[-6000:], file=sys.stderr)
                raise
            floor_p50 = 2 * pct(hop, 0.5) + pct(ocpp, 0.5) + pct(commit, 0.5)
            floor_p99 = 2 * pct(hop, 0.99) + pct(ocpp, 0.99) + pct(commit, 0.99)
            print(summary("raw MQTT QoS1 hop", hop))
            print(summary("raw OCPP call (Heartbeat)", ocpp))
            print(summary("durable commit (sqlite FULL, WAL)", commit))
            print(f"{'floor = 2 hops + call + commit':<34} p50 {floor_p50:7.2f} ms   "
                  f"p99 {floor_p99:7.2f} ms")
            print(summary("tap -> relay/set through voltbus", stack))
            print(f"ratio voltbus / floor: p50 {pct(stack, 0.5) / floor_p50:.2f}x   "
                  f"p99 {pct(stack, 0.99) / floor_p99:.2f}x")
            # The whole stack idle: add the other services.
            group.start("hardware", {**base, **broker.env("hardware"),
                                     "VOLTBUS_STATIONS": "IDLE1"})
            group.start("recorder", {**base, **broker.env("recorder"), "VOLTBUS_INFLUX_API": "1",
                                     "VOLTBUS_INFLUX_URL": f"http://127.0.0.1:{free_port()}",
                                     "VOLTBUS_INFLUX_DATABASE": "voltbus"})
            group.start("api", {**base, **broker.env("api"), "VOLTBUS_API_PORT": str(free_port())})
            await asyncio.sleep(5)
            for line in idle_footprint(group, idle_s):
                print(line)
        finally:
            group.stop_all()
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.idle_seconds))
