"""Helpers for hardware tests: run a station in-process on the real broker, watch topics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_hardware.controller import ControllerConfig
from voltbus_hardware.drivers.simulated import SimConnector, SimEvse
from voltbus_hardware.registry import simulated_station
from voltbus_hardware.service import serve_station
from voltbus_hardware.station import StationHardware

# gateway_loss_relay_hold_s 0: a lost gateway opens the relay once the loss is confirmed (the
# hold's own tests set it: tests/hardware/test_safety.py)
FAST = ControllerConfig(meter_interval_s=0.1, poll_interval_s=0.05, overcurrent_margin_a=1.0,
                        overcurrent_time_s=0.3, gateway_loss_relay_hold_s=0.0)


class Watch:
    """Everything that arrives on one channel, with waiting for a matching message."""

    def __init__(self, bus: Bus, channel: ch.Channel[Any], **args: str | int) -> None:
        self.queue: asyncio.Queue[Received[Any]] = asyncio.Queue()
        self.seen: list[Received[Any]] = []
        bus.on(channel, self._put, **args)

    async def _put(self, msg: Received[Any]) -> None:
        self.seen.append(msg)
        await self.queue.put(msg)

    async def next(self, within: float = 5.0) -> Received[Any]:
        """The next message."""
        return await asyncio.wait_for(self.queue.get(), within)

    async def until(self, predicate: Callable[[Received[Any]], bool],
                    within: float = 5.0) -> Received[Any]:
        """The first message (from now on) for which predicate holds."""
        async with asyncio.timeout(within):
            while True:
                msg = await self.queue.get()
                if predicate(msg):
                    return msg

    def drain(self) -> list[Received[Any]]:
        """Messages queued so far, removed from the queue."""
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


@dataclass
class Rig:
    """A station served in-process, plus an operator, a gateway and a watcher on the broker."""

    broker: Broker
    station: StationHardware
    hw_bus: Bus
    operator: Bus
    gateway: Bus
    watcher: Bus
    watches: dict[str, Watch] = field(default_factory=dict)

    def sim(self, connector: int = 1) -> SimConnector:
        """The physics behind a simulated connector (for hooks the bus does not offer)."""
        evse = self.station.connectors[connector].evse
        assert isinstance(evse, SimEvse)
        return evse.sim

    def send(self, channel: ch.Channel[Any], payload: Any, **args: int) -> None:
        """Publish as the user that may write this channel (gateway or operator)."""
        bus = self.gateway if "gateway" in channel.writers else self.operator
        bus.publish(channel, payload, **args)

    def send_raw(self, channel: ch.Channel[Any], raw: bytes, **args: str | int) -> None:
        """Publish raw bytes on the channel's topic (bad-input tests)."""
        bus = self.gateway if "gateway" in channel.writers else self.operator
        args.setdefault("station", bus.station)
        bus.publish_raw(channel.filter(self.broker.root, **args), raw, qos=1)


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run a coroutine (a simulated device's physics) as a task for the duration."""
    task = asyncio.create_task(coro)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def rig(broker: Broker, station_id: str, *, connectors: int = 1,
              config: ControllerConfig = FAST,
              hardware: StationHardware | None = None) -> AsyncIterator[Rig]:
    """Run one station of the hardware service in-process against the real broker."""
    station = hardware or simulated_station(station_id, connectors)
    hw_bus = Bus(broker.settings("hardware", stations=[station_id]), station=station_id,
                 service="hardware")
    operator = Bus(broker.settings("operator"), station=station_id, service=None)
    gateway = Bus(broker.settings("gateway"), station=station_id, service=None)
    watcher = Bus(broker.settings("operator"), station=station_id, service=None)
    r = Rig(broker, station, hw_bus, operator, gateway, watcher)
    for name, channel, args in (
        ("pilot", ch.PILOT, {}), ("meter", ch.METER, {}), ("relay", ch.RELAY, {}),
        ("error", ch.HW_ERROR, {}), ("rfid", ch.RFID, {}), ("switch", ch.SWITCH_READING, {}),
        ("lock", ch.LOCK, {}), ("phases", ch.PHASES, {}), ("bay", ch.BAY, {}),
        ("rejected", ch.SERVICE_REJECTED, {"service": "hardware"}),
        ("status", ch.SERVICE_STATUS, {"service": "hardware"}),
    ):
        r.watches[name] = Watch(watcher, channel, **args)
    clients = [asyncio.create_task(b.run()) for b in (operator, gateway, watcher)]
    for b in (operator, gateway, watcher):
        await b.wait_connected(5)
    service = asyncio.create_task(serve_station(hw_bus, station, config))
    try:
        await hw_bus.wait_connected(5)
        yield r
    finally:
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)
        for t in clients:
            t.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
