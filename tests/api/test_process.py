"""`python -m voltbus_api` as its own process: env config, admin token file, clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api.conftest import Peers, eventually
from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.devbroker import free_port
from voltbus_common.enums import ServiceState


async def test_runs_as_a_process_and_stops_cleanly(mosquitto: Broker, peers: Peers, station: str,
                                                   tmp_path: Path) -> None:
    port = free_port()
    token_file = tmp_path / "secrets" / "api_admin_token"
    env = {**os.environ, **mosquitto.env("api"), "VOLTBUS_STATIONS": station,
           "VOLTBUS_API_PORT": str(port), "VOLTBUS_DATA_DIR": str(tmp_path / "var"),
           "VOLTBUS_API_ADMIN_TOKEN_FILE": str(token_file)}
    statuses: list[ServiceState] = []

    async def seen(msg: Received[ServiceState]) -> None:
        statuses.append(msg.payload)

    watcher = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                  service=None)
    watcher.on(ch.SERVICE_STATUS, seen, service="api")
    watch = asyncio.create_task(watcher.run())
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(  # noqa: ASYNC220 (starting a process does not block)
            [sys.executable, "-m", "voltbus_api"], env=env, stdout=log_file, stderr=log_file)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            async def healthy() -> bool:
                try:
                    return (await client.get("/api/v1/health")).status_code == 200
                except httpx.TransportError:
                    assert proc.poll() is None, log_path.read_text()
                    return False

            await eventually(healthy, within_s=20)
            token = token_file.read_text().strip()
            r = await client.get("/api/v1/stations", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
            assert r.json()[0]["station"] == station
            page = await client.get("/")
            assert page.status_code == 200
            assert "<title>voltbus</title>" in page.text
            await eventually(lambda: _true(ServiceState.ONLINE in statuses))
            # A browser's open live stream must not hold up the stop.
            async with client.stream("GET", "/api/v1/events",
                                     headers={"Authorization": f"Bearer {token}"}) as stream:
                lines = stream.aiter_lines()
                assert (await anext(lines)).startswith("event: snapshot")
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(proc.wait, 4) == 0
        await eventually(lambda: _true(statuses[-1] is ServiceState.OFFLINE))
        err = log_path.read_text()
        password = (tmp_path / "var" / "api" / "initial-admin-password").read_text().strip()
        assert "initial-admin-password" in err
        assert password not in err
        assert token not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value
