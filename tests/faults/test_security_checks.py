"""The broker's ACL as a matrix (issue 15, security checks): every MQTT user, with its real
credentials, tries to publish on every topic of the contract against a real Mosquitto running the
generated password file and ACL. Exactly the topics whose channel names the user as a writer get
through (a per-service topic only for the user's own service); every other one is dropped by the
broker. Anonymous clients and wrong passwords are refused at CONNECT.

Two generators are checked: `mosquitto/init_broker.py` with the committed compose config (what
compose and the systemd install run, including its `healthcheck` user) and
`voltbus_common.devbroker` (what `voltbus up`, the tests and the benchmarks run).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.deploy.test_broker_init import Broker as ComposeBroker
from tests.deploy.test_broker_init import run_init, write_secrets
from voltbus_common.broker import acl_rules
from voltbus_common.channels import (
    ALL_USERS,
    CHANNELS,
    DEFAULT_ROOT,
    Channel,
)
from voltbus_common.devbroker import LocalMosquitto

SERVICES = sorted({user for c in CHANNELS if "service" in c.fields for user in c.writers})
# Home Assistant discovery is not a voltbus channel; acl_rules grants it to these writers.
HA_WRITERS = frozenset(u for u, rule in acl_rules().items() if "homeassistant/#" in rule["write"])


@dataclass(frozen=True)
class Target:
    """One concrete topic, who may write it, and whether it is retained."""

    topic: str
    writers: frozenset[str]
    retain: bool


def targets(station: str, root: str = DEFAULT_ROOT) -> list[Target]:
    """Every channel as concrete topics: a per-service channel once per service (only that
    service may write its own), plus discovery and a topic outside the voltbus tree."""
    out = []
    for channel in CHANNELS:
        out += _concrete(channel, station, root)
    out.append(Target(f"homeassistant/sensor/{station}/config", HA_WRITERS, True))
    out.append(Target(f"elsewhere/{station}/x", frozenset(), False))
    return out


def _concrete(channel: Channel[Any], station: str, root: str) -> list[Target]:
    args: dict[str, str | int] = {"station": station, "connector": 1}
    if "service" not in channel.fields:  # service/recorder/health has no placeholder
        return [Target(channel.topic(root, **args), channel.writers, channel.retain)]
    return [Target(channel.topic(root, **args, service=s), channel.writers & {s}, channel.retain)
            for s in SERVICES]


@dataclass
class Running:
    """A broker and the credentials of its users."""

    port: int
    passwords: dict[str, str]


@contextlib.contextmanager
def compose_broker(tmp: Path) -> Iterator[Running]:
    passwords = write_secrets(tmp)
    result = run_init(tmp)
    assert result.returncode == 0, result.stderr
    # the healthcheck user's password is fresh on every run: read what init wrote for it
    passwords["healthcheck"] = (tmp / "generated" / "healthcheck").read_text().strip()
    broker = ComposeBroker(tmp)
    broker.start()
    try:
        yield Running(broker.port, passwords)
    finally:
        broker.stop()


@contextlib.contextmanager
def dev_broker(tmp: Path) -> Iterator[Running]:
    broker = LocalMosquitto(tmp / "mosquitto")
    broker.prepare()
    broker.start()
    try:
        yield Running(broker.port, broker.passwords)
    finally:
        broker.stop()


@pytest.fixture(params=["compose-init", "devbroker"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    make = compose_broker if request.param == "compose-init" else dev_broker
    with make(tmp_path) as running:
        yield running


def client(port: int, user: str | None, password: str | None) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, username=user, password=password, timeout=5,
                          identifier=f"acl-{user}-{uuid.uuid4().hex[:6]}")


@contextlib.asynccontextmanager
async def watching(port: int, passwords: dict[str, str]) -> AsyncIterator[list[aiomqtt.Message]]:
    """Everything the broker delivers on `#` (the energy user may read anything: grid meters)."""
    seen: list[aiomqtt.Message] = []
    async with client(port, "energy", passwords["energy"]) as watcher:
        await watcher.subscribe("#", qos=1)

        async def collect() -> None:
            async for message in watcher.messages:
                seen.append(message)
        task = asyncio.create_task(collect())
        try:
            yield seen
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_each_user_publishes_only_its_own_topics(broker: Running) -> None:
    station = f"A{uuid.uuid4().hex[:8]}"
    matrix = targets(station)
    users = [*ALL_USERS, *(["healthcheck"] if "healthcheck" in broker.passwords else [])]
    fences: dict[str, str] = {}
    allowed: set[tuple[str, str]] = set()
    async with watching(broker.port, broker.passwords) as seen:
        for user in users:
            async with client(broker.port, user, broker.passwords[user]) as c:
                for n, target in enumerate(matrix):
                    await c.publish(target.topic, f"{user}:{n}".encode(), qos=1,
                                    retain=target.retain)
                    if user in target.writers:
                        allowed.add((user, target.topic))
                # The fence: a topic nobody may write (the broker drops it) would prove nothing,
                # so the fence is the user's first allowed topic, published last; a subscriber
                # gets one publisher's QoS 1 messages in order.
                mine = [t for t in matrix if user in t.writers]
                if mine:
                    await c.publish(mine[0].topic, f"{user}:fence".encode(), qos=1)
                fences[user] = mine[0].topic if mine else ""
        async with asyncio.timeout(10):
            while not all(any(m.payload == f"{u}:fence".encode() for m in seen)  # noqa: ASYNC110
                          for u in users if fences[u]):
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the healthcheck user has no fence: give its drops time
    delivered = {(m.payload.decode().split(":")[0], str(m.topic)) for m in seen
                 if isinstance(m.payload, bytes) and not m.payload.endswith(b":fence")
                 and station in str(m.topic)}
    denied = len(users) * len(matrix) - len(allowed)
    assert delivered == allowed
    assert {u for u, _ in allowed} == set(ALL_USERS)  # every user is a writer of something
    print(f"ACL matrix: {len(users)} users x {len(matrix)} topics: {len(allowed)} allowed "
          f"and delivered, {denied} denied and not delivered")


@pytest.mark.parametrize(("user", "password"), [
    (None, None), ("operator", "wrong-password-123"), ("nobody", "whatever-password")])
async def test_anonymous_and_wrong_passwords_are_refused(broker: Running, user: str | None,
                                                         password: str | None) -> None:
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)not authori[sz]ed|bad user name"):
        async with client(broker.port, user, password) as c:
            await c.publish(f"{DEFAULT_ROOT}/x/hw/1/relay/set", b'{"closed":true}', qos=1)


async def test_a_bridge_user_writes_only_its_stations_outgoing_topics(tmp_path: Path) -> None:
    """The site broker's bridge-<name> user (init_broker from a `voltbus bridge --site-file`
    file): of every topic of its own station and of another, it may publish exactly what its
    bridge carries out (or both ways) and its own link state, and it receives the energy
    manager's topics only for its own station."""
    import json

    import aiomqtt as mqtt

    from voltbus_common.bridge import bridge_state_topic, bridge_topics
    from voltbus_common.broker import password_entry

    mine, other, site = f"B{uuid.uuid4().hex[:8]}", f"O{uuid.uuid4().hex[:8]}", "home"
    password = "bridge-password-0123456789"
    (tmp_path / "bridges").mkdir()
    (tmp_path / "bridges" / "p1.json").write_text(json.dumps({
        "username": "bridge-p1", "password_hash": password_entry("bridge-p1", password)
        .split(":", 1)[1], "stations": [mine], "site": site}))
    passwords = write_secrets(tmp_path)
    result = run_init(tmp_path, VOLTBUS_BROKER_BRIDGES_DIR=str(tmp_path / "bridges"))
    assert result.returncode == 0, result.stderr
    passwords["bridge-p1"] = password
    broker = ComposeBroker(tmp_path)
    broker.start()
    ways = bridge_topics(DEFAULT_ROOT, [mine], site)
    matrix = targets(mine) + targets(other)
    allowed = {t.topic for t in matrix
               if any(mqtt.Topic(t.topic).matches(f) for f, w in ways if w != "in")}
    allowed.add(bridge_state_topic(DEFAULT_ROOT, [mine]))  # its link state (notifications)
    try:
        async with watching(broker.port, passwords) as seen:
            async with client(broker.port, "bridge-p1", password) as c:
                for n, target in enumerate(matrix):
                    await c.publish(target.topic, f"bridge:{n}".encode(), qos=1,
                                    retain=target.retain)
                fence = sorted(allowed)[0]
                await c.publish(fence, b"bridge:fence", qos=1)
            async with asyncio.timeout(10):
                while not any(m.payload == b"bridge:fence" for m in seen):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        delivered = {str(m.topic) for m in seen if isinstance(m.payload, bytes)
                     and m.payload.startswith(b"bridge:") and m.payload != b"bridge:fence"}
        assert delivered == allowed
        assert allowed
        assert all(mine in t for t in allowed)
        # reading: the energy manager's limits reach it for its own station only
        limit = "{root}/{s}/energy/1/limit/set"
        async with client(broker.port, "bridge-p1", password) as bridge, \
                client(broker.port, "energy", passwords["energy"]) as energy:
            await bridge.subscribe(f"{DEFAULT_ROOT}/#", qos=1)
            for s in (other, mine):
                await energy.publish(limit.format(root=DEFAULT_ROOT, s=s), b'{"amps":6}', qos=1)
            async with asyncio.timeout(5):
                message = await anext(aiter(bridge.messages))
        assert str(message.topic) == limit.format(root=DEFAULT_ROOT, s=mine)
    finally:
        broker.stop()
