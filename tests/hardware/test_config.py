"""The station file: validation messages name the field; the registry builds or explains."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.fixtures.mosquitto import Broker
from voltbus_common.settings import ConfigError
from voltbus_hardware.config import load_station_file, parse_station
from voltbus_hardware.drivers.simulated import SimEvse, SimMeter, SimRelay
from voltbus_hardware.registry import build_station

SIM = {"evse": {"type": "sim"}, "relay": {"type": "sim"}}


@pytest.mark.parametrize(("data", "message"), [
    ({"serial": {"rs485": {"port": "/dev/ttyUSB0"}}, "connectors": [
        SIM, {**SIM, "meter": {"type": "modbus", "model": "eastron_sdm630", "bus": "rs485",
                               "address": 300}}]},
     "connectors[1].meter.address: must be 1..247"),
    ({"connectors": [{**SIM, "relay": {"type": "gpio", "pin": 99}}]},
     "connectors[0].relay.pin: must be 0..53"),
    ({"connectors": [{**SIM, "relay": {"type": "gpio", "pin": 5, "colour": "red"}}]},
     "connectors[0].relay.colour: Extra inputs are not permitted"),
    ({"connectors": [{**SIM, "evse": {"type": "tesla"}}]},
     "connectors[0].evse: Input tag 'tesla' found using 'type' does not match"),
    ({"connectors": [{"evse": {"type": "sim"}}]}, "connectors[0].relay: Field required"),
    ({"connectors": []}, "connectors: List should have at least 1 item"),
    ({"connectors": [{**SIM, "meter": {"type": "modbus", "model": "eastron_sdm120",
                                       "bus": "rs485"}}]},
     "connectors[0].meter.bus: 'rs485' is not under serial:"),
    ({"connectors": [{**SIM, "relay": {"type": "evse"}}]},
     "connectors[0]: relay/meter type 'evse' needs an EVSE board"),
    ({"connectors": [SIM, {**SIM, "id": 1}]}, "connectors: ids must be unique"),
    ({"connectors": [{**SIM, "max_current_a": 100}]},
     "connectors[0].max_current_a: must be 6..80"),
    ({"connectors": [SIM], "rfid": [{"type": "pn532", "interface": "uart"}]},
     "port: needed when interface is uart"),
])
def test_validation_names_the_field(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_station(data)
    assert message in str(caught.value)


def test_yaml_file_builds_simulated_station(tmp_path: Path) -> None:
    path = tmp_path / "station.yaml"
    path.write_text("connectors:\n"
                    "  - {evse: {type: sim}, relay: {type: sim}, meter: {type: sim}}\n"
                    "  - id: 5\n    max_current_a: 20\n"
                    "    evse: {type: sim}\n    relay: {type: sim}\n"
                    "rfid: [{type: sim, name: door}]\n")
    station = build_station(load_station_file(path), "CP9")
    assert sorted(station.connectors) == [1, 5]
    one = station.connectors[1]
    assert isinstance(one.evse, SimEvse)
    assert isinstance(one.relay, SimRelay)
    assert isinstance(one.meter, SimMeter)
    assert one.evse.sim is one.relay.sim is one.meter.sim  # one simulated EV per connector
    assert station.connectors[5].meter is None
    assert station.connectors[5].max_current_a == 20
    assert [r.name for r in station.readers] == ["door"]


def test_bad_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "station.yaml"
    path.write_text("connectors: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_station_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_station_file(tmp_path / "missing.yaml")


def test_gpio_without_a_pi_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    cfg = parse_station({"connectors": [{**SIM, "relay": {"type": "gpio", "pin": 17}}]})
    with pytest.raises(ConfigError) as caught:
        build_station(cfg, "CP1")
    assert "no GPIO available" in str(caught.value)
    assert "GPIOZERO_PIN_FACTORY=mock" in str(caught.value)


async def test_service_refuses_invalid_station_file(mosquitto: Broker, tmp_path: Path) -> None:
    path = tmp_path / "station.yaml"
    path.write_text("connectors:\n  - evse: {type: sim}\n    relay: {type: gpio, pin: 77}\n")
    env = {**os.environ, **mosquitto.env("hardware"), "VOLTBUS_STATION_FILE": str(path),
           "VOLTBUS_STATIONS": "CP1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voltbus_hardware", env=env, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "connectors[0].relay.pin: must be 0..53" in err.decode()
