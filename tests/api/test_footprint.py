"""The API process idle: no 0.1 s polling loop, and a stop signal still ends it at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from voltbus_common.devbroker import free_port, wait_for_port


def wakeups(pid: int) -> int:
    """Voluntary context switches of the process's main thread (each idle wake-up is one)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches")


async def test_idle_api_sleeps_and_stops_at_once(mosquitto: Broker, services: ServiceGroup,
                                                 station: str, tmp_path: Path) -> None:
    port = free_port()
    api = services.start("api", {**mosquitto.env("api"), "VOLTBUS_STATIONS": station,
                                 "VOLTBUS_API_PORT": str(port),
                                 "VOLTBUS_DATA_DIR": str(tmp_path / "data")})
    await asyncio.to_thread(wait_for_port, port, 30)
    await asyncio.sleep(1.0)  # start-up done
    before = wakeups(api.pid)
    await asyncio.sleep(3.0)
    woke = wakeups(api.pid) - before
    assert woke <= 12, f"{woke} wake-ups in 3 s idle"  # uvicorn's own loop alone: 30

    started = time.monotonic()
    assert api.stop() == 0, api.log()
    assert time.monotonic() - started < 2.0
