"""Cable lock (issue 10 §3): the GPIO motor lock on gpiozero mock pins, the simulator, and the
service answering every lock/set with what the feedback confirms (failed when it does not)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import rig
from voltbus_common import channels as ch
from voltbus_common.enums import ChargePointErrorCode, LockState, PilotState
from voltbus_common.models import LockCommand, RelayCommand, SimFault, SimPlug
from voltbus_hardware.config import parse_station
from voltbus_hardware.drivers.base import DeviceUnavailable
from voltbus_hardware.drivers.gpio_lock import GpioMotorLock
from voltbus_hardware.registry import build_station

LOCK_PIN, UNLOCK_PIN, FEEDBACK_PIN = 5, 6, 12
E = ChargePointErrorCode


class Actuator:
    """The lock motor and its microswitch on mock pins: the pin travels while the motor runs
    (travel_s), and the switch (to GND, pulled up) closes when it is home. `jammed` stops it."""

    def __init__(self, pins: MockFactory, *, travel_s: float = 0.15) -> None:
        self.lock, self.unlock = pins.pin(LOCK_PIN), pins.pin(UNLOCK_PIN)
        self.feedback = pins.pin(FEEDBACK_PIN)
        self.travel_s, self.jammed = travel_s, False
        self.position = 0.0  # 0 unlocked .. 1 locked
        self.both_on = False
        self.ran_s = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.005)
            now = loop.time()
            step, last = now - last, now
            on_lock, on_unlock = bool(self.lock.state), bool(self.unlock.state)
            self.both_on |= on_lock and on_unlock
            if on_lock or on_unlock:
                self.ran_s += step
            if self.jammed:
                continue
            if on_lock:
                self.position = min(1.0, self.position + step / self.travel_s)
            elif on_unlock:
                self.position = max(0.0, self.position - step / self.travel_s)
            if self.position >= 1.0:
                self.feedback.drive_low()
            else:
                self.feedback.drive_high()


@pytest.fixture
def pins() -> MockFactory:
    return MockFactory(pin_class=MockPWMPin)


@pytest.fixture
async def actuator(pins: MockFactory) -> AsyncIterator[Actuator]:
    act = Actuator(pins)
    task = asyncio.create_task(act.run())
    yield act
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def motor_lock(pins: MockFactory, **kw: float) -> GpioMotorLock:
    return GpioMotorLock(LOCK_PIN, UNLOCK_PIN, FEEDBACK_PIN, pulse_s=kw.get("pulse_s", 0.3),
                         timeout_s=kw.get("timeout_s", 0.6), pin_factory=pins)


async def test_motor_lock_locks_and_unlocks_by_its_feedback(pins: MockFactory,
                                                            actuator: Actuator) -> None:
    lock = motor_lock(pins)
    assert await lock.is_locked() is False
    await lock.set_locked(True)
    assert await lock.is_locked() is True
    assert actuator.position == 1.0
    assert (actuator.lock.state, actuator.unlock.state) == (0, 0)  # motor never left running
    await lock.set_locked(False)
    assert await lock.is_locked() is False
    assert actuator.position == 0.0
    assert not actuator.both_on
    assert 0.5 <= actuator.ran_s <= 0.9  # two pulses of 0.3 s
    lock.close()


async def test_jammed_motor_lock_fails_after_the_timeout_and_stops(pins: MockFactory,
                                                                   actuator: Actuator) -> None:
    lock = motor_lock(pins)
    actuator.jammed = True
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(DeviceUnavailable) as caught:
        await lock.set_locked(True)
    assert 0.55 <= loop.time() - start < 1.0
    assert caught.value.code is E.CONNECTOR_LOCK_FAILURE
    assert "not locked after 0.6s" in str(caught.value)
    assert actuator.lock.state == 0
    assert await lock.is_locked() is False
    lock.close()


async def test_motor_lock_with_feedback_that_opens_when_locked(pins: MockFactory) -> None:
    lock = GpioMotorLock(LOCK_PIN, UNLOCK_PIN, FEEDBACK_PIN, locked_when_active=False,
                         pulse_s=0.05, timeout_s=0.2, pin_factory=pins)
    pins.pin(FEEDBACK_PIN).drive_low()  # switch closed: unlocked with this wiring
    assert await lock.is_locked() is False
    pins.pin(FEEDBACK_PIN).drive_high()
    await lock.set_locked(True)  # already confirmed once the pulse is over
    assert await lock.is_locked() is True
    lock.close()


def lock_station(pins: MockFactory, station: str, *, lock: bool = True,
                 **options: object) -> object:
    conn: dict[str, object] = {"evse": {"type": "sim"}, "relay": {"type": "sim"},
                               "meter": {"type": "sim"}}
    if lock:
        conn["lock"] = {"type": "gpio_motor", "lock_pin": LOCK_PIN, "unlock_pin": UNLOCK_PIN,
                        "feedback_pin": FEEDBACK_PIN, "pulse_s": 0.3, "timeout_s": 0.6,
                        **options}
    return build_station(parse_station({"connectors": [conn]}), station, pin_factory=pins)


async def test_service_reports_the_lock_only_as_its_feedback_confirms(
    pins: MockFactory, actuator: Actuator, mosquitto: Broker, station: str
) -> None:
    async with rig(mosquitto, station, hardware=lock_station(pins, station)) as r:  # type: ignore[arg-type]
        w = r.watches
        first = await w["lock"].next()
        r.send(ch.LOCK_SET, LockCommand(locked=True, request_id="L1"), connector=1)
        locked = await w["lock"].until(lambda m: m.payload.request_id == "L1", within=3)
        assert actuator.position == 1.0
        actuator.jammed = True  # the cable is stuck
        r.send(ch.LOCK_SET, LockCommand(locked=False, request_id="U1"), connector=1)
        failed = await w["lock"].until(lambda m: m.payload.request_id == "U1", within=3)
        fault = await w["error"].until(lambda m: m.payload.code is E.CONNECTOR_LOCK_FAILURE)
        actuator.jammed = False
        r.send(ch.LOCK_SET, LockCommand(locked=False, request_id="U2"), connector=1)
        unlocked = await w["lock"].until(lambda m: m.payload.request_id == "U2", within=3)
        cleared = await w["error"].until(lambda m: m.payload.code is E.NO_ERROR)
    assert first.payload.state is LockState.UNLOCKED  # the switch is open at start-up
    assert first.payload.request_id is None
    assert locked.payload.state is LockState.LOCKED
    assert failed.payload.state is LockState.FAILED
    assert "not unlocked after 0.6s" in (failed.payload.reason or "")
    assert fault.payload.info == "lock: not unlocked after 0.6s"
    assert unlocked.payload.state is LockState.UNLOCKED
    assert actuator.position == 0.0
    assert cleared.payload.code is E.NO_ERROR


async def test_unlock_is_refused_while_the_relay_is_closed(
    pins: MockFactory, actuator: Actuator, mosquitto: Broker, station: str
) -> None:
    async with rig(mosquitto, station, hardware=lock_station(pins, station)) as r:  # type: ignore[arg-type]
        w = r.watches
        r.send(ch.LOCK_SET, LockCommand(locked=True, request_id="L"), connector=1)
        await w["lock"].until(lambda m: m.payload.request_id == "L", within=3)
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is PilotState.B)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await w["relay"].until(lambda m: m.payload.closed)
        ran = actuator.ran_s
        r.send(ch.LOCK_SET, LockCommand(locked=False, request_id="U"), connector=1)
        answer = await w["lock"].until(lambda m: m.payload.request_id == "U", within=3)
        note = await w["rejected"].next()
        await asyncio.sleep(0.1)
        moved = actuator.ran_s - ran
        still = actuator.position
        r.send(ch.RELAY_SET, RelayCommand(closed=False), connector=1)
        await w["relay"].until(lambda m: not m.payload.closed)
        r.send(ch.LOCK_SET, LockCommand(locked=False, request_id="U2"), connector=1)
        after = await w["lock"].until(lambda m: m.payload.request_id == "U2", within=3)
    assert (answer.payload.state, answer.payload.reason) == (LockState.LOCKED,
                                                             "refused: the relay is closed")
    assert note.payload.reason == "refused to unlock: the relay is closed"
    assert (moved, still) == (0, 1.0)  # the motor did not run for the refused unlock
    assert after.payload.state is LockState.UNLOCKED


async def test_the_relay_closes_only_on_a_confirmed_lock(
    pins: MockFactory, actuator: Actuator, mosquitto: Broker, station: str
) -> None:
    """A socket-outlet is energised only with the plug locked (required_to_close, default)."""
    async with rig(mosquitto, station, hardware=lock_station(pins, station)) as r:  # type: ignore[arg-type]
        w = r.watches
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is PilotState.B)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        refused = await w["rejected"].next()
        assert not r.sim().relay_closed
        actuator.jammed = True  # a failed lock is no lock either
        r.send(ch.LOCK_SET, LockCommand(locked=True, request_id="L1"), connector=1)
        await w["lock"].until(lambda m: m.payload.state is LockState.FAILED, within=3)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        refused_again = await w["rejected"].next()
        actuator.jammed = False
        r.send(ch.LOCK_SET, LockCommand(locked=True, request_id="L2"), connector=1)
        await w["lock"].until(lambda m: m.payload.state is LockState.LOCKED, within=3)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await w["relay"].until(lambda m: m.payload.closed)
    assert refused.payload.reason.startswith("refused to close: the cable is not locked")
    assert refused_again.payload.reason == refused.payload.reason


async def test_a_lock_lost_while_charging_opens_the_relay(
    pins: MockFactory, actuator: Actuator, mosquitto: Broker, station: str
) -> None:
    async with rig(mosquitto, station, hardware=lock_station(pins, station)) as r:  # type: ignore[arg-type]
        w = r.watches
        r.send(ch.LOCK_SET, LockCommand(locked=True, request_id="L"), connector=1)
        await w["lock"].until(lambda m: m.payload.state is LockState.LOCKED, within=3)
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is PilotState.B)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await w["relay"].until(lambda m: m.payload.closed)
        actuator.position = 0.5  # the pin is forced back: the switch opens
        opened = await w["relay"].until(lambda m: not m.payload.closed, within=2)
        lost = await w["lock"].until(lambda m: m.payload.state is LockState.FAILED)
        fault = await w["error"].until(lambda m: m.payload.code is E.CONNECTOR_LOCK_FAILURE)
    assert not r.sim().relay_closed
    assert opened.payload.request_id is None  # the hardware opened by itself
    assert lost.payload.reason == "feedback lost while locked"
    assert fault.payload.info == "feedback lost while locked"


async def test_lock_and_relay_apart_when_not_required(
    pins: MockFactory, mosquitto: Broker, station: str
) -> None:
    hardware = lock_station(pins, station, required_to_close=False)
    async with rig(mosquitto, station, hardware=hardware) as r:  # type: ignore[arg-type]
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await r.watches["pilot"].until(lambda m: m.payload.state is PilotState.B)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await r.watches["relay"].until(lambda m: m.payload.closed)
        assert (await r.watches["lock"].next()).payload.state is LockState.UNLOCKED


async def test_no_lock_configured_says_not_supported(
    pins: MockFactory, mosquitto: Broker, station: str
) -> None:
    async with rig(mosquitto, station, hardware=lock_station(pins, station, lock=False)) as r:  # type: ignore[arg-type]
        first = await r.watches["lock"].next()
        r.send(ch.LOCK_SET, LockCommand(locked=False, request_id="U"), connector=1)
        answer = await r.watches["lock"].until(lambda m: m.payload.request_id == "U")
    assert first.payload.state is LockState.NOT_SUPPORTED
    assert (answer.payload.state, answer.payload.reason) == (LockState.NOT_SUPPORTED,
                                                             "no cable lock configured")


async def test_simulated_lock_and_its_jam(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station) as r:  # the all-simulated station has a lock
        w = r.watches
        assert (await w["lock"].next()).payload.state is LockState.UNLOCKED
        r.send(ch.LOCK_SET, LockCommand(locked=True, request_id="L"), connector=1)
        locked = await w["lock"].until(lambda m: m.payload.request_id == "L")
        r.send(ch.SIM_FAULT, SimFault(code=E.CONNECTOR_LOCK_FAILURE, info="jam"), connector=1)
        r.send(ch.LOCK_SET, LockCommand(locked=False, request_id="U"), connector=1)
        failed = await w["lock"].until(lambda m: m.payload.request_id == "U")
        r.send(ch.SIM_FAULT, SimFault(code=E.NO_ERROR), connector=1)
        r.send(ch.LOCK_SET, LockCommand(locked=False, request_id="U2"), connector=1)
        unlocked = await w["lock"].until(lambda m: m.payload.request_id == "U2")
    assert locked.payload.state is LockState.LOCKED
    assert (failed.payload.state, failed.payload.reason) == (LockState.FAILED,
                                                             "lock jammed (simulated)")
    assert unlocked.payload.state is LockState.UNLOCKED


def test_lock_pins_must_differ() -> None:
    from voltbus_common.settings import ConfigError
    with pytest.raises(ConfigError, match=r"connectors\[0\].lock: lock_pin, unlock_pin and "):
        parse_station({"connectors": [{"evse": {"type": "sim"}, "relay": {"type": "sim"},
                                       "lock": {"type": "gpio_motor", "lock_pin": 5,
                                                "unlock_pin": 5, "feedback_pin": 6}}]})
