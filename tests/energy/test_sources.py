"""Grid-meter sources against the real broker: any topic with JSON paths; bad payloads are
announced on the service's rejected topic and never stop the manager."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.fixtures.mosquitto import Broker, collector, running
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.models import RejectedMessage
from voltbus_energy.sources.base import GridReading
from voltbus_energy.sources.jsonpath import PathError, number_at, parse_path
from voltbus_energy.sources.mqtt_json import MqttJsonGrid


def energy_and_feeder(mosquitto: Broker, station: str
                      ) -> tuple[Bus, Bus, asyncio.Queue[Received[RejectedMessage]]]:
    """The energy service's bus, a feeder publishing a source's topic (as Home Assistant
    would), and the queue of what the energy service rejects."""
    energy = Bus(mosquitto.settings("energy", stations=[station]), station=station,
                 service="energy")
    feeder = Bus(mosquitto.settings("homeassistant", stations=[station]), station=station,
                 service=None)
    return energy, feeder, collector(feeder, ch.SERVICE_REJECTED, service="energy")


async def rejected_reasons(rejected: asyncio.Queue[Received[RejectedMessage]], n: int) -> list[str]:
    """The reasons of the next n messages on service/energy/rejected."""
    reasons = []
    for _ in range(n):
        msg = await asyncio.wait_for(rejected.get(), 10)
        assert msg.payload is not None
        reasons.append(msg.payload.reason)
    return reasons


def test_json_paths() -> None:
    doc = {"ENERGY": {"Power": 1200, "Current": [1.5, "2.5", 3]}}
    assert number_at(doc, parse_path("ENERGY.Power")) == 1200.0
    assert number_at(doc, parse_path("$.ENERGY.Current[1]")) == 2.5
    with pytest.raises(PathError, match="no 'Voltage'"):
        number_at(doc, parse_path("ENERGY.Voltage"))
    with pytest.raises(PathError, match="not a finite number"):
        number_at({"p": "nan"}, parse_path("p"))
    with pytest.raises(ValueError, match="bad JSON path"):
        parse_path("a..[")


@pytest.mark.expected_errors
async def test_mqtt_grid_meter_reads_and_rejects(mosquitto: Broker, station: str) -> None:
    topic = f"homeassistant/sensor/{station}/grid/state"
    energy, feeder, rejected = energy_and_feeder(mosquitto, station)
    readings: asyncio.Queue[GridReading] = asyncio.Queue()
    MqttJsonGrid(topic, power_path="emeters[0].power", current_paths=["emeters[0].current"]
                 ).attach(energy, readings.put_nowait)
    async with running(energy, feeder):
        await asyncio.sleep(0.3)  # the subscription is made on connect
        feeder.publish_raw(topic, b"not json")
        feeder.publish_raw(topic, json.dumps({"emeters": [{"power": 1}]}).encode())
        feeder.publish_raw(topic, json.dumps({"emeters": [{"power": 2300,
                                                           "current": 3.3}]}).encode())
        reading = await asyncio.wait_for(readings.get(), 10)
        assert reading == GridReading(2300.0, (3.3, 3.3, 3.3))
        reasons = await rejected_reasons(rejected, 2)
        assert reasons[0].startswith("grid meter: Expecting value")
        assert reasons[1] == "grid meter: no 'current' in {'power': 1}"
