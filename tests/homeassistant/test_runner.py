"""`python -m voltbus_common.homeassistant` as a process on the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from tests.fixtures.mosquitto import Broker
from tests.homeassistant import ha_schema
from tests.homeassistant.test_publisher import home_assistant, raw_queue, running
from voltbus_common.homeassistant import connector_topic, discovery_topic


async def start(broker: Broker, stations: list[str], **env: str) -> asyncio.subprocess.Process:
    full = {**os.environ, **broker.env("api"), "VOLTBUS_STATIONS": ",".join(stations),
            "VOLTBUS_CONNECTORS": "2", "VOLTBUS_MAX_CURRENT_A": "32",
            "VOLTBUS_PUBLIC_URL": "http://voltbus.local:8080/", **env}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voltbus_common.homeassistant", env=full,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_runner_announces_every_station_then_removes_when_off(
        mosquitto: Broker, station: str) -> None:
    stations = [f"{station}a", f"{station}b"]
    ha = home_assistant(mosquitto, station)
    topics = {s: [discovery_topic(s, root=mosquitto.root)]
              + [connector_topic(s, n, root=mosquitto.root) for n in (1, 2)] for s in stations}
    queues = {t: raw_queue(ha, t) for ts in topics.values() for t in ts}
    async with running(ha):
        proc = await start(mosquitto, stations)
        try:
            for s in stations:
                configs = {t: json.loads((await asyncio.wait_for(queues[t].get(), 15))[1])
                           for t in topics[s]}
                assert ha_schema.check_devices(configs) == []
                limit = configs[topics[s][2]]["components"]["c2_current_limit"]
                assert (limit["min"], limit["max"]) == (6.0, 32.0)
                assert all(c["device"]["configuration_url"] == "http://voltbus.local:8080/"
                           for c in configs.values())
        finally:
            code, err = await stop(proc)
        assert code == 0, err
        proc = await start(mosquitto, stations, VOLTBUS_HA_DISCOVERY="false")
        try:
            for s in stations:
                for t in topics[s]:
                    _, payload, _ = await asyncio.wait_for(queues[t].get(), 15)
                    assert payload == b"", t
        finally:
            code, err = await stop(proc)
        assert code == 0, err
