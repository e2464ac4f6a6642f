"""The API against the real broker: the test plays the gateway and hardware on the bus."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.fixtures.mosquitto import Broker
from tests.fixtures.mosquitto import running as running_buses
from voltbus_api.app import create_app
from voltbus_api.context import ApiContext
from voltbus_api.settings import ApiSettings
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import CommandStatus
from voltbus_common.models import CommandResult, GatewayCommand

Policy = Callable[[Received[GatewayCommand]], CommandResult | None]


def accept_all(msg: Received[GatewayCommand]) -> CommandResult | None:
    """A gateway that accepts every command."""
    return CommandResult(request_id=msg.payload.request_id, command=msg.payload.command,
                         status=CommandStatus.ACCEPTED)


@dataclass
class Peers:
    """The gateway and hardware roles, as real MQTT clients with their own users."""

    gateway: Bus
    hardware: Bus
    commands: list[Received[GatewayCommand]] = field(default_factory=list)
    policy: Policy = accept_all

    async def answer(self, msg: Received[GatewayCommand]) -> None:
        self.commands.append(msg)
        result = self.policy(msg)
        if result is not None:
            self.gateway.publish(ch.COMMAND_RESULT, result, connector=msg.connector)


def api_settings(broker: Broker, station: str, data_dir: Path, **extra: Any) -> ApiSettings:
    """ApiSettings that connect as the `api` user to the test broker."""
    values: dict[str, Any] = {
        "mqtt_host": "127.0.0.1", "mqtt_port": broker.port, "mqtt_username": "api",
        "mqtt_password": broker.passwords["api"], "root": broker.root, "stations": [station],
        "data_dir": data_dir, "api_command_timeout_s": 2.0,
        "api_admin_token_file": data_dir / "admin-token",
    }
    values.update(extra)
    return ApiSettings(**values)


@contextlib.asynccontextmanager
async def running_api(settings: ApiSettings, *, as_admin: bool = True, app: FastAPI | None = None
                      ) -> AsyncIterator[tuple[httpx.AsyncClient, ApiContext]]:
    """The app with its lifespan running, and an httpx client on it (with the admin token)."""
    app = app or create_app(settings)
    async with app.router.lifespan_context(app):
        ctx: ApiContext = app.state.ctx
        for bus in ctx.buses.values():
            await bus.wait_connected(5)
        headers = {}
        if as_admin and settings.api_admin_token_file is not None:
            token = settings.api_admin_token_file.read_text().strip()
            headers["Authorization"] = f"Bearer {token}"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api",
                                     headers=headers) as client:
            yield client, ctx


@pytest.fixture
async def peers(mosquitto: Broker, station: str) -> AsyncIterator[Peers]:
    """Gateway (answers commands) and hardware clients on the test's station."""
    gateway = Bus(mosquitto.settings("gateway", stations=[station]), station=station,
                  service="gateway")
    hardware = Bus(mosquitto.settings("hardware", stations=[station]), station=station,
                   service="hardware")
    peers = Peers(gateway, hardware)
    gateway.on(ch.COMMAND, peers.answer)
    async with running_buses(gateway, hardware):
        yield peers


@pytest.fixture
async def api(mosquitto: Broker, station: str, tmp_path: Path,
              peers: Peers) -> AsyncIterator[tuple[httpx.AsyncClient, ApiContext]]:
    """The API app (lifespan running) with its client; the peers are already on the bus."""
    async with running_api(api_settings(mosquitto, station, tmp_path)) as pair:
        yield pair


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 5.0) -> None:
    """Poll check() until it is true (state arrives asynchronously over the broker)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
