"""Short-lived bus clients for the CLI: publish one message, or ask the gateway for an answer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from voltbus_common.bus import Bus, Received
from voltbus_common.channels import COMMAND, COMMAND_RESULT, Channel
from voltbus_common.models import CommandResult, GatewayCommand
from voltbus_common.settings import BusSettings


async def publish_once(settings: BusSettings, station: str, channel: Channel[Any], payload: Any,
                       timeout: float = 5.0, **args: str | int) -> None:  # noqa: ASYNC109
    """Connect, publish one message, make sure it left, disconnect."""
    bus = Bus(settings, station=station, service=None)
    task = asyncio.create_task(bus.run())
    try:
        await bus.wait_connected(timeout)
        bus.publish(channel, payload, **args)
        if not await bus.drain(timeout):
            raise TimeoutError("message not delivered to the broker")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def ask_gateway(settings: BusSettings, station: str, connector: int,
                      command: GatewayCommand, timeout: float = 10.0) -> CommandResult:  # noqa: ASYNC109
    """Send a command to the gateway and wait for its CommandResult (TimeoutError if none)."""
    request_id = command.request_id or uuid.uuid4().hex[:12]
    command = command.model_copy(update={"request_id": request_id})
    answer: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()

    async def on_result(msg: Received[CommandResult]) -> None:
        if msg.payload is not None and msg.payload.request_id == request_id and not answer.done():
            answer.set_result(msg.payload)

    bus = Bus(settings, station=station, service=None)
    bus.on(COMMAND_RESULT, on_result, connector=connector)
    task = asyncio.create_task(bus.run())
    try:
        await bus.wait_connected(timeout)
        bus.publish(COMMAND, command, connector=connector)
        return await asyncio.wait_for(answer, timeout)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
