"""The home battery input: a SunSpec battery (model 802) served by pymodbus on loopback, the MQTT
JSON-path source on the real broker, and the energy manager as a process putting the battery on
energy/site and counting it in the surplus (charging counts unless battery first; discharging
never). Bad input (a malformed payload, a failed read) leaves no reading and a clear status,
never a crash. The model 802 image is written from SunSpec's point list (SoC at offset 9, W at
45, SoC_SF at 54, W_SF at 61 of the 62 data registers), not from the source under test."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.energy.test_grid_meters import common_model, s16, sunspec_image, sunspec_server
from tests.energy.test_sources import energy_and_feeder, rejected_reasons
from tests.fixtures.mosquitto import Broker, collector, running
from tests.fixtures.services import ServiceGroup, wait_online
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.models import SiteState
from voltbus_energy.manager import EnergyManager
from voltbus_energy.sources.battery import BatteryReading, MqttJsonBattery, SunSpecBattery
from voltbus_energy.sources.sunspec import SunSpecDevice


def battery_model(soc: int, soc_sf: int, watts: int, w_sf: int) -> list[int]:
    """Model 802 (L = 62): AHRtg, WHRtg, WChaRteMax, WDisChaRteMax, DisChaRte, SoCMax, SoCMin,
    SocRsvMax, SoCRsvMin, SoC (9), DoD, SoH, NCyc (2), ChaSt, ... A (42), AChaMax, ADisChaMax,
    W (45), ..., the scale factors from 50: AHRtg_SF, WHRtg_SF, WChaDisChaMax_SF, DisChaRte_SF,
    SoC_SF (54), DoD_SF, SoH_SF, V_SF, CellV_SF, A_SF, AMax_SF, W_SF (61)."""
    body = [0xFFFF] * 62
    body[0:9] = [200, 10_000, 5000, 5000, 0xFFFF, 100, 5, 0xFFFF, 0xFFFF]
    body[9] = soc
    body[45] = s16(watts)
    body[50:62] = [0, 0, 0, 0, s16(soc_sf), 0, 0, s16(-1), s16(-3), s16(-1), 0, s16(w_sf)]
    return [802, 62, *body]


async def test_sunspec_battery_power_and_soc() -> None:
    # 1234 x 10^-1 = 123.4 W... discharging; SoC 655 x 10^-1 = 65.5 %
    image = sunspec_image(common_model("Fronius", "BYD"), battery_model(655, -1, 1234, -1))
    async with sunspec_server({1: (40000, image)}) as port:
        battery = SunSpecBattery(SunSpecDevice("127.0.0.1", port, unit=1, timeout_s=0.5))
        assert await battery.poll_once() == BatteryReading(123.4, 65.5)
        assert battery.status is None
        flipped = SunSpecBattery(SunSpecDevice("127.0.0.1", port, unit=1), sign=-1)
        assert await flipped.poll_once() == BatteryReading(-123.4, 65.5)
        battery.device.close()
        flipped.device.close()


@pytest.mark.expected_errors
async def test_sunspec_battery_read_failures_leave_a_status() -> None:
    # a device without model 802, then one whose SoC is nonsense, then none at all
    meter_only = sunspec_image(common_model("Fronius", "TS"))
    async with sunspec_server({1: (40000, meter_only)}) as port:
        battery = SunSpecBattery(SunSpecDevice("127.0.0.1", port, unit=1, timeout_s=0.5))
        assert await battery.poll_once() is None
        assert battery.reading() is None
        assert battery.status is not None
        assert "none of the models (802,)" in battery.status
        battery.device.close()
    bad_soc = sunspec_image(battery_model(1500, -1, 100, 0))  # 150 %
    async with sunspec_server({1: (40000, bad_soc)}) as port:
        battery = SunSpecBattery(SunSpecDevice("127.0.0.1", port, unit=1, timeout_s=0.5))
        assert await battery.poll_once() is None
        assert battery.status == "battery: SunSpec model 802: state of charge 150 % is " \
                                 "outside 0..100"
        battery.device.close()
    assert await battery.poll_once() is None  # the server is gone
    assert battery.status is not None
    assert "cannot connect" in battery.status
    assert battery.failures == 2


async def test_mqtt_battery_reads_rejects_and_goes_stale(mosquitto: Broker, station: str
                                                         ) -> None:
    topic = f"homeassistant/sensor/{station}/battery/state"
    energy, feeder, rejected = energy_and_feeder(mosquitto, station)
    now = [0.0]
    battery = MqttJsonBattery(topic, power_path="battery.power", soc_path="battery.soc",
                              sign=-1, timeout_s=30, clock=lambda: now[0])
    battery.attach(energy)
    assert battery.status == "battery: no reading yet"
    async with running(energy, feeder):
        await asyncio.sleep(0.3)  # the subscription is made on connect
        feeder.publish_raw(topic, json.dumps({"battery": {"power": 800, "soc": 42}}).encode())
        for _ in range(100):
            if battery.reading() is not None:
                break
            await asyncio.sleep(0.05)
        assert battery.reading() == BatteryReading(-800.0, 42.0)  # charging (sign -1)
        assert battery.status is None
        for bad in (b"{not json", json.dumps({"battery": {"soc": 40}}).encode(),
                    json.dumps({"battery": {"power": 1, "soc": 140}}).encode()):
            feeder.publish_raw(topic, bad)
        reasons = await rejected_reasons(rejected, 3)
    assert reasons[0].startswith("battery: Expecting property name")
    assert reasons[1] == "battery: no 'power' in {'soc': 40}"
    assert reasons[2] == "battery: state of charge 140 % is outside 0..100"
    assert battery.status == "battery: payload rejected (state of charge 140 % is outside " \
                             "0..100)"
    assert battery.reading() == BatteryReading(-800.0, 42.0)  # the last good one, while fresh
    now[0] = 31.0
    assert battery.reading() is None
    assert battery.status == "battery: no reading for 30 s"


class _Fixed:
    status: str | None = None

    def __init__(self, reading: BatteryReading | None) -> None:
        self.value = reading

    def attach(self, bus: Bus) -> None:
        pass

    def reading(self) -> BatteryReading | None:
        return self.value


@pytest.mark.parametrize(("battery", "first", "below", "expected"), [
    (None, False, 100.0, 0.0),
    (BatteryReading(-1500.0, 50.0), False, 100.0, 1500.0),  # charging: the cars may take it
    (BatteryReading(-1500.0, 50.0), True, 100.0, 0.0),  # battery first
    (BatteryReading(-1500.0, 50.0), True, 40.0, 1500.0),  # battery first only below 40 %
    (BatteryReading(-1500.0, None), True, 40.0, 0.0),  # SoC unknown: battery first holds
    (BatteryReading(900.0, 50.0), False, 100.0, -900.0),  # discharging never counts
])
def test_the_surplus_convention(battery: BatteryReading | None, first: bool, below: float,
                                expected: float) -> None:
    manager: Any = EnergyManager.__new__(EnergyManager)
    manager.battery_first, manager.battery_first_below_soc = first, below
    assert manager.battery_surplus_w(battery) == expected


async def test_the_service_puts_the_battery_on_the_site_and_in_the_surplus(
        mosquitto: Broker, services: ServiceGroup, station: str) -> None:
    """`python -m voltbus_energy` with the grid and the battery on MQTT topics: exporting 1 kW
    while the battery charges at 2 kW is 3 kW of surplus; a malformed battery payload is
    rejected, the status says so and the manager goes on."""
    site = f"S{station}"
    grid_topic = f"homeassistant/sensor/{station}/grid/state"
    battery_topic = f"homeassistant/sensor/{station}/battery/state"
    services.start("energy", {
        **mosquitto.env("energy"), "VOLTBUS_STATIONS": station, "VOLTBUS_ENERGY_SITE": site,
        "VOLTBUS_ENERGY_GRID": "mqtt", "VOLTBUS_ENERGY_GRID_TOPIC": grid_topic,
        "VOLTBUS_ENERGY_GRID_CURRENT_PATHS": "a", "VOLTBUS_ENERGY_BATTERY": "mqtt",
        "VOLTBUS_ENERGY_BATTERY_TOPIC": battery_topic,
        "VOLTBUS_ENERGY_BATTERY_POWER_PATH": "w", "VOLTBUS_ENERGY_BATTERY_SOC_PATH": "soc"})
    feeder = Bus(mosquitto.settings("homeassistant", stations=[station]), station=station,
                 service=None)
    sites = collector(feeder, ch.ENERGY_SITE, station=site)

    async def next_site(battery: bytes, check: Any) -> SiteState:
        for _ in range(20):  # energy/site comes once a second
            feeder.publish_raw(grid_topic, json.dumps({"power_w": -1000, "a": -1.4}).encode())
            feeder.publish_raw(battery_topic, battery)
            msg = await asyncio.wait_for(sites.get(), 15)
            if msg.payload is not None and check(msg.payload):
                return msg.payload
        raise AssertionError(services.logs())

    async with running(feeder):
        await wait_online(mosquitto, site, ("energy",))
        state = await next_site(json.dumps({"w": -2000, "soc": 61.5}).encode(),
                                lambda s: s.battery_power_w is not None)
        assert (state.battery_power_w, state.battery_soc_pct, state.battery_status) == (
            -2000.0, 61.5, None)
        assert state.grid_power_w == -1000.0
        assert state.surplus_w == 3000.0
        state = await next_site(b'{"w": "lots"}', lambda s: s.battery_status is not None)
        assert state.battery_status is not None
        assert state.battery_status.startswith("battery: payload rejected")
        state = await next_site(json.dumps({"w": 500, "soc": 60}).encode(),
                                lambda s: s.battery_power_w == 500.0)
        assert state.battery_status is None
        assert state.surplus_w == 500.0  # 1 kW export, minus the 0.5 kW the battery gives
    assert "Traceback" not in services.logs()
