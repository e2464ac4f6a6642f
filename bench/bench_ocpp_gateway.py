"""OCPP gateway benchmark: tap-to-relay latency through the gateway (hardware peer on the real
Mosquitto, dev central system answering at once), raw floors of the same hops, and the cost of many
stations in one gateway process.

    uv run python bench/bench_ocpp_gateway.py [--sessions 200] [--stations 50] [--connectors 2]

Prints p50/p99 of tap -> relay/set (which includes Authorize and the durable StartTransaction
write; the relay does not wait for the StartTransaction answer),
the floors (MQTT publish -> receive, OCPP Heartbeat round trip), their ratio, and for the scale
run: time until every station is booted, resident memory and idle CPU of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import tempfile
import time
from pathlib import Path

from ocpp.v16 import call

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.devbroker import LocalMosquitto
from voltbus_common.enums import PilotState
from voltbus_common.models import PilotEvent, RelayCommand, RfidSeen
from voltbus_devcsms.central import CentralSystem
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.station import Station


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def settings_for(broker: LocalMosquitto, stations: list[str], url: str, data: Path,
                 connectors: int = 1) -> GatewaySettings:
    return GatewaySettings(
        mqtt_host="127.0.0.1", mqtt_port=broker.port, mqtt_username="gateway",
        mqtt_password=broker.passwords["gateway"], root=broker.root, stations=stations,
        csms_url=url, data_dir=data, connectors=connectors,
        ocpp_config={"MeterValueSampleInterval": "0"})


async def latency(broker: LocalMosquitto, csms: CentralSystem, data: Path,
                  sessions: int) -> None:
    sid = "BENCH1"
    settings = settings_for(broker, [sid], csms.url, data)
    station = Station(settings, sid, Bus(settings, station=sid, service="gateway"))
    hw = Bus(broker_settings(broker, "hardware", sid), station=sid, service=None)
    relays: asyncio.Queue[tuple[float, bool]] = asyncio.Queue()

    async def on_relay(msg: Received[RelayCommand]) -> None:
        assert msg.payload is not None
        relays.put_nowait((time.perf_counter(), msg.payload.closed))

    hw.on(ch.RELAY_SET, on_relay)
    tasks = [asyncio.create_task(station.run()), asyncio.create_task(hw.run())]
    await hw.wait_connected(5)
    await csms.wait_for(sid, "StatusNotification", timeout=10)
    hw.publish(ch.PILOT, PilotEvent(state=PilotState.B), connector=1)
    samples: list[float] = []
    for i in range(sessions):
        tag = f"TAG{i % 50}"
        sent = time.perf_counter()
        hw.publish(ch.RFID, RfidSeen(id_tag=tag))
        while True:
            at, closed = await asyncio.wait_for(relays.get(), 10)
            if closed:
                break
        samples.append((at - sent) * 1000)
        hw.publish(ch.RFID, RfidSeen(id_tag=tag))  # stop
        while (await asyncio.wait_for(relays.get(), 10))[1]:
            pass
        while station.messenger.items:  # noqa: ASYNC110 (delivered: measure an idle station)
            await asyncio.sleep(0.001)
    # Floors: an MQTT hop, and an OCPP call + answer with the same package.
    mqtt_floor = await mqtt_hop(broker, sid, 200)
    ocpp_floor = []
    for _ in range(200):
        t0 = time.perf_counter()
        await csms.send(sid, call.GetLocalListVersion())
        ocpp_floor.append((time.perf_counter() - t0) * 1000)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    p50, p99 = statistics.median(samples), pct(samples, 0.99)
    # The relay closes once the StartTransaction is on disk, before its answer: the floor is
    # tap hop + Authorize round trip + relay hop (the sqlite commit is voltbus's own cost).
    floor = 2 * statistics.median(mqtt_floor) + statistics.median(ocpp_floor)
    print(f"tap -> relay/set over {sessions} sessions: p50 {p50:.2f} ms  p99 {p99:.2f} ms")
    print(f"floor: MQTT hop p50 {statistics.median(mqtt_floor):.2f} ms, "
          f"OCPP call+answer p50 {statistics.median(ocpp_floor):.2f} ms; "
          f"2 MQTT hops + Authorize = {floor:.2f} ms")
    print(f"ratio tap->relay / floor: {p50 / floor:.2f}")


def broker_settings(broker: LocalMosquitto, user: str, sid: str) -> GatewaySettings:
    return GatewaySettings(mqtt_host="127.0.0.1", mqtt_port=broker.port, mqtt_username=user,
                           mqtt_password=broker.passwords[user], root=broker.root,
                           stations=[sid])


async def mqtt_hop(broker: LocalMosquitto, sid: str, count: int) -> list[float]:
    a = Bus(broker_settings(broker, "hardware", sid), station=sid, service=None)
    b = Bus(broker_settings(broker, "operator", sid), station=sid, service=None)
    got: asyncio.Queue[float] = asyncio.Queue()

    async def on_pilot(msg: Received[PilotEvent]) -> None:
        got.put_nowait(time.perf_counter())

    b.on(ch.PILOT, on_pilot, connector=9)
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    await a.wait_connected(5)
    await b.wait_connected(5)
    hops = []
    for _ in range(count):
        t0 = time.perf_counter()
        a.publish(ch.PILOT, PilotEvent(state=PilotState.A), connector=9)
        hops.append((await asyncio.wait_for(got.get(), 5) - t0) * 1000)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return hops


async def scale(broker: LocalMosquitto, csms: CentralSystem, data: Path, stations: int,
                connectors: int) -> None:
    ids = [f"S{i:04d}" for i in range(stations)]
    settings = settings_for(broker, ids, csms.url, data, connectors)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    gw = [Station(settings, sid, Bus(settings, station=sid, service="gateway")) for sid in ids]
    tasks = [asyncio.create_task(s.run()) for s in gw]
    for sid in ids:
        await csms.wait_for(sid, "StatusNotification", count=connectors + 1, timeout=60)
    booted = time.perf_counter() - t0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(5)
    idle_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{stations} stations x {connectors} connectors in one process: all booted in "
          f"{booted:.2f} s; max RSS {rss / 1024:.0f} MB (+{(rss - rss_before) / 1024:.0f} MB); "
          f"idle CPU {idle_cpu:.1f} % of one core")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalMosquitto(Path(tmp) / "mosquitto")
        broker.prepare()
        broker.start()
        csms = CentralSystem()
        csms.behaviour.heartbeat_interval_s = 3600
        await csms.start()
        try:
            await latency(broker, csms, Path(tmp) / "lat", args.sessions)
            await scale(broker, csms, Path(tmp) / "scale", args.stations, args.connectors)
        finally:
            await csms.stop()
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--connectors", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
