"""`python -m voltbus_common.healthcheck <service>` (the compose healthcheck) on real Mosquitto."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from tests.fixtures.mosquitto import Broker
from voltbus_common.bus import Bus


async def probe(broker: Broker, service: str, stations: str, **env: str) -> tuple[int, str]:
    full = {**os.environ, **broker.env(service), "VOLTBUS_STATIONS": stations,
            "VOLTBUS_HEALTHCHECK_TIMEOUT_S": "1", **env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voltbus_common.healthcheck", service, env=full,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel until it ends (asyncio.wait_for in Python 3.11 can swallow one cancellation)."""
    for _ in range(10):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        if done:
            return
    raise AssertionError("bus did not stop")


async def test_healthy_only_while_every_station_is_online(mosquitto: Broker, station: str) -> None:
    stations = f"{station}a,{station}b"
    code, err = await probe(mosquitto, "gateway", stations)
    assert code == 1
    assert "None" in err  # never online
    buses = [Bus(mosquitto.settings("gateway", stations=[s]), station=s, service="gateway")
             for s in stations.split(",")]
    tasks = [asyncio.create_task(b.run()) for b in buses]
    for b in buses:
        await b.wait_connected(5)
        assert await b.drain()
    try:
        assert await probe(mosquitto, "gateway", stations) == (0, "")
        # Another service's status does not count.
        code, _ = await probe(mosquitto, "hardware", stations)
        assert code == 1
        await stop(tasks[1])  # a clean stop publishes offline
        code, err = await probe(mosquitto, "gateway", stations)
        assert code == 1
        assert f"'{station}b': 'offline'" in err
    finally:
        await stop(tasks[0])
        await stop(tasks[1])


async def test_unreachable_broker_is_unhealthy(mosquitto: Broker, station: str) -> None:
    code, err = await probe(mosquitto, "recorder", station, VOLTBUS_MQTT_PORT="1")
    assert code == 1
    assert "unhealthy: MQTT" in err


async def test_wrong_service_name_is_a_usage_error(mosquitto: Broker, station: str) -> None:
    code, err = await probe(mosquitto, "nonsense", station)
    assert code == 2
    assert "usage" in err
