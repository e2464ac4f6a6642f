"""compose.yaml's healthcheck commands for the API and the dev CSMS, run against the real
processes (the bus services' probe is tested in test_healthcheck.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import yaml

from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from voltbus_common.devbroker import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]


def healthcheck(service: str, port_from: int, port_to: int) -> list[str]:
    """The service's CMD healthcheck with its port moved to the test's."""
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    kind, *command = compose["services"][service]["healthcheck"]["test"]
    assert kind == "CMD"
    assert command[0] == "python"
    return [sys.executable, *(c.replace(str(port_from), str(port_to)) for c in command[1:])]


def run(command: list[str]) -> int:
    return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode


async def test_api_healthcheck(mosquitto: Broker, services: ServiceGroup, station: str,
                               tmp_path: Path) -> None:
    port = free_port()
    command = healthcheck("api", 8080, port)
    assert await asyncio.to_thread(run, command) != 0  # nothing listening
    api = services.start("api", {**mosquitto.env("api"), "VOLTBUS_STATIONS": station,
                                 "VOLTBUS_API_PORT": str(port),
                                 "VOLTBUS_DATA_DIR": str(tmp_path / "data")})
    await asyncio.to_thread(wait_for_port, port, 30)
    assert await asyncio.to_thread(run, command) == 0, api.log()
    api.stop()
    assert await asyncio.to_thread(run, command) != 0


async def test_devcsms_healthcheck(services: ServiceGroup) -> None:
    ws_port, http_port = free_port(), free_port()
    command = healthcheck("devcsms", 9000, ws_port)
    assert await asyncio.to_thread(run, command) != 0
    services.start("devcsms", {"VOLTBUS_DEVCSMS_PORT": str(ws_port),
                               "VOLTBUS_DEVCSMS_HTTP_PORT": str(http_port)})
    await asyncio.to_thread(wait_for_port, ws_port, 30)
    assert await asyncio.to_thread(run, command) == 0
