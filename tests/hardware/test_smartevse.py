"""SmartEVSE: the enable pin and the status LED read back, on gpiozero MockFactory pins."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import rig
from voltbus_common import channels as ch
from voltbus_common.enums import ChargePointErrorCode, PilotState
from voltbus_common.models import CurrentLimitCommand, RelayCommand
from voltbus_hardware.config import parse_station
from voltbus_hardware.drivers.smartevse import SmartEvse
from voltbus_hardware.registry import build_station

P = PilotState
ENABLE, STATUS = 22, 27


class LedWave:
    """Drives the status pin like SmartEVSE's LED, in a thread: steady, fading or blinking."""

    def __init__(self, pins: MockFactory) -> None:
        self.pin = pins.pin(STATUS)
        self.pattern: Callable[[float], float] = OFF  # duty cycle over time
        self.period_s = 0.04  # 25 Hz PWM (slow enough for a thread on a loaded machine)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            duty = self.pattern(time.monotonic() - start)
            if duty <= 0:
                self.pin.drive_low()
                time.sleep(self.period_s)
            elif duty >= 1:
                self.pin.drive_high()
                time.sleep(self.period_s)
            else:
                self.pin.drive_high()
                time.sleep(self.period_s * duty)
                self.pin.drive_low()
                time.sleep(self.period_s * (1 - duty))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1)


@pytest.fixture
def pins() -> MockFactory:
    return MockFactory(pin_class=MockPWMPin)


@pytest.fixture
def wave(pins: MockFactory) -> Iterator[LedWave]:
    w = LedWave(pins)
    yield w
    w.stop()


def OFF(t: float) -> float:
    return 0.0
def ON(t: float) -> float:
    return 1.0
def FADING(t: float) -> float:
    return 0.5 + 0.45 * math.sin(t * 2 * math.pi)
def DIMMED(t: float) -> float:
    return 0.3  # steady PWM dimming


def BLINKING(t: float) -> float:
    return 1.0 if int(t * 8) % 2 else 0.0  # 4 Hz on/off


@pytest.mark.parametrize(("pattern", "pilot"), [(OFF, P.A), (ON, P.B), (DIMMED, P.B),
                                                (FADING, P.C), (BLINKING, P.F)])
async def test_led_patterns_read_back_as_states(pins: MockFactory, wave: LedWave,
                                                pattern: Callable[[float], float],
                                                pilot: PilotState) -> None:
    evse = SmartEvse(ENABLE, STATUS, window_s=1.0, pin_factory=pins)
    wave.pattern = pattern
    await asyncio.sleep(1.2)
    status = await evse.status()
    evse.close()
    assert status.pilot is pilot
    if pilot is P.F:
        assert status.error is ChargePointErrorCode.OTHER_ERROR


async def test_smartevse_station_through_the_service(pins: MockFactory, wave: LedWave,
                                                     mosquitto: Broker, station: str) -> None:
    cfg = parse_station({"connectors": [{
        "evse": {"type": "smartevse", "enable_pin": ENABLE, "status_pin": STATUS},
        "relay": {"type": "evse"}, "meter": {"type": "sim"}}]})
    hardware = build_station(cfg, station, pin_factory=pins)
    evse = hardware.connectors[1].evse
    assert isinstance(evse, SmartEvse)
    evse.window_s = 0.6
    async with rig(mosquitto, station, hardware=hardware) as r:
        w = r.watches
        await w["pilot"].until(lambda m: m.payload.state is P.A)
        assert pins.pin(ENABLE).state == 0
        wave.pattern = ON
        await w["pilot"].until(lambda m: m.payload.state is P.B)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await w["relay"].until(lambda m: m.payload.closed)
        assert pins.pin(ENABLE).state == 1
        wave.pattern = FADING
        await w["pilot"].until(lambda m: m.payload.state is P.C)
        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=10), connector=1)
        note = await w["rejected"].next()
        wave.pattern = OFF  # EV unplugged
        await w["pilot"].until(lambda m: m.payload.state is P.A)
        await w["relay"].until(lambda m: not m.payload.closed)
        assert pins.pin(ENABLE).state == 0
    assert "cannot limit current" in note.payload.reason
