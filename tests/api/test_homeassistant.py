"""The API service announces its stations to Home Assistant (discovery on by default)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.api.conftest import api_settings, running_api
from tests.fixtures.mosquitto import Broker
from voltbus_common.bus import Bus
from voltbus_common.homeassistant import connector_topic, discovery_topic


async def retained_config(broker: Broker, station: str, topic: str | None = None) -> bytes:
    """What a Home Assistant that connects now would read on the station's discovery topic
    (or another one)."""
    seen: asyncio.Queue[bytes] = asyncio.Queue()
    ha = Bus(broker.settings("homeassistant", stations=[station]), station=station, service=None)

    async def keep(topic: str, payload: bytes, retain: bool) -> None:
        await seen.put(payload)

    ha.on_raw(topic or discovery_topic(station, root=broker.root), keep)
    task = asyncio.create_task(ha.run())
    try:
        return await asyncio.wait_for(seen.get(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_api_publishes_the_station_device_with_the_web_page_link(
    mosquitto: Broker, station: str, tmp_path: Path
) -> None:
    settings = api_settings(mosquitto, station, tmp_path, connectors=2,
                            public_url="http://charger.local:8080/")
    async with running_api(settings) as (_, ctx):
        assert await ctx.buses[station].drain()
        config = json.loads(await retained_config(mosquitto, station))
        # Connector 2 is a device of its own (via the station), announced after the station.
        await asyncio.sleep(1.5)
        assert await ctx.buses[station].drain()
        second = json.loads(await retained_config(
            mosquitto, station, connector_topic(station, 2, root=mosquitto.root)))
    assert config["device"]["configuration_url"] == "http://charger.local:8080/"
    assert second["device"]["via_device"] == config["device"]["identifiers"][0]
    unique_ids = {c["unique_id"] for c in second["components"].values()}
    assert f"voltbus_{station}_c2_energy" in unique_ids, unique_ids


async def test_discovery_off_removes_the_device(mosquitto: Broker, station: str,
                                                tmp_path: Path) -> None:
    async with running_api(api_settings(mosquitto, station, tmp_path)) as (_, ctx):
        assert await ctx.buses[station].drain()
    async with running_api(api_settings(mosquitto, station, tmp_path,
                                        ha_discovery=False)) as (_, ctx):
        await asyncio.sleep(0.5)  # the publisher reads its previous config back, then clears it
        assert await ctx.buses[station].drain()
    try:
        payload = await retained_config(mosquitto, station)
    except TimeoutError:
        payload = b""  # no retained config at all: removed
    assert payload == b""
