"""Send a GatewayCommand over the bus and wait for the gateway's CommandResult."""

from __future__ import annotations

import asyncio
import logging
import uuid

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.models import CommandResult, GatewayCommand

log = logging.getLogger(__name__)


class CommandTimeout(Exception):
    """The gateway did not answer in time."""


class BusUnavailable(Exception):
    """The API is not connected to the broker, so the command cannot go out."""


class CommandClient:
    """Correlates commands and results by a fresh request_id per command."""

    def __init__(self, buses: dict[str, Bus], *, timeout_s: float) -> None:
        self._buses = buses
        self._timeout_s = timeout_s
        self._pending: dict[str, asyncio.Future[CommandResult]] = {}

    def attach(self, bus: Bus) -> None:
        """Listen for results on every connector of the bus's station (before bus.run())."""
        bus.on(ch.COMMAND_RESULT, self._on_result)

    async def _on_result(self, msg: Received[CommandResult]) -> None:
        result = msg.payload
        if result is None or result.request_id is None:
            return
        future = self._pending.get(result.request_id)
        if future is not None and not future.done():
            future.set_result(result)

    async def send(self, station: str, connector: int, command: GatewayCommand) -> CommandResult:
        """Publish the command with a new request_id and return the gateway's answer."""
        bus = self._buses[station]
        if not bus.connected.is_set():
            raise BusUnavailable("the API is not connected to the MQTT broker")
        request_id = f"api-{uuid.uuid4().hex}"
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            bus.publish(ch.COMMAND, command.model_copy(update={"request_id": request_id}),
                        connector=connector)
            log.info("command %s to %s/%d as %s", command.command.value, station, connector,
                     request_id)
            async with asyncio.timeout(self._timeout_s):
                return await future
        except TimeoutError:
            raise CommandTimeout(
                f"no answer from the gateway within {self._timeout_s:g} s") from None
        finally:
            self._pending.pop(request_id, None)
