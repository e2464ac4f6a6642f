"""GPIO relay, RGB and single LEDs, buzzer: gpiozero's real device classes on MockFactory pins."""

from __future__ import annotations

import asyncio

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import rig
from voltbus_common import channels as ch
from voltbus_common.enums import LedPattern
from voltbus_common.models import LedCommand, RelayCommand, SimPlug, SimTap
from voltbus_hardware.config import parse_station
from voltbus_hardware.drivers.base import Rgb
from voltbus_hardware.drivers.gpio import GpioLed, GpioRelay
from voltbus_hardware.registry import build_station


@pytest.fixture
def pins() -> MockFactory:
    """A mock pin factory of the test's own (never gpiozero's global default)."""
    return MockFactory(pin_class=MockPWMPin)


async def test_relay_led_and_buzzer_pins_through_the_service(
    pins: MockFactory, mosquitto: Broker, station: str
) -> None:
    cfg = parse_station({
        "connectors": [{"evse": {"type": "sim"}, "relay": {"type": "gpio", "pin": 17},
                        "led": {"type": "gpio_rgb", "red": 13, "green": 19, "blue": 26}}],
        "rfid": [{"type": "sim"}], "buzzer": {"type": "gpio", "pin": 23}})
    hardware = build_station(cfg, station, pin_factory=pins)
    relay = pins.pin(17)
    async with rig(mosquitto, station, hardware=hardware) as r:
        await r.watches["relay"].next()
        assert relay.state == 0  # opened at start-up
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await r.watches["relay"].until(lambda m: m.payload.closed)
        assert relay.state == 1
        r.send(ch.LED_SET, LedCommand(color="#ff8000", pattern=LedPattern.SOLID), connector=1)
        r.send(ch.SIM_TAP, SimTap(id_tag="CAFE01"))
        await r.watches["rfid"].next()
        assert (pins.pin(13).state, pins.pin(19).state, pins.pin(26).state) == (
            1.0, pytest.approx(128 / 255), 0)
        await asyncio.sleep(0.3)  # the beep runs in gpiozero's background thread
        assert any(s.state for s in pins.pin(23).states[1:])  # the buzzer sounded
        r.send(ch.SIM_PLUG, SimPlug(plugged=False), connector=1)
        await r.watches["relay"].until(lambda m: not m.payload.closed)
        assert relay.state == 0  # unplug opened the real pin
    assert pins.pin(17).state == 0


async def test_relay_active_low(pins: MockFactory) -> None:
    relay = GpioRelay(4, active_high=False, pin_factory=pins)
    assert pins.pin(4).state == 1  # initially open: an active-low module sees high
    assert await relay.set_closed(True) is True
    assert pins.pin(4).state == 0
    relay.close()


async def test_single_led_patterns(pins: MockFactory) -> None:
    led = GpioLed(21, pin_factory=pins)
    await led.show(Rgb(0, 255, 0), LedPattern.SOLID)
    assert pins.pin(21).state == 1
    await led.show(Rgb(0, 0, 0), LedPattern.SOLID)  # black is off
    assert pins.pin(21).state == 0
    await led.show(Rgb(255, 0, 0), LedPattern.BLINK)
    await asyncio.sleep(1.2)
    states = {s.state for s in pins.pin(21).states}
    assert {0, 1} <= states
    await led.show(Rgb(255, 0, 0), LedPattern.OFF)
    assert pins.pin(21).state == 0
    led.close()
