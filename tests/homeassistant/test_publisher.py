"""DiscoveryPublisher and HA's commands against the real Mosquitto with the repo's ACL.

The watcher logs in as the `homeassistant` MQTT user, reads the retained config as HA would,
and sends each command HA would send; what arrives at the gateway's subscription is checked
(a denied publish is dropped silently on MQTT 3.1.1, so only arrival proves the ACL lets it by).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fixtures.mosquitto import Broker
from tests.homeassistant import ha_schema
from tests.homeassistant.test_discovery_config import ha_commands
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.homeassistant import DiscoveryPublisher, configured_connectors
from voltbus_common.models import GatewayCommand, RelayCommand

TIMEOUT = 5


@contextlib.asynccontextmanager
async def running(*buses: Bus) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(b.run()) for b in buses]
    try:
        for b in buses:
            await b.wait_connected(TIMEOUT)
        yield
    finally:
        await stop(tasks)


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel until they end: on Python 3.11 asyncio.wait_for (inside aiomqtt's publish) can
    swallow a cancellation that lands just as a publish completes (seen here as a rare hang)."""
    pending = set(tasks)
    for _ in range(10):
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=2)
        if not pending:
            return
    raise AssertionError(f"bus tasks did not stop: {pending}")


Raw = tuple[str, bytes, bool]


def raw_queue(bus: Bus, topic_filter: str) -> asyncio.Queue[Raw]:
    queue: asyncio.Queue[Raw] = asyncio.Queue()

    async def put(topic: str, payload: bytes, retain: bool) -> None:
        await queue.put((topic, payload, retain))

    bus.on_raw(topic_filter, put)
    return queue


def publisher(broker: Broker, station: str, **options: Any) -> tuple[Bus, DiscoveryPublisher]:
    bus = Bus(broker.settings("api", stations=[station]), station=station, service="api")
    args: dict[str, Any] = {"connectors": [1], "max_current_a": 16.0, "min_current_a": 6.0,
                            "sw_version": "0.1.0", "configuration_url": "http://pi.local:8080/"}
    pub = DiscoveryPublisher(bus, **(args | options))
    pub.attach()
    return bus, pub


def home_assistant(broker: Broker, station: str) -> Bus:
    return Bus(broker.settings("homeassistant", stations=[station]), station=station,
               service=None)


async def next_config(queue: asyncio.Queue[Raw]) -> dict[str, Any]:
    _, payload, _ = await asyncio.wait_for(queue.get(), TIMEOUT)
    config: dict[str, Any] = json.loads(payload)
    return config


async def test_config_is_retained_valid_and_resent_when_ha_comes_online(
    mosquitto: Broker, station: str
) -> None:
    bus, pub = publisher(mosquitto, station, connectors=[1, 2])
    async with running(bus):
        await bus.drain()
    # HA starting later still finds the config: it is retained.
    ha = home_assistant(mosquitto, station)
    configs = raw_queue(ha, pub.topic)
    bus, pub = publisher(mosquitto, station, connectors=[1, 2])
    async with running(ha):
        _, payload, retain = await asyncio.wait_for(configs.get(), TIMEOUT)
        assert retain
        assert ha_schema.check_device_config(json.loads(payload)) == []
        async with running(bus):
            await next_config(configs)  # the fresh announcement on connect
            before = pub.published
            # HA's birth message after a restart: the config comes again.
            ha.publish_raw("homeassistant/status", b"online", qos=1)
            config = await next_config(configs)
            assert pub.published == before + 1
            assert configured_connectors(config) == {1, 2}
            # `offline` (HA stopping) triggers nothing.
            ha.publish_raw("homeassistant/status", b"offline", qos=1)
            ha.publish_raw("homeassistant/status", b"online", qos=1)
            await next_config(configs)
            assert pub.published == before + 2


async def test_every_ha_command_reaches_the_gateway_through_the_acl(
    mosquitto: Broker, station: str
) -> None:
    bus, pub = publisher(mosquitto, station, connectors=[1, 2])
    ha = home_assistant(mosquitto, station)
    configs = raw_queue(ha, pub.topic)
    gateway = Bus(mosquitto.settings("gateway", stations=[station]), station=station,
                  service=None)
    arrived: asyncio.Queue[Received[GatewayCommand]] = asyncio.Queue()

    async def on_command(msg: Received[GatewayCommand]) -> None:
        await arrived.put(msg)

    gateway.on(ch.COMMAND, on_command)
    async with running(bus, ha, gateway):
        config = await next_config(configs)  # what HA read from the broker
        sent = ha_commands(config)
        assert len(sent) == 14
        for key, topic, payload in sent:
            ha.publish_raw(topic, payload, qos=1)
            msg = await asyncio.wait_for(arrived.get(), TIMEOUT)
            assert msg.topic == topic, key
            assert msg.payload == GatewayCommand.model_validate_json(payload)
            assert msg.connector == int(key[1:key.index("_")])
    assert gateway.invalid_count == 0


async def test_ha_user_cannot_drive_the_hardware_directly(mosquitto: Broker, station: str) -> None:
    hardware = Bus(mosquitto.settings("hardware", stations=[station]), station=station,
                   service=None)
    ha = home_assistant(mosquitto, station)
    gateway = Bus(mosquitto.settings("gateway", stations=[station]), station=station,
                  service=None)
    relay: asyncio.Queue[Received[RelayCommand]] = asyncio.Queue()

    async def on_relay(msg: Received[RelayCommand]) -> None:
        await relay.put(msg)

    hardware.on(ch.RELAY_SET, on_relay)
    async with running(hardware, ha, gateway):
        ha.publish(ch.RELAY_SET, RelayCommand(closed=True), connector=1)  # denied by the ACL
        await ha.drain()
        gateway.publish(ch.RELAY_SET, RelayCommand(closed=False), connector=1)
        msg = await asyncio.wait_for(relay.get(), TIMEOUT)
    assert msg.payload == RelayCommand(closed=False)  # the first to arrive is the gateway's


async def test_dropped_connector_entities_are_removed(mosquitto: Broker, station: str) -> None:
    bus, _ = publisher(mosquitto, station, connectors=[1, 2])
    async with running(bus):
        await bus.drain()
    ha = home_assistant(mosquitto, station)
    bus, pub = publisher(mosquitto, station, connectors=[1])
    configs = raw_queue(ha, pub.topic)
    async with running(ha):
        assert configured_connectors(await next_config(configs)) == {1, 2}  # retained
        async with running(bus):
            await bus.drain()
            # The announcement from attach(), then the one that removes connector 2.
            first = await next_config(configs)
            assert configured_connectors(first) == {1}
            removal = await next_config(configs)
    assert ha_schema.check_device_config(removal) == []
    stubs = {k: c for k, c in removal["components"].items() if k.startswith("c2_")}
    assert len(stubs) == 12
    assert all(c == {"platform": c["platform"]} for c in stubs.values())
    assert all(set(c) != {"platform"} for k, c in removal["components"].items()
               if k.startswith("c1_"))


async def test_turning_discovery_off_removes_the_device(mosquitto: Broker, station: str) -> None:
    bus, _ = publisher(mosquitto, station)
    async with running(bus):
        await bus.drain()
    bus, pub = publisher(mosquitto, station, enabled=False)
    ha = home_assistant(mosquitto, station)
    configs = raw_queue(ha, pub.topic)
    async with running(ha):
        _, payload, retain = await asyncio.wait_for(configs.get(), TIMEOUT)
        assert retain
        assert payload
        async with running(bus):
            _, payload, _ = await asyncio.wait_for(configs.get(), TIMEOUT)
            assert payload == b""  # HA removes the device and its entities
            ha.publish_raw("homeassistant/status", b"online", qos=1)
            await ha.drain()
            await bus.drain()
    assert pub.published == 0
    # Nothing retained any more: a late subscriber sees only the marker it publishes itself.
    late = home_assistant(mosquitto, station)
    seen = raw_queue(late, pub.topic)
    marker = f"homeassistant/voltbus_test/{station}"
    seen_marker = raw_queue(late, marker)
    async with running(late):
        late.publish_raw(marker, b"marker", qos=1)
        await asyncio.wait_for(seen_marker.get(), TIMEOUT)
    assert seen.empty()


async def test_entities_dropped_by_a_new_configuration_are_removed(
    mosquitto: Broker, station: str
) -> None:
    bus, _ = publisher(mosquitto, station, phases=3)
    async with running(bus):
        await bus.drain()
    ha = home_assistant(mosquitto, station)
    bus, pub = publisher(mosquitto, station, phases=1)  # a single-phase meter now
    configs = raw_queue(ha, pub.topic)
    async with running(ha):
        await next_config(configs)  # retained, three phases
        async with running(bus):
            await next_config(configs)  # from attach()
            removal = await next_config(configs)
    assert removal["components"]["c1_current_l2"] == {"platform": "sensor"}
    assert removal["components"]["c1_current_l3"] == {"platform": "sensor"}
    assert len(removal["components"]["c1_current_l1"]) > 1
    assert ha_schema.check_device_config(removal) == []


@pytest.mark.parametrize("bad", [b"not json", b"[1, 2]", b'{"components": [1]}'])
async def test_unreadable_retained_config_is_replaced(
    mosquitto: Broker, station: str, bad: bytes
) -> None:
    bus, pub = publisher(mosquitto, station)
    ha = home_assistant(mosquitto, station)
    configs = raw_queue(ha, pub.topic)
    async with running(ha):
        ha.publish_raw(pub.topic, bad, qos=1, retain=True)
        assert (await asyncio.wait_for(configs.get(), TIMEOUT))[1] == bad
        async with running(bus):
            config = await next_config(configs)
    assert configured_connectors(config) == {1}
