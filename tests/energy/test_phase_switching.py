"""1p/3p phase switching (issue 12): the pure chooser's hysteresis on a cloudy surplus, then the
whole chain as processes: the dev central system, the simulated hardware with its phase
contactor, the real gateway and the energy manager in PV mode on a grid meter fed from the
simulated house. A PV surplus rising from 2 kW to 8 kW and back starts the car on one phase,
switches it to three with the pause (0 A, the current stopped, the IEC 61851 pause, then the
switch), and back; no switch is ever refused (never under load) and none comes sooner than the
timers allow."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.energy.site_sim import SiteSim
from tests.energy.test_with_gateway import charge_point_on_a_grid_topic, start_session
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import ChargeMode, ConnectorStatus
from voltbus_common.models import ChargeModeSetting, PhaseCommand, PhaseState
from voltbus_energy.manager import ConnectorView
from voltbus_energy.modes import THREE_PHASE_MIN_W, PhaseChooser, PhaseTimers

TIMERS = PhaseTimers(up_delay_s=60, down_delay_s=180, min_interval_s=300)


def test_the_chooser_switches_only_as_often_as_its_timers_allow() -> None:
    """A day of surplus with clouds: every switch follows a surplus that held for its delay,
    and two switches are never closer than min_interval_s."""
    chooser, phases, switches = PhaseChooser(), 1, []
    for t in range(0, 12 * 3600, 5):
        sun = max(0.0, math.sin(math.pi * t / (12 * 3600))) * 9000.0
        # a long cloud (200 s of every 900 s) and a short one (20 s of every 120 s)
        cloud = 0.3 if (t % 900) < 200 else 0.5 if (t % 120) < 20 else 1.0
        surplus = sun * cloud
        want = chooser.want(ChargeMode.PV, surplus, phases, t, TIMERS)
        if want != phases:
            phases, chooser.switched_at = want, t
            switches.append(t)
    assert switches, "the sun at noon pays for three phases"
    assert all(b - a >= TIMERS.min_interval_s for a, b in itertools.pairwise(switches))
    assert len(switches) <= 12 * 3600 / TIMERS.min_interval_s
    assert len(switches) <= 2 * 12 * 3600 / 900  # at most down and up once per long cloud
    assert phases == 1  # evening: one phase


def test_the_chooser_by_mode_and_threshold() -> None:
    t = PhaseTimers(up_delay_s=10, down_delay_s=20, min_interval_s=0)
    chooser = PhaseChooser()
    assert chooser.want(ChargeMode.NOW, 0.0, 1, 0, t) == 3  # Now: three phases at once
    assert chooser.want(ChargeMode.PLAN, 0.0, 1, 0, t) == 3
    assert chooser.want(ChargeMode.OFF, 9000.0, 1, 0, t) == 1  # Off: left as it is
    assert chooser.want(ChargeMode.PV, THREE_PHASE_MIN_W, 1, 0, t) == 1  # held 0 s
    assert chooser.want(ChargeMode.PV, THREE_PHASE_MIN_W, 1, 9, t) == 1
    assert chooser.want(ChargeMode.PV, THREE_PHASE_MIN_W, 1, 10, t) == 3  # held 10 s
    assert chooser.want(ChargeMode.MIN_PV, THREE_PHASE_MIN_W - 1, 3, 11, t) == 3
    assert chooser.want(ChargeMode.MIN_PV, 5000.0, 3, 20, t) == 3  # back up: the wait restarts
    assert chooser.want(ChargeMode.MIN_PV, 1400.0, 3, 21, t) == 3
    assert chooser.want(ChargeMode.MIN_PV, 1400.0, 3, 41, t) == 1  # below for 20 s


PAUSE_S, MIN_INTERVAL_S, UP_S, DOWN_S = 0.6, 2.5, 0.8, 0.8


def pv_w(t: float) -> float:
    """2 kW, rising to 8 kW between 3 s and 6 s, held until 11 s, back to 2 kW by 13 s."""
    if t < 3:
        return 2000.0
    if t < 6:
        return 2000.0 + 6000.0 * (t - 3) / 3
    if t < 11:
        return 8000.0
    if t < 13:
        return 8000.0 - 6000.0 * (t - 11) / 2
    return 2000.0


async def test_pv_charging_starts_on_one_phase_and_switches_with_the_pause(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path) -> None:
    grid_topic, operator, watch = await charge_point_on_a_grid_topic(
        services, mosquitto, station, tmp_path, {
            "VOLTBUS_ENERGY_FUSE_A": "32",
            "VOLTBUS_ENERGY_PERIOD_S": "0.2", "VOLTBUS_ENERGY_PV_START_DELAY_S": "0.2",
            "VOLTBUS_ENERGY_PV_STOP_DELAY_S": "1", "VOLTBUS_ENERGY_PV_MIN_ON_S": "1",
            "VOLTBUS_ENERGY_PV_MIN_OFF_S": "0.2",
            "VOLTBUS_ENERGY_PHASE_UP_DELAY_S": str(UP_S),
            "VOLTBUS_ENERGY_PHASE_DOWN_DELAY_S": str(DOWN_S),
            "VOLTBUS_ENERGY_PHASE_MIN_INTERVAL_S": str(MIN_INTERVAL_S),
            "VOLTBUS_ENERGY_PHASE_PAUSE_S": str(PAUSE_S)})
    watch.follow(operator, ch.OCPP_STATUS, "status", connector=1)
    loop = asyncio.get_running_loop()
    t0: list[float] = []  # when the curve started
    log: list[tuple[float, str, Any]] = []  # (loop time, what, payload), in arrival order

    def keep(what: str) -> Any:
        async def put(msg: Received[Any]) -> None:
            if msg.payload is not None and not msg.retain:
                log.append((loop.time(), what, msg.payload))
        return put

    for channel, what in ((ch.PHASES, "phases"), (ch.PHASES_SET, "phases/set"),
                          (ch.ENERGY_LIMIT, "limit")):
        operator.on(channel, keep(what), connector=1)

    async def grid_meter(msg: Received[Any]) -> None:
        """The grid: a small house, minus the PV on three phases, plus what the car draws."""
        if msg.payload is None:
            return
        log.append((loop.time(), "meter", msg.payload))
        pv = pv_w(loop.time() - t0[0]) if t0 else 2000.0
        car = [*msg.payload.current_a, 0.0, 0.0][:3]
        amps = [0.3 + car[p] - pv / 3 / 230 for p in range(3)]
        feeder.publish_raw(grid_topic, json.dumps({"P": sum(amps) * 230, "I": amps}).encode(),
                           qos=0)

    operator.on(ch.METER, grid_meter, connector=1)
    feeder = Bus(mosquitto.settings("homeassistant", stations=[station]), station=station,
                 service=None)
    tasks = [asyncio.create_task(operator.run()), asyncio.create_task(feeder.run())]
    try:
        await operator.wait_connected(5)
        operator.publish(ch.ENERGY_MODE_SET, ChargeModeSetting(mode=ChargeMode.PV),
                         connector=1)
        await start_session(operator, watch)
        await watch.until(lambda s: s["status"].status in (ConnectorStatus.CHARGING,
                                                           ConnectorStatus.SUSPENDED_EVSE),
                          "the session")
        t0.append(loop.time())
        await asyncio.sleep(17.0)
        assert watch.latest["status"].status is ConnectorStatus.CHARGING
    except AssertionError:
        raise AssertionError(services.logs()) from None
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    states = [(t, p) for t, w, p in log if w == "phases" and isinstance(p, PhaseState)]
    assert not [p for _, p in states if p.reason], states  # nothing refused: never under load
    switched = [(t, p.phases) for t, p in states if p.request_id]
    assert [ph for _, ph in switched] == [1, 3, 1], (switched, services.logs())
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(switched)]
    assert all(g >= MIN_INTERVAL_S - 0.05 for g in gaps), gaps
    readings = [(t, m) for t, w, m in log if w == "meter" and t > t0[0]]
    drawing = [(t, m.current_a) for t, m in readings if max(m.current_a) > 0.5]
    # the first current the car drew: on one phase, from a 2 kW surplus (~1.4-2 kW)
    first_t, first = drawing[0]
    assert first[1:] == [0.0, 0.0], drawing[:3]
    assert 6.0 <= first[0] <= 9.0, drawing[:3]
    assert first_t > switched[0][0]
    # three phases at the top of the curve, one at the end
    assert any(a[1] > 5.9 and a[2] > 5.9 for t, a in drawing if switched[1][0] < t
               < switched[2][0]), drawing
    assert drawing[-1][1][1:] == [0.0, 0.0]
    for when, phases in switched[1:]:
        command = max((t, p) for t, w, p in log if w == "phases/set" and t < when)
        assert isinstance(command[1], PhaseCommand)
        assert command[1].phases == phases
        # before the command: the limit 0, then the current stopped, then the pause
        zero = max(t for t, w, p in log if w == "limit" and p.amps == 0.0 and t < command[0])
        before = [m for t, m in readings if zero < t < command[0]]
        stopped = min(t for t, m in readings if zero < t < command[0]
                      and max(m.current_a) < 0.5)
        assert command[0] - stopped >= PAUSE_S - 0.25, (zero, stopped, command[0])
        assert max(before[-1].current_a) < 0.5
        # nothing drew current between the command and its confirmation
        assert all(max(m.current_a) < 0.5 for t, m in readings if command[0] < t < when)


def test_the_fuse_counts_a_one_phase_car_on_one_phase_only() -> None:
    """The hardware says connector 1 is switched to one phase: the fuse guard budgets it on L1
    alone, so the three-phase car beside it keeps L2/L3's room, and no phase exceeds the fuse."""
    one, three = ConnectorView("CP1", 1, (0, 1, 2), 16.0), ConnectorView("CP1", 2, (0, 1, 2),
                                                                         16.0)
    sim = SiteSim([one, three], fuse_a=16.0, start=datetime(2026, 12, 4, 12, tzinfo=UTC))
    sim.manager.config = dataclasses.replace(sim.manager.config, phase_switching=False)
    for view in (one, three):
        sim.manager.set_mode("CP1", view.connector, ChargeModeSetting(mode=ChargeMode.NOW))
        sim.plug_in(view.key)
    sim.house_a = (0.0, 10.0, 10.0)
    counted_on_three = sim.step(1.0)
    sim.manager.phase_state(one, PhaseState(phases=1, switchable=True))
    assert one.phases == (0,)
    for _ in range(5):
        limits = sim.step(1.0)
        assert max(sim.grid().current_a) <= 16.0
    # on three phases both shared L2/L3's 6 A: one paused; on one phase, L1's 16 A is shared
    assert counted_on_three == {"CP1/1": 6.0, "CP1/2": 0.0}
    assert limits == {"CP1/1": 10.0, "CP1/2": 6.0}
    assert sim.cars["CP1/1"].drawn_a == (10.0, 0.0, 0.0)


def test_a_refused_or_unanswered_switch_ends_the_sequence_and_waits_the_interval() -> None:
    """The manager in process on a simulated site: the hardware refuses the first phases/set,
    does not answer the second, confirms the third; each failure resumes the car and counts as
    a switch for the minimum interval, so the contactor is not asked again and again."""
    view = ConnectorView("CP1", 1, (0, 1, 2), 16.0)
    sim = SiteSim([view], fuse_a=32.0, start=datetime(2026, 12, 4, 12, tzinfo=UTC))
    timers = PhaseTimers(up_delay_s=1, down_delay_s=1, min_interval_s=5, pause_s=1,
                         stop_timeout_s=3, confirm_timeout_s=2)
    sim.manager.config = dataclasses.replace(sim.manager.config, phase_timers=timers)
    sim.manager.phase_state(view, PhaseState(phases=3, switchable=True))
    sim.manager.set_mode("CP1", 1, ChargeModeSetting(mode=ChargeMode.PV))
    sim.plug_in("CP1/1")
    sim.house_a = (-4.0, -4.0, -4.0)  # 2.8 kW export: enough for one phase, not three
    commands: list[tuple[float, str]] = []

    def run_until_command(limit_s: float) -> str:
        for _ in range(int(limit_s)):
            sim.step(1.0)
            seq = view.phase_seq
            if seq is not None and seq.step == "switching" and (
                    not commands or commands[-1][1] != seq.request_id):
                commands.append((sim.t, seq.request_id))
                return seq.request_id
        raise AssertionError(f"no phases/set within {limit_s} s: {view.status}")

    first = run_until_command(10)
    assert sim.limits == {"CP1/1": 0.0}  # paused while switching
    sim.manager.phase_state(view, PhaseState(phases=3, switchable=True, request_id=first,
                                             reason="refused: current flows (7.0 A)"))
    assert view.phase_seq is None
    assert "refused" in (view.status or "")
    run_until_command(20)  # not answered: given up after confirm_timeout_s
    sent = sim.t
    while view.phase_seq is not None:
        sim.step(1.0)
    assert sim.t - sent == pytest.approx(3.0)  # the step after 2 s passed
    assert view.status == "phase switch to 1 given up: no confirmation from the hardware"
    assert view.hw_phases == 3
    third = run_until_command(20)
    sim.manager.phase_state(view, PhaseState(phases=1, switchable=True, request_id=third))
    assert (view.hw_phases, view.phases, view.phase_seq) == (1, (0,), None)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(commands)]
    # each attempt after the previous one's end + min_interval (+ the stop and pause steps)
    assert all(g >= timers.min_interval_s for g in gaps), commands
    assert view.phase_switches == [(sim.t, 1)]  # the confirmed one only
