"""Short-lived bus clients for the CLI: send one message and find out what became of it.

Every failure names what really happened: the broker could not be reached (and why), the station's
service is offline or was never seen on this broker, the service rejected the message (its reason
from `service/{service}/rejected`), or it is online and did not answer in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import ServiceState
from voltbus_common.models import CommandResult, GatewayCommand, RejectedMessage
from voltbus_common.settings import BusSettings

# Retained statuses arrive right behind the SUBACKs; by the time our own publish is acknowledged
# they are in, so this grace only covers scheduling.
_PRESENCE_GRACE_S = 0.5


class BusUnreachable(Exception):
    """No connection to the broker; the message says where and why."""


class NoAnswer(Exception):
    """Connected, but the message had no effect we could see; the message says why."""


@dataclass
class Presence:
    """The retained `service/{service}/status` of every station on the broker."""

    service: str
    states: dict[str, ServiceState] = field(default_factory=dict)

    def attach(self, bus: Bus) -> None:
        """Subscribe before bus.run()."""
        async def seen(msg: Received[ServiceState]) -> None:
            if msg.payload is not None:
                self.states[msg.station] = msg.payload

        bus.on(ch.SERVICE_STATUS, seen, station="+", service=self.service)

    def problem(self, station: str) -> str | None:
        """Why the station's service cannot answer, or None if it is online."""
        state = self.states.get(station)
        if state is ServiceState.ONLINE:
            return None
        if state is ServiceState.OFFLINE:
            return f"the {self.service} service of station {station} is offline"
        others = sorted(s for s in self.states if s != station)
        if others:
            return (f"station {station!r} is unknown on this broker: no {self.service} service "
                    f"has announced it (stations seen: {', '.join(others)})")
        return f"no {self.service} service has ever connected to this broker"


@contextlib.asynccontextmanager
async def _connected(bus: Bus, settings: BusSettings, timeout: float) -> AsyncIterator[Bus]:  # noqa: ASYNC109
    """Run bus, connected, in the block; BusUnreachable at the first failed attempt (refused,
    bad login)."""
    async with bus:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not bus.connected.is_set() and bus.last_error is None and loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await bus.connected.wait()
        if not bus.connected.is_set():
            why = bus.last_error or f"no connection within {timeout:g} s"
            raise BusUnreachable(f"cannot reach the MQTT broker at {settings.mqtt_host}:"
                                 f"{settings.mqtt_port} as "
                                 f"{settings.mqtt_username or 'anonymous'} ({why}); is "
                                 "`voltbus up` running?")
        yield bus


async def publish_once(settings: BusSettings, station: str, channel: ch.Channel[Any], payload: Any,
                       timeout: float = 5.0, **args: str | int) -> None:  # noqa: ASYNC109
    """Connect, publish one message, make sure it left, disconnect."""
    bus = Bus(settings, station=station, service=None)
    async with _connected(bus, settings, timeout):
        bus.publish(channel, payload, **args)
        if not await bus.drain(timeout):
            raise BusUnreachable("the broker did not accept the message in time")


@dataclass(frozen=True)
class Evidence:
    """A message that shows the hardware acted: on `channel`, live (not retained), matching."""

    channel: ch.Channel[Any]
    matches: Callable[[Any], bool]
    args: dict[str, str | int] = field(default_factory=dict)


async def send_to_hardware(settings: BusSettings, station: str, channel: ch.Channel[Any],
                           payload: Any, evidence: Evidence | None, *, quiet_s: float = 1.5,
                           timeout: float = 5.0, **args: str | int) -> str:  # noqa: ASYNC109
    """Send a simulator command; return what the hardware did, raise NoAnswer if it refused.

    Waits for the evidence (e.g. the new pilot state) or a rejection; without either after
    `quiet_s`, the hardware took the message without a visible change.
    """
    topic = channel.topic(settings.root, station=station, **args)
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    presence = Presence(ch.HARDWARE)
    bus = Bus(settings, station=station, service=None)
    presence.attach(bus)

    async def rejected(msg: Received[RejectedMessage]) -> None:
        if msg.payload is not None and msg.payload.topic == topic and not outcome.done():
            outcome.set_exception(NoAnswer(f"the hardware rejected it: {msg.payload.reason}"))

    bus.on(ch.SERVICE_REJECTED, rejected, service=ch.HARDWARE)
    if evidence is not None:
        async def acted(msg: Received[Any]) -> None:
            if (msg.payload is not None and not msg.retain and evidence.matches(msg.payload)
                    and not outcome.done()):
                outcome.set_result(f"done: {msg.topic} {msg.payload.model_dump_json()}")

        bus.on(evidence.channel, acted, **evidence.args)
    async with _connected(bus, settings, timeout):
        bus.publish(channel, payload, **args)
        if not await bus.drain(timeout):
            raise BusUnreachable("the broker did not accept the message in time")
        await _check_presence(presence, station, outcome)
        try:
            async with asyncio.timeout(quiet_s):
                return await asyncio.shield(outcome)
        except TimeoutError:
            return f"sent to {topic} (no change seen; the hardware raised no objection)"


async def _check_presence(presence: Presence, station: str, outcome: asyncio.Future[Any]) -> None:
    """Raise NoAnswer early if nobody is there to answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _PRESENCE_GRACE_S
    while presence.problem(station) is not None and not outcome.done():
        if loop.time() >= deadline:
            raise NoAnswer(str(presence.problem(station)))
        await asyncio.sleep(0.02)


async def ask_gateway(settings: BusSettings, station: str, connector: int,
                      command: GatewayCommand, timeout: float = 10.0) -> CommandResult:  # noqa: ASYNC109
    """Send a command to the gateway and wait for its CommandResult (NoAnswer if none)."""
    request_id = command.request_id or uuid.uuid4().hex[:12]
    command = command.model_copy(update={"request_id": request_id})
    answer: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()

    async def on_result(msg: Received[CommandResult]) -> None:
        if msg.payload is not None and msg.payload.request_id == request_id and not answer.done():
            answer.set_result(msg.payload)

    presence = Presence(ch.GATEWAY)
    bus = Bus(settings, station=station, service=None)
    presence.attach(bus)
    bus.on(ch.COMMAND_RESULT, on_result, connector=connector)
    async with _connected(bus, settings, timeout):
        bus.publish(ch.COMMAND, command, connector=connector)
        if not await bus.drain(timeout):
            raise BusUnreachable("the broker did not accept the command in time")
        await _check_presence(presence, station, answer)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(answer)
        except TimeoutError:
            raise NoAnswer(f"the gateway of station {station} is online but did not answer "
                           f"{command.command} on connector {connector} within {timeout:g} s"
                           ) from None
