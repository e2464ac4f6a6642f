"""The parking bay detector (issue 11 E, for 2.0.1 ParkingBayOccupancy): a loop or ultrasonic
sensor's output on a gpiozero input (mock pins), debounced, and the service publishing it
retained on hw/{c}/bay at start-up and on every change."""

from __future__ import annotations

import asyncio

import pytest
from gpiozero.pins.mock import MockFactory

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import rig
from voltbus_common import channels as ch
from voltbus_common.models import SimBay
from voltbus_hardware.config import parse_station
from voltbus_hardware.drivers.gpio_bay import GpioBayDetector
from voltbus_hardware.registry import build_station

BAY_PIN = 16


@pytest.fixture
def pins() -> MockFactory:
    return MockFactory()


async def test_detector_reads_its_input_debounced(pins: MockFactory) -> None:
    """Pulled up, the sensor pulls the pin to GND while a vehicle is there; a flicker shorter
    than bounce_s does not count; occupied_when_active False inverts it."""
    bay = GpioBayDetector(BAY_PIN, bounce_s=0.2, pin_factory=pins)
    pin = pins.pin(BAY_PIN)
    assert bay.occupied() is False
    pin.drive_low()
    assert bay.occupied() is True
    pin.drive_high()
    pin.drive_low()  # within the bounce time: ignored
    assert bay.occupied() is True
    await asyncio.sleep(0.25)
    pin.drive_high()
    assert bay.occupied() is False
    bay.close()
    inverted = GpioBayDetector(BAY_PIN, occupied_when_active=False, bounce_s=0,
                               pin_factory=pins)
    assert inverted.occupied() is True  # pin high: the output says "no vehicle" when on
    inverted.close()


async def test_service_publishes_the_bay_retained(
    pins: MockFactory, mosquitto: Broker, station: str
) -> None:
    """Configured as a connector's `bay`, the detector's value goes out (retained) on hw/1/bay
    at start-up and on every change."""
    hardware = build_station(parse_station({"connectors": [{
        "evse": {"type": "sim"}, "relay": {"type": "sim"}, "meter": {"type": "sim"},
        "bay": {"type": "gpio", "pin": BAY_PIN, "bounce_s": 0}}]}), station, pin_factory=pins)
    pin = pins.pin(BAY_PIN)
    async with rig(mosquitto, station, hardware=hardware) as r:
        bay = r.watches["bay"]
        first = await bay.until(lambda m: True, within=3)
        assert first.payload.occupied is False
        pin.drive_low()  # a car drives in
        arrived = await bay.until(lambda m: m.payload.occupied, within=3)
        assert arrived.payload.occupied is True
        pin.drive_high()
        left = await bay.until(lambda m: not m.payload.occupied, within=3)
        assert left.payload.occupied is False
    assert ch.BAY.retain


async def test_simulated_bay_through_sim_topics(mosquitto: Broker, station: str) -> None:
    """`bay: {type: sim}`: sim/1/bay (what `voltbus sim bay --occupied/--free` sends) moves the
    simulated vehicle, shown at once on hw/1/bay (the simulator wakes the state loop); a
    connector without a detector rejects it."""
    hardware = build_station(parse_station({"connectors": [
        {"evse": {"type": "sim"}, "relay": {"type": "sim"}, "bay": {"type": "sim"}},
        {"evse": {"type": "sim"}, "relay": {"type": "sim"}}]}), station)
    async with rig(mosquitto, station, connectors=2, hardware=hardware) as r:
        bay = r.watches["bay"]
        assert (await bay.next(within=3)).payload.occupied is False
        r.send(ch.SIM_BAY, SimBay(occupied=True), connector=1)
        arrived = await bay.until(lambda m: m.payload.occupied, within=3)
        assert arrived.connector == 1
        r.send(ch.SIM_BAY, SimBay(occupied=False), connector=1)
        await bay.until(lambda m: not m.payload.occupied, within=3)
        r.send(ch.SIM_BAY, SimBay(occupied=True), connector=2)
        rejected = await r.watches["rejected"].until(lambda m: "no bay detector" in str(
            m.payload), within=3)
        assert "sim/2/bay" in str(rejected.payload)
    assert {m.connector for m in bay.seen} == {1}  # connector 2 has no detector: never
