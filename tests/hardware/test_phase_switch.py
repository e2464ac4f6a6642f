"""1p/3p phase switching (issue 12): the GPIO contactor on gpiozero mock pins, the simulator's
contactor, and the service switching only while no current can flow through it (refused, with
the reason on the bus, while the relay is closed and the EVSE offers current or the meter shows
current), never crashing on a malformed command."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from tests.fixtures.mosquitto import Broker
from tests.hardware.helpers import rig, running
from voltbus_common import channels as ch
from voltbus_common.enums import ChargePointErrorCode, PilotState
from voltbus_common.models import (
    CurrentLimitCommand,
    PhaseCommand,
    RelayCommand,
    SimPlug,
)
from voltbus_hardware.config import parse_station
from voltbus_hardware.drivers.base import DeviceUnavailable
from voltbus_hardware.drivers.gpio_phases import GpioPhaseSwitch
from voltbus_hardware.registry import build_station

COIL, AUX = 17, 27
E = ChargePointErrorCode


class Contactor:
    """A contactor on mock pins: its auxiliary contact (to GND, pulled up) closes pull_in_s
    after the coil is energised and opens as long after it drops; `stuck` holds it."""

    def __init__(self, pins: MockFactory, *, pull_in_s: float = 0.03) -> None:
        self.coil, self.aux = pins.pin(COIL), pins.pin(AUX)
        self.pull_in_s, self.stuck = pull_in_s, False
        self.aux.drive_high()  # open: pulled up

    async def run(self) -> None:
        while True:
            want = bool(self.coil.state)
            await asyncio.sleep(self.pull_in_s)
            if not self.stuck and bool(self.coil.state) == want:
                self.aux.drive_low() if want else self.aux.drive_high()


@pytest.fixture
async def contactor() -> AsyncIterator[Contactor]:
    c = Contactor(MockFactory(pin_class=MockPWMPin))
    async with running(c.run()):
        yield c


@pytest.fixture
def pins(contactor: Contactor) -> MockFactory:
    return contactor.coil.factory


async def test_gpio_contactor_switches_by_its_auxiliary_contact(
        pins: MockFactory, contactor: Contactor) -> None:
    switch = GpioPhaseSwitch(COIL, feedback_pin=AUX, settle_s=0.01, timeout_s=0.3,
                             pin_factory=pins)
    assert await switch.phases() == 1  # a normally-open contactor on L2/L3 starts dropped out
    assert await switch.set_phases(3) == 3
    assert (contactor.coil.state, contactor.aux.state) == (1, 0)
    assert await switch.set_phases(1) == 1
    assert contactor.coil.state == 0
    contactor.stuck = True  # welded / no coil voltage: the auxiliary contact does not move
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(DeviceUnavailable) as caught:
        await switch.set_phases(3)
    assert 0.3 <= loop.time() - start < 0.6
    assert caught.value.code is E.POWER_SWITCH_FAILURE
    assert "still 1 phases after 0.3s" in str(caught.value)
    switch.close()


async def test_gpio_contactor_without_feedback_and_inverted() -> None:
    pins = MockFactory(pin_class=MockPWMPin)
    # a normally-closed contactor that opens L2/L3 when energised
    switch = GpioPhaseSwitch(COIL, three_phase_when_active=False, settle_s=0.01,
                             pin_factory=pins)
    assert await switch.phases() == 3
    assert await switch.set_phases(1) == 1
    assert pins.pin(COIL).state == 1
    assert await switch.set_phases(3) == 3
    assert pins.pin(COIL).state == 0
    switch.close()


def test_station_file_phase_switch_entries() -> None:
    cfg = parse_station({"connectors": [{"evse": {"type": "sim"}, "relay": {"type": "sim"},
                                         "phase_switch": {"type": "gpio", "pin": COIL,
                                                          "feedback_pin": AUX}}]})
    assert cfg.connectors[0].phase_switch is not None
    from voltbus_common.settings import ConfigError
    with pytest.raises(ConfigError, match="pin and feedback_pin must be two pins"):
        parse_station({"connectors": [{"evse": {"type": "sim"}, "relay": {"type": "sim"},
                                       "phase_switch": {"type": "gpio", "pin": 4,
                                                        "feedback_pin": 4}}]})
    with pytest.raises(ConfigError, match=r"connectors\[0\]\.phase_switch"):
        parse_station({"connectors": [{"evse": {"type": "sim"}, "relay": {"type": "sim"},
                                       "phase_switch": {"type": "smartevse"}}]})


async def test_the_contactor_never_switches_under_load(mosquitto: Broker, station: str) -> None:
    async with rig(mosquitto, station) as r:
        w, sim = r.watches, r.sim()
        first = await w["phases"].next()
        r.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await w["pilot"].until(lambda m: m.payload.state is PilotState.B)
        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=16.0), connector=1)
        r.send(ch.RELAY_SET, RelayCommand(closed=True), connector=1)
        await w["meter"].until(lambda m: m.payload.current_a == [16.0, 16.0, 16.0])
        # charging at 16 A: refused, with the reason on phases and on rejected
        r.send(ch.PHASES_SET, PhaseCommand(phases=1, request_id="p1"), connector=1)
        refused = await w["phases"].until(lambda m: m.payload.request_id == "p1")
        note = await w["rejected"].next()
        # paused at 0 A but the car keeps drawing (a car that ignores the pilot): refused
        sim.force_current(10.0)
        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=0.0), connector=1)
        await w["meter"].until(lambda m: m.payload.current_a == [10.0, 10.0, 10.0])
        r.send(ch.PHASES_SET, PhaseCommand(phases=1, request_id="p2"), connector=1)
        flowing = await w["phases"].until(lambda m: m.payload.request_id == "p2")
        # paused and the current stopped: switched; a raise sent right after waits for it
        sim.force_current(None)
        await w["meter"].until(lambda m: m.payload.current_a == [0.0, 0.0, 0.0])
        r.send(ch.PHASES_SET, PhaseCommand(phases=1, request_id="p3"), connector=1)
        r.send(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=10.0), connector=1)
        done = await w["phases"].until(lambda m: m.payload.request_id == "p3")
        one_phase = await w["meter"].until(lambda m: m.payload.current_a == [10.0, 0.0, 0.0])
        # the same phases again: answered, nothing switched
        r.send(ch.PHASES_SET, PhaseCommand(phases=1, request_id="p4"), connector=1)
        same = await w["phases"].until(lambda m: m.payload.request_id == "p4")
        # relay open: nothing can flow, so it switches whatever the EVSE offers
        r.send(ch.RELAY_SET, RelayCommand(closed=False), connector=1)
        await w["relay"].until(lambda m: not m.payload.closed)
        r.send(ch.PHASES_SET, PhaseCommand(phases=3, request_id="p5"), connector=1)
        opened = await w["phases"].until(lambda m: m.payload.request_id == "p5")
    assert (first.payload.phases, first.payload.switchable) == (3, True)
    assert (refused.payload.phases, refused.payload.reason) == (
        3, "refused: the relay is closed and the EVSE offers 16 A (pause at 0 A first)")
    assert note.payload.reason == refused.payload.reason
    assert (flowing.payload.phases, flowing.payload.reason) == (3, "refused: current flows "
                                                                   "(10.0 A)")
    assert (done.payload.phases, done.payload.reason) == (1, None)
    assert one_phase.payload.power_w == pytest.approx(2300.0)
    assert (same.payload.phases, same.payload.reason) == (1, None)
    assert (opened.payload.phases, opened.payload.reason) == (3, None)
    assert (sim.phase_switches, sim.switched_under_load) == (2, 0)


async def test_a_gpio_contactor_through_the_service_and_a_stuck_one(
        pins: MockFactory, contactor: Contactor, mosquitto: Broker, station: str) -> None:
    cfg = parse_station({"connectors": [
        {"evse": {"type": "sim"}, "relay": {"type": "sim"}, "meter": {"type": "sim"},
         "phase_switch": {"type": "gpio", "pin": COIL, "feedback_pin": AUX, "settle_s": 0.01,
                          "timeout_s": 0.3}},
        {"evse": {"type": "sim"}, "relay": {"type": "sim"}}]})
    hardware = build_station(cfg, station, pin_factory=pins)
    async with rig(mosquitto, station, hardware=hardware) as r:
        w = r.watches
        starts = {m.connector: m.payload for m in [await w["phases"].next(),
                                                     await w["phases"].next()]}
        r.send(ch.PHASES_SET, PhaseCommand(phases=3, request_id="up"), connector=1)
        up = await w["phases"].until(lambda m: m.payload.request_id == "up", within=3)
        coil = contactor.coil.state
        contactor.stuck = True
        r.send(ch.PHASES_SET, PhaseCommand(phases=1, request_id="down"), connector=1)
        stuck = await w["phases"].until(lambda m: m.payload.request_id == "down", within=3)
        fault = await w["error"].until(lambda m: m.payload.code is E.POWER_SWITCH_FAILURE)
        r.send(ch.PHASES_SET, PhaseCommand(phases=1, request_id="none"), connector=2)
        none = await w["phases"].until(lambda m: m.payload.request_id == "none")
    assert (starts[1].phases, starts[1].switchable) == (1, True)
    assert (starts[2].phases, starts[2].switchable, starts[2].reason) == (
        None, False, "no phase switch configured")
    assert (up.payload.phases, coil) == (3, 1)
    assert stuck.payload.phases == 3
    assert "still 3 phases after 0.3s" in (stuck.payload.reason or "")
    assert fault.connector == 1
    assert (none.payload.phases, none.payload.reason) == (None, "no phase switch configured")


BAD = [b"", b"not json", b"{}", b'{"phases": 2}', b'{"phases": "3"}', b'{"phases": 3.0}',
       b'{"phases": true}', b'{"phases": null}', b'{"phases": [3]}', b"[1,3]",
       b'{"phases": 1, "request_id": ""}', b'{"phases": 1, "request_id": "' + b"x" * 100 + b'"}',
       b"\xff\xfe", b'{"phases": 1e400}', b"{" * 5000]


async def test_malformed_phase_commands_never_crash_the_service(mosquitto: Broker,
                                                                station: str) -> None:
    async with rig(mosquitto, station) as r:
        w, sim = r.watches, r.sim()
        await w["phases"].next()
        for raw in BAD:
            r.send_raw(ch.PHASES_SET, raw, connector=1)
        for connector in ("x", "99", "0"):
            r.send_raw(ch.PHASES_SET, b'{"phases": 1}', connector=connector)
        notes = [await w["rejected"].next() for _ in range(len(BAD) + 3)]
        r.send(ch.PHASES_SET, PhaseCommand(phases=1, request_id="ok"), connector=1)
        ok = await w["phases"].until(lambda m: m.payload.request_id == "ok")
    assert all(n.payload.topic.endswith("/phases/set") for n in notes)
    assert ok.payload.phases == 1
    assert sim.phase_switches == 1  # none of the bad ones moved the contactor
