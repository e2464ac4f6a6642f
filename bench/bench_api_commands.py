"""API command latency: HTTP POST -> bus -> gateway answer -> HTTP response, against its floors.

Runs `python -m voltbus_api` as its own process against a local Mosquitto; this process plays the
gateway (answers every command at once). In the same run it measures the floors: an HTTP request
that touches no bus (GET /api/v1/health), an authenticated read (GET a connector), and the raw
MQTT command -> result round trip without HTTP. Prints p50/p99 and the ratio of the command to
(HTTP floor + MQTT floor), plus the API's resident memory.
Usage: uv run python bench/bench_api_commands.py [--n 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.devbroker import LocalMosquitto, free_port, wait_for_port
from voltbus_common.enums import CommandName, CommandStatus, ConnectorStatus
from voltbus_common.models import CommandResult, GatewayCommand, OcppConnectorStatus
from voltbus_common.settings import BusSettings

STATION = "BENCH1"


def settings(broker: LocalMosquitto, user: str) -> BusSettings:
    return BusSettings(mqtt_port=broker.port, mqtt_username=user,
                       mqtt_password=broker.passwords[user], stations=[STATION])


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


async def timed(n: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(20):  # warm-up
        await call()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(n: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="voltbus-bench-api-"))
    broker = LocalMosquitto(work / "mosquitto")
    broker.prepare()
    broker.start()
    gateway = Bus(settings(broker, "gateway"), station=STATION, service="gateway")
    operator = Bus(settings(broker, "operator"), station=STATION, service=None)

    async def answer(msg: Received[GatewayCommand]) -> None:
        gateway.publish(ch.COMMAND_RESULT, CommandResult(
            request_id=msg.payload.request_id, command=msg.payload.command,
            status=CommandStatus.ACCEPTED), connector=msg.connector)

    gateway.on(ch.COMMAND, answer)
    results: dict[str, asyncio.Future[CommandResult]] = {}

    async def result(msg: Received[CommandResult]) -> None:
        fut = results.pop(msg.payload.request_id or "", None)
        if fut is not None:
            fut.set_result(msg.payload)

    operator.on(ch.COMMAND_RESULT, result)
    tasks = [asyncio.create_task(gateway.run()), asyncio.create_task(operator.run())]
    await gateway.wait_connected(5)
    await operator.wait_connected(5)
    gateway.publish(ch.OCPP_STATUS, OcppConnectorStatus(status=ConnectorStatus.AVAILABLE),
                    connector=1)

    port = free_port()
    token_file = work / "token"
    env = {**os.environ, **broker.env("api"), "VOLTBUS_STATIONS": STATION,
           "VOLTBUS_API_PORT": str(port), "VOLTBUS_DATA_DIR": str(work / "var"),
           "VOLTBUS_API_ADMIN_TOKEN_FILE": str(token_file), "VOLTBUS_LOG_LEVEL": "WARNING"}
    api = await asyncio.create_subprocess_exec(sys.executable, "-m", "voltbus_api", env=env,
                                               stderr=asyncio.subprocess.DEVNULL)
    try:
        await asyncio.to_thread(wait_for_port, port, 30)
        token = token_file.read_text().strip()
        base = f"http://127.0.0.1:{port}/api/v1"
        path = f"{base}/stations/{STATION}/connectors/1"
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
            while (await client.get(path)).status_code != 200:  # noqa: ASYNC110 (polling HTTP)
                await asyncio.sleep(0.05)

            async def command() -> None:
                r = await client.post(f"{path}/stop")
                assert r.status_code == 200, r.text

            async def raw_mqtt() -> None:
                rid = uuid.uuid4().hex
                fut: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
                results[rid] = fut
                operator.publish(ch.COMMAND, GatewayCommand(command=CommandName.STOP,
                                                            request_id=rid), connector=1)
                await fut

            health = await timed(n, lambda: client.get(f"{base}/health"))
            read = await timed(n, lambda: client.get(path))
            mqtt = await timed(n, raw_mqtt)
            cmd = await timed(n, command)
        await asyncio.sleep(1)
        rss = rss_mib(api.pid)
    finally:
        api.terminate()
        await api.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        broker.stop()

    print(f"API command latency, n={n} each (ms)        p50     p99")
    for name, values in [("HTTP floor: GET /health (no auth, no bus)", health),
                         ("authenticated read: GET connector", read),
                         ("raw MQTT command -> result (no HTTP)", mqtt),
                         ("API command: POST stop -> gateway -> 200", cmd)]:
        print(f"  {name:<44} {statistics.median(values):6.2f}  {pct(values, 0.99):6.2f}")
    floor = statistics.median(health) + statistics.median(mqtt)
    print(f"  ratio command / (HTTP floor + MQTT floor), p50: {statistics.median(cmd) / floor:.2f}")
    print(f"  API resident memory after the run: {rss:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    asyncio.run(main(parser.parse_args().n))
