"""The running parts of the API service, built in create_app and started by its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from voltbus_api.commands import CommandClient
from voltbus_api.settings import ApiSettings
from voltbus_api.state_cache import StateCache
from voltbus_common.bus import Bus

log = logging.getLogger(__name__)


@dataclass
class ApiContext:
    """Settings, one Bus per station, the state cache and the command client."""

    settings: ApiSettings
    buses: dict[str, Bus]
    cache: StateCache
    commands: CommandClient
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: ApiSettings) -> ApiContext:
        """Wire the parts; nothing connects until start()."""
        buses = {s: Bus(settings, station=s, service="api") for s in settings.stations}
        cache = StateCache(settings.stations)
        commands = CommandClient(buses, timeout_s=settings.api_command_timeout_s)
        for bus in buses.values():
            cache.attach(bus)
            commands.attach(bus)
        return cls(settings, buses, cache, commands)

    async def start(self) -> None:
        """Run every bus in the background."""
        for station, bus in self.buses.items():
            self.tasks.append(asyncio.create_task(bus.run(), name=f"bus-{station}"))

    async def stop(self) -> None:
        """Cancel the buses (they publish offline and flush) and wait for them."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
