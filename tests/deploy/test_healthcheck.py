"""`python -m voltbus_common.healthcheck <service>` (the compose healthcheck) on real Mosquitto."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.mosquitto import Broker
from voltbus_common import channels as ch
from voltbus_common import healthcheck as hc
from voltbus_common.bus import Bus
from voltbus_common.enums import Service
from voltbus_common.settings import BusSettings


async def probe(broker: Broker, service: str, stations: str, **env: str) -> tuple[int, str]:
    full = {**os.environ, **broker.env(service), "VOLTBUS_STATIONS": stations,
            "VOLTBUS_HEALTHCHECK_TIMEOUT_S": "1", **env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voltbus_common.healthcheck", service, env=full,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel until it ends (asyncio.wait_for in Python 3.11 can swallow one cancellation)."""
    for _ in range(10):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        if done:
            return
    raise AssertionError("bus did not stop")


async def test_healthy_only_while_every_station_is_online(mosquitto: Broker, station: str) -> None:
    stations = f"{station}a,{station}b"
    code, err = await probe(mosquitto, "gateway", stations)
    assert code == 1
    assert "None" in err  # never online
    buses = [Bus(mosquitto.settings("gateway", stations=[s]), station=s, service="gateway")
             for s in stations.split(",")]
    tasks = [asyncio.create_task(b.run()) for b in buses]
    for b in buses:
        await b.wait_connected(5)
        assert await b.drain()
    try:
        assert await probe(mosquitto, "gateway", stations) == (0, "")
        # Another service's status does not count.
        code, _ = await probe(mosquitto, "hardware", stations)
        assert code == 1
        await stop(tasks[1])  # a clean stop publishes offline
        code, err = await probe(mosquitto, "gateway", stations)
        assert code == 1
        assert f"'{station}b': 'offline'" in err
    finally:
        await stop(tasks[0])
        await stop(tasks[1])


async def test_unreachable_broker_is_unhealthy(mosquitto: Broker, station: str) -> None:
    code, err = await probe(mosquitto, "recorder", station, VOLTBUS_MQTT_PORT="1")
    assert code == 1
    assert "unhealthy: MQTT" in err


async def test_wrong_service_name_is_a_usage_error(mosquitto: Broker, station: str) -> None:
    code, err = await probe(mosquitto, "nonsense", station)
    assert code == 2
    assert "usage" in err


def test_probe_uses_the_contracts_topic_and_the_bus_settings(tmp_path: Path) -> None:
    """The probe stays light (no pydantic), so check here that it agrees with what it mirrors."""
    assert hc.DEFAULT_ROOT == ch.DEFAULT_ROOT
    assert set(hc.SERVICES) == {s.value for s in Service}
    for service in hc.SERVICES:
        assert hc.status_topic("site/v2", "CP-7", service) == ch.SERVICE_STATUS.topic(
            "site/v2", station="CP-7", service=service)
    secret = tmp_path / "pw"
    secret.write_text("s3cret-password\n")
    env = {"VOLTBUS_MQTT_HOST": "mosquitto", "VOLTBUS_MQTT_PORT": "8883",
           "VOLTBUS_MQTT_USERNAME": "gateway", "VOLTBUS_MQTT_PASSWORD_FILE": str(secret),
           "VOLTBUS_MQTT_TLS": "true", "VOLTBUS_MQTT_CA_FILE": "/ca.crt",
           "VOLTBUS_ROOT": "site/v2", "VOLTBUS_STATIONS": "CP1, CP2"}
    probe = hc.ProbeSettings.from_env(env)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        bus = BusSettings()
    assert (probe.host, probe.port, probe.username, probe.password, probe.tls,
            probe.ca_file, probe.root, list(probe.stations)) == (
        bus.mqtt_host, bus.mqtt_port, bus.mqtt_username, bus.mqtt_secret(), bus.mqtt_tls,
        str(bus.mqtt_ca_file), bus.root, bus.stations)
    defaults = hc.ProbeSettings.from_env({})
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("VOLTBUS_"):
                mp.delenv(k)
        bus = BusSettings()
    assert (defaults.host, defaults.port, defaults.root, list(defaults.stations),
            defaults.tls) == (bus.mqtt_host, bus.mqtt_port, bus.root, bus.stations, bus.mqtt_tls)


def test_probe_imports_no_pydantic() -> None:
    code = ("import sys, voltbus_common.healthcheck; "
            "sys.exit(1 if 'pydantic' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
