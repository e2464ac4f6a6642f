"""The amqtt fallback broker enforces the same passwords and ACL as Mosquitto."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.fixtures.mosquitto import collector, running
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.devbroker import EmbeddedBroker
from voltbus_common.models import RelayCommand
from voltbus_common.settings import BusSettings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path_factory.mktemp("amqtt"), tools_dir=REPO / "var" / "tools")
    broker.prepare()
    broker.start(timeout=180)
    yield broker
    broker.stop()


def settings(broker: EmbeddedBroker, user: str) -> BusSettings:
    return BusSettings(mqtt_port=broker.port, mqtt_username=user,
                       mqtt_password=broker.passwords[user])


async def test_embedded_broker_round_trip_and_acl(embedded: EmbeddedBroker, station: str) -> None:
    impostor = Bus(settings(embedded, "hardware"), station=station, service=None)
    gateway = Bus(settings(embedded, "gateway"), station=station, service=None)
    hardware = Bus(settings(embedded, "hardware"), station=station, service="hardware")
    commands = collector(hardware, ch.RELAY_SET)
    async with running(impostor, gateway, hardware):
        impostor.publish(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await impostor.drain()
        gateway.publish(ch.RELAY_SET, RelayCommand(closed=False), connector=1)
        first = await asyncio.wait_for(commands.get(), 5)
        await asyncio.sleep(0.2)
    assert first.payload.closed is False
    assert commands.empty()


async def test_embedded_broker_refuses_a_wrong_password(embedded: EmbeddedBroker) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", embedded.port, username="gateway", password="no"):
            pass


def test_the_password_file_is_never_readable_by_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: the launcher wrote the hashes, then chmodded: readable by everyone until then,
    and for good when the chmod never came (here: chmod fails, as after a crash in between)."""
    import importlib.util
    import os

    spec = importlib.util.spec_from_file_location(
        "amqtt_launcher", REPO / "common" / "voltbus_common" / "embedded" / "amqtt_launcher.py")
    assert spec is not None
    assert spec.loader is not None
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)

    def no_chmod(self: Path, mode: int) -> None:
        raise OSError("chmod never came")
    monkeypatch.setattr(Path, "chmod", no_chmod)
    old = os.umask(0o022)
    try:
        path = tmp_path / "amqtt_passwd"
        path.write_text("stale\n")  # a file from before, still readable: replaced
        launcher.write_private_text(path, "hardware:$argon2id$...\n")
    finally:
        os.umask(old)
    assert path.read_text() == "hardware:$argon2id$...\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["amqtt_passwd"]  # no temp file left
