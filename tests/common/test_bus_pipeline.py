"""The bus keeps several QoS 1 publishes in flight, in order, and loses none on a reconnect.

A TCP proxy between the bus and the real broker holds the broker's PUBACKs (or the bus's
PUBLISHes) and cuts the connection while they are held.
"""

from __future__ import annotations

import asyncio

import aiomqtt

from tests.fixtures.mosquitto import Broker, collector, running
from tests.fixtures.tcp_proxy import TcpProxy
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.models import MeterReading


def reading(wh: float) -> MeterReading:
    return MeterReading(energy_wh=wh, power_w=0, current_a=[0, 0, 0], voltage_v=[230, 230, 230])


async def _until(check: object, timeout: float = 10) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _retained_meter(broker: Broker, station: str) -> float:
    topic = ch.METER.topic(broker.root, station=station, connector=1)
    async with aiomqtt.Client("127.0.0.1", broker.port, username="operator",
                              password=broker.passwords["operator"]) as client:
        await client.subscribe(topic, qos=1)
        async for message in client.messages:
            assert message.retain
            payload = ch.METER.decode(message.payload)  # type: ignore[arg-type]
            return payload.energy_wh


async def test_publishes_do_not_wait_for_the_puback_before_them(
        mosquitto: Broker, station: str) -> None:
    """With the broker's PUBACKs held back, every publish still reaches the subscriber (one at
    a time, only the first did: each waited a round trip for the one before it)."""
    async with TcpProxy(mosquitto.port).running() as proxy:
        hw = Bus(mosquitto.settings("hardware").model_copy(update={"mqtt_port": proxy.port}),
                 station=station, service=None)
        watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
        meters = collector(watcher, ch.METER, connector="+")
        async with running(hw, watcher):
            assert await hw.drain(5)
            proxy.hold_down = True
            for n in range(1, 6):
                hw.publish(ch.METER, reading(n), connector=n)
            got = [(await asyncio.wait_for(meters.get(), 5)) for _ in range(5)]
            assert [m.connector for m in got] == [1, 2, 3, 4, 5]
            assert not await hw.drain(0.2)  # none confirmed yet: all still the bus's to send
            proxy.release()
            assert await hw.drain(5)


async def test_unconfirmed_publishes_are_sent_again_in_order_after_a_loss(
        mosquitto: Broker, station: str) -> None:
    """30 readings in flight when the connection breaks: first with the PUBACKs held (the broker
    has them), then with the PUBLISHes held (the broker never got them). Every one arrives, in
    order, and the retained value at the broker is the newest."""
    async with TcpProxy(mosquitto.port).running() as proxy:
        hw = Bus(mosquitto.settings("hardware").model_copy(update={"mqtt_port": proxy.port}),
                 station=station, service="hardware")
        watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
        meters = collector(watcher, ch.METER, connector=1)
        async with running(hw, watcher):
            assert await hw.drain(5)  # its `online` is confirmed: nothing else in flight
            wh = 0
            for hold in ("hold_down", "hold_up"):
                connections = proxy.connections
                setattr(proxy, hold, True)
                first = wh + 1
                for _ in range(30):
                    wh += 1
                    hw.publish(ch.METER, reading(wh), connector=1)
                await _until(lambda: len(hw._inflight) == hw.MAX_INFLIGHT)
                if hold == "hold_down":  # the broker has (and forwarded) the 20 in flight
                    for n in range(first, first + hw.MAX_INFLIGHT):
                        assert (await asyncio.wait_for(meters.get(), 5)).payload.energy_wh == n
                proxy.cut()
                proxy.release()
                await _until(lambda c=connections: proxy.connections > c and hw.connected.is_set())
                assert await hw.drain(10)
                seen: list[float] = []
                while not seen or seen[-1] != wh:
                    seen.append((await asyncio.wait_for(meters.get(), 5)).payload.energy_wh)
                # after the loss the unconfirmed ones again, then the rest: in order, each once
                assert seen == list(range(first, wh + 1)), (hold, seen)
                assert meters.empty()
                assert await _retained_meter(mosquitto, station) == wh
