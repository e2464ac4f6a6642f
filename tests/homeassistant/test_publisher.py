"""DiscoveryPublisher and HA's commands against the real Mosquitto with the repo's ACL.

The watcher logs in as the `homeassistant` MQTT user, reads the retained configs as HA would,
and sends each command HA would send; what arrives at the gateway's subscription is checked
(a denied publish is dropped silently on MQTT 3.1.1, so only arrival proves the ACL lets it by).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.mosquitto import Broker
from tests.homeassistant import ha_schema
from tests.homeassistant.test_discovery_config import (
    COMMANDS_PER_CONNECTOR,
    COMMANDS_PER_STATION,
    ha_commands,
)
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.homeassistant import (
    DiscoveryPublisher,
    StationDiscovery,
    configured_connectors,
    connector_topic,
    mirror_topic,
)
from voltbus_common.homeassistant.discovery import connector_filter
from voltbus_common.homeassistant.mirror import SessionView, StationView
from voltbus_common.models import (
    GatewayCommand,
    RelayCommand,
    RfidSeen,
    SessionSummary,
    TransactionState,
)

TIMEOUT = 5
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


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
                            "sw_version": "0.1.0", "configuration_url": "http://pi.local:8080/",
                            "price_per_kwh": 0.25, "settle_s": 0.1}
    pub = DiscoveryPublisher(bus, **(args | options))
    pub.attach()
    return bus, pub


def home_assistant(broker: Broker, station: str) -> Bus:
    return Bus(broker.settings("homeassistant", stations=[station]), station=station,
               service=None)


class Configs:
    """What HA would hold: the latest discovery config per topic of one station."""

    def __init__(self, ha: Bus, pub: DiscoveryPublisher) -> None:
        self.queue = raw_queue(ha, pub.topic)
        connector_queue = raw_queue(ha, connector_filter(pub.bus.station, root=pub.bus.root))
        self.connectors = connector_queue
        self.latest: dict[str, bytes] = {}

    async def station(self) -> dict[str, Any]:
        topic, payload, _ = await asyncio.wait_for(self.queue.get(), TIMEOUT)
        self.latest[topic] = payload
        config: dict[str, Any] = json.loads(payload)
        return config

    async def connector(self) -> tuple[str, bytes, bool]:
        item = await asyncio.wait_for(self.connectors.get(), TIMEOUT)
        self.latest[item[0]] = item[1]
        return item

    async def all(self, connectors: int) -> dict[str, dict[str, Any]]:
        """The next station config and then `connectors` connector configs."""
        out = {"station": await self.station()}
        for _ in range(connectors):
            topic, payload, _ = await self.connector()
            out[topic] = json.loads(payload)
        return out


async def test_configs_are_retained_valid_and_resent_when_ha_comes_online(
    mosquitto: Broker, station: str
) -> None:
    bus, pub = publisher(mosquitto, station, connectors=[1, 2])
    async with running(bus):
        await asyncio.sleep(0.3)  # the connectors follow the station after settle_s
        await bus.drain()
    # HA starting later still finds every config: they are retained.
    ha = home_assistant(mosquitto, station)
    seen = Configs(ha, pub)
    bus, pub = publisher(mosquitto, station, connectors=[1, 2])
    async with running(ha):
        first = await seen.all(2)
        configs = {pub.topic: first.pop("station"), **first}
        assert ha_schema.check_devices(configs) == []
        assert configured_connectors(configs) == {1, 2}
        async with running(bus):
            await seen.all(2)  # the fresh announcement on connect
            before = pub.published
            # HA's birth message after a restart: the configs come again.
            ha.publish_raw("homeassistant/status", b"online", qos=1)
            again = await seen.all(2)
            assert pub.published == before + 1
            assert set(again) == {"station", *pub.topics()[1:]}
            # `offline` (HA stopping) triggers nothing.
            ha.publish_raw("homeassistant/status", b"offline", qos=1)
            ha.publish_raw("homeassistant/status", b"online", qos=1)
            await seen.all(2)
            assert pub.published == before + 2


async def test_every_ha_command_reaches_the_gateway_through_the_acl(
    mosquitto: Broker, station: str
) -> None:
    bus, pub = publisher(mosquitto, station, connectors=[1, 2])
    ha = home_assistant(mosquitto, station)
    seen = Configs(ha, pub)
    gateway = Bus(mosquitto.settings("gateway", stations=[station]), station=station,
                  service=None)
    arrived: asyncio.Queue[Received[GatewayCommand]] = asyncio.Queue()

    async def on_command(msg: Received[GatewayCommand]) -> None:
        await arrived.put(msg)

    gateway.on(ch.COMMAND, on_command)
    async with running(bus, ha, gateway):
        configs = await seen.all(2)  # what HA read from the broker
        sent = ha_commands(configs)
        assert len(sent) == 2 * COMMANDS_PER_CONNECTOR + COMMANDS_PER_STATION
        for key, topic, payload in sent:
            ha.publish_raw(topic, payload, qos=1)
            msg = await asyncio.wait_for(arrived.get(), TIMEOUT)
            assert msg.topic == topic, key
            assert msg.payload == GatewayCommand.model_validate_json(payload)
            # the station's (availability, reset) go to connector 0
            assert msg.connector == (0 if key.startswith("station_")
                                     else int(key[1:key.index("_")]))
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


async def test_a_dropped_connector_loses_its_device(mosquitto: Broker, station: str) -> None:
    bus, _ = publisher(mosquitto, station, connectors=[1, 2])
    async with running(bus):
        await asyncio.sleep(0.3)
        await bus.drain()
    ha = home_assistant(mosquitto, station)
    bus, pub = publisher(mosquitto, station, connectors=[1])
    seen = Configs(ha, pub)
    async with running(ha):
        await seen.all(2)  # retained: both connectors
        async with running(bus):
            await seen.station()
            removed = set()
            for _ in range(2):  # connector 2 emptied, connector 1 announced (either order)
                topic, payload, _ = await seen.connector()
                if payload == b"":
                    removed.add(topic)
                else:
                    assert configured_connectors({topic: json.loads(payload)}) == {1}
    assert removed == {connector_topic(station, 2, root=mosquitto.root)}


async def test_turning_discovery_off_removes_every_device(mosquitto: Broker,
                                                          station: str) -> None:
    bus, _ = publisher(mosquitto, station, connectors=[1, 2])
    async with running(bus):
        await asyncio.sleep(0.3)
        await bus.drain()
    bus, pub = publisher(mosquitto, station, connectors=[1, 2], enabled=False)
    ha = home_assistant(mosquitto, station)
    seen = Configs(ha, pub)
    views = raw_queue(ha, f"homeassistant/voltbus/{pub.station.object_id}/#")
    async with running(ha):
        await seen.all(2)
        async with running(bus):
            topic, payload, _ = await asyncio.wait_for(seen.queue.get(), TIMEOUT)
            seen.latest[topic] = payload
            assert payload == b""  # HA removes the device and its entities
            emptied = {(await seen.connector())[0] for _ in range(2)}
            ha.publish_raw("homeassistant/status", b"online", qos=1)
            await ha.drain()
            await asyncio.sleep(0.3)
            await bus.drain()
    assert emptied == set(pub.topics()[1:])
    assert all(seen.latest[t] == b"" for t in pub.topics())
    assert pub.published == 0
    # Nothing retained any more: a late subscriber sees only the marker it publishes itself.
    late = home_assistant(mosquitto, station)
    stale = raw_queue(late, f"homeassistant/device/{pub.station.object_id}/#")
    stale_views = raw_queue(late, f"homeassistant/voltbus/{pub.station.object_id}/#")
    marker = f"homeassistant/voltbus_test/{station}"
    seen_marker = raw_queue(late, marker)
    async with running(late):
        late.publish_raw(marker, b"marker", qos=1)
        await asyncio.wait_for(seen_marker.get(), TIMEOUT)
    assert stale.empty()
    assert stale_views.empty()
    assert not views.empty()  # the views were there, and were cleared


async def test_entities_dropped_by_a_new_configuration_are_removed(
    mosquitto: Broker, station: str
) -> None:
    bus, _ = publisher(mosquitto, station, phases=3)
    async with running(bus):
        await asyncio.sleep(0.3)
        await bus.drain()
    ha = home_assistant(mosquitto, station)
    bus, pub = publisher(mosquitto, station, phases=1)  # a single-phase meter now
    seen = Configs(ha, pub)
    async with running(ha):
        await seen.all(1)  # retained, three phases
        async with running(bus):
            await seen.station()
            configs = [json.loads((await seen.connector())[1]) for _ in range(2)]
    removal = next(c for c in configs if "c1_current_l3" in c["components"])
    assert removal["components"]["c1_current_l2"] == {"platform": "sensor"}
    assert removal["components"]["c1_voltage_l3"] == {"platform": "sensor"}
    assert len(removal["components"]["c1_current_l1"]) > 1
    assert ha_schema.check_device_config(removal) == []


async def test_the_single_device_layout_is_migrated(mosquitto: Broker, station: str) -> None:
    """Before connectors were devices, every entity was a component of the station device. On
    upgrade those components are removed from the station's config before the connector's
    config (same unique_ids) arrives, so HA does not ignore them as duplicates."""
    old = StationDiscovery(station=station, connectors=(1,), max_current_a=16.0,
                           min_current_a=6.0, sw_version="0.0.9", model="voltbus",
                           root=mosquitto.root)
    legacy = old.station_config()
    legacy["components"].update(old.connector_components(1))
    bus, pub = publisher(mosquitto, station, settle_s=0.5)
    ha = home_assistant(mosquitto, station)
    seen = Configs(ha, pub)
    async with running(ha):
        ha.publish_raw(pub.topic, json.dumps(legacy).encode(), qos=1, retain=True)
        assert (await seen.station())["components"].keys() == legacy["components"].keys()
        loop = asyncio.get_running_loop()
        async with running(bus):
            first = await seen.station()
            assert not any(k.startswith("c1_") for k in first["components"])
            stubs = await seen.station()
            stubbed_at = loop.time()
            topic, payload, _ = await seen.connector()
            arrived_at = loop.time()
    assert {k for k in stubs["components"] if k.startswith("c1_")} == set(
        old.connector_components(1))
    assert all(c == {"platform": c["platform"]} for k, c in stubs["components"].items()
               if k.startswith("c1_"))
    assert topic == connector_topic(station, 1, root=mosquitto.root)
    assert arrived_at - stubbed_at >= 0.3
    moved = json.loads(payload)["components"]
    assert {c["unique_id"] for c in moved.values()} >= {
        c["unique_id"] for c in old.connector_components(1).values()}
    assert ha_schema.check_devices({pub.topic: stubs, topic: json.loads(payload)}) == []


@pytest.mark.parametrize("bad", [b"not json", b"[1, 2]", b'{"components": [1]}'])
async def test_unreadable_retained_config_is_replaced(
    mosquitto: Broker, station: str, bad: bytes
) -> None:
    bus, pub = publisher(mosquitto, station)
    ha = home_assistant(mosquitto, station)
    seen = Configs(ha, pub)
    async with running(ha):
        ha.publish_raw(pub.topic, bad, qos=1, retain=True)
        assert (await asyncio.wait_for(seen.queue.get(), TIMEOUT))[1] == bad
        async with running(bus):
            configs = await seen.all(1)
    assert configured_connectors(configs) == {1}


# --- the session view (mirror.py) -------------------------------------------------------------


async def latest_view(broker: Broker, topic: str, station: str) -> bytes:
    """What an HA that (re)starts now reads on a view topic."""
    ha = home_assistant(broker, station)
    queue = raw_queue(ha, topic)
    async with running(ha):
        _, payload, retain = await asyncio.wait_for(queue.get(), TIMEOUT)
    assert retain
    return payload


async def test_session_view_is_retained_between_sessions_and_keeps_the_last(
    mosquitto: Broker, station: str
) -> None:
    """Issue 13: session energy was `unknown` between sessions and after every HA restart; the
    last session's energy was never shown; the last RFID tag was lost on every HA restart."""
    root = mosquitto.root
    gateway = Bus(mosquitto.settings("gateway", stations=[station]), station=station,
                  service=None)
    hardware = Bus(mosquitto.settings("hardware", stations=[station]), station=station,
                   service=None)
    view_topic = mirror_topic(station, 1, root=root)
    bus, _ = publisher(mosquitto, station)
    ha = home_assistant(mosquitto, station)
    views = raw_queue(ha, view_topic)

    async def next_view(check: Any) -> SessionView:
        while True:
            _, payload, _ = await asyncio.wait_for(views.get(), TIMEOUT)
            view = SessionView.model_validate_json(payload)
            if check(view):
                return view

    tx = TransactionState(transaction_id=7, id_tag="04A1B2C3", started_at=T0,
                          meter_start_wh=1000.0, energy_wh=2500.0)
    done = SessionSummary(transaction_id=7, id_tag="04A1B2C3", started_at=T0,
                          stopped_at=T0 + timedelta(hours=1), meter_start_wh=1000.0,
                          meter_stop_wh=4000.0, energy_wh=3000.0, stop_reason="Remote")
    async with running(gateway, hardware, ha):
        async with running(bus):
            idle = await next_view(lambda v: True)
            assert (idle.active, idle.energy_wh, idle.last) == (False, 0.0, None)
            gateway.publish(ch.TRANSACTION, tx, connector=1)
            running_now = await next_view(lambda v: v.active)
            assert (running_now.energy_wh, running_now.transaction_id) == (2500.0, 7)
            assert running_now.cost == pytest.approx(0.625)
            gateway.publish(ch.TRANSACTION, None, connector=1)
            gateway.publish(ch.SESSION, done, connector=1)
            after = await next_view(lambda v: v.last is not None and not v.active)
            hardware.publish(ch.RFID, RfidSeen(id_tag="CAFE01", reader="front", ts=T0))
            await asyncio.sleep(0.3)
            await bus.drain()
        assert after.energy_wh == 0.0
        assert after.last is not None
        assert (after.last.energy_wh, after.last.duration_s, after.last.stop_reason) == (
            3000.0, 3600.0, "Remote")
        # An HA (re)starting now: session energy 0, the last session on its own.
        kept = SessionView.model_validate_json(await latest_view(mosquitto, view_topic, station))
        assert (kept.active, kept.energy_wh, kept.last) == (False, 0.0, after.last)
        station_view = StationView.model_validate_json(
            await latest_view(mosquitto, mirror_topic(station, root=root), station))
        assert station_view.last_rfid is not None
        assert station_view.last_rfid.id_tag == "CAFE01"
        assert station_view.price_per_kwh == 0.25
        # The publisher restarts (the API does, often): the last session and card stay.
        bus, _ = publisher(mosquitto, station)
        async with running(bus):
            await asyncio.sleep(0.5)
            await bus.drain()
    kept = SessionView.model_validate_json(await latest_view(mosquitto, view_topic, station))
    assert kept.last == after.last
    station_view = StationView.model_validate_json(
        await latest_view(mosquitto, mirror_topic(station, root=root), station))
    assert station_view.last_rfid is not None
    assert station_view.last_rfid.id_tag == "CAFE01"
