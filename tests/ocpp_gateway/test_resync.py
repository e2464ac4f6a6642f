"""Relay commands are not retained and the hardware uses a clean session: the gateway keeps the
relay where it wants it. Real Mosquitto, real dev central system; the test plays the hardware
(and, in the last test, the real hardware service process is killed and started again)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.services import ServiceGroup
from tests.hardware.helpers import Watch
from tests.ocpp_gateway.conftest import Rig
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import ChargePointErrorCode, ServiceState
from voltbus_common.models import HardwareError, SimPlug

GRACE = 0.4


def closes(rig: Rig) -> int:
    """How many relay/set closed the gateway sent so far."""
    return sum(1 for m in rig.seen["relay_set"] if m.payload.closed)


def hardware_status(rig: Rig, state: ServiceState) -> None:
    """What the hardware service's bus (or its Last Will) says on service/hardware/status."""
    rig.hw.publish(ch.SERVICE_STATUS, state, service="hardware")


async def charging(rig: Rig, tag: str = "04A1B2C3", *, relay: bool = True, **extra: Any) -> None:
    """Gateway up, EV plugged, card tapped: the transaction runs (relay confirmed if relay)."""
    await rig.start_gateway(relay_grace_s=GRACE, **extra)
    rig.pilot("B")
    await rig.status("Preparing")
    rig.tap(tag)
    await rig.wait("relay_set", lambda p: p.closed)
    if relay:
        rig.relay(True)


async def test_commands_missed_while_the_hardware_was_away_are_sent_again(rig: Rig) -> None:
    hardware_status(rig, ServiceState.OFFLINE)
    await charging(rig, relay=False)  # nobody listens for relay/set: the command is lost
    await rig.wait("limit_set")
    assert closes(rig) == 1

    late = Bus(rig.broker.settings("hardware", stations=[rig.id]), station=rig.id,
               service="hardware")  # says online (retained) when it connects
    relay_sets: list[Received[Any]] = []
    limits: list[Received[Any]] = []
    got = asyncio.Event()

    async def keep(into: list[Received[Any]], msg: Received[Any]) -> None:
        into.append(msg)
        got.set()
    late.on(ch.RELAY_SET, lambda m: keep(relay_sets, m))
    late.on(ch.CURRENT_LIMIT_SET, lambda m: keep(limits, m))
    task = asyncio.create_task(late.run())
    try:
        await late.wait_connected(5)
        rig.relay(False)  # what the restarted hardware reports (retained)
        async with asyncio.timeout(5):
            while not (relay_sets and limits):
                got.clear()
                await got.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert relay_sets[0].payload.closed is True
    assert relay_sets[0].connector == 1
    assert limits[0].payload.amps == 16.0
    await rig.wait("led_set", lambda p: p.color == "blue", count=2)  # the LED too


async def test_relay_closed_without_a_transaction_is_opened(rig: Rig) -> None:
    rig.relay(True)  # e.g. a command to open was lost before the gateway restarted
    await rig.start_gateway(relay_grace_s=GRACE)
    opened = await rig.wait("relay_set", lambda p: not p.closed)
    assert opened.closed is False
    rig.relay(False)
    assert closes(rig) == 0


async def test_lost_close_in_a_transaction_is_sent_again(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    await charging(rig, relay=False)
    rig.relay(False)  # the hardware never got the close
    again = await rig.wait("relay_set", lambda p: p.closed, count=2)
    assert again.closed is True
    assert any("commanding it again" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    rig.relay(True)
    await rig.status("SuspendedEV")
    await asyncio.sleep(GRACE * 4)  # confirmed: no further commands
    assert closes(rig) == 2


async def test_no_reclose_after_a_hardware_fault(rig: Rig) -> None:
    await charging(rig)
    await rig.wait("transaction", lambda p: p is not None and p.transaction_id is not None)
    rig.relay(False)  # overcurrent: the hardware opens on its own, then says why
    rig.hw.publish(ch.HW_ERROR, HardwareError(code=ChargePointErrorCode.OVER_CURRENT_FAILURE,
                                              info="21.0 A > 16 A"), connector=1)
    await rig.status("Faulted")
    session = await rig.wait("session")
    assert session.stop_reason.value == "Other"
    await asyncio.sleep(GRACE * 4)
    assert closes(rig) == 1


async def test_no_reclose_without_an_ev_then_again_when_it_is_back(rig: Rig) -> None:
    await charging(rig, ocpp_config={"MeterValueSampleInterval": "20",
                                     "StopTransactionOnEVSideDisconnect": "false"})
    rig.pilot("A")  # unplugged: the hardware opens the relay itself
    rig.relay(False)
    await asyncio.sleep(GRACE * 4)
    assert closes(rig) == 1  # the transaction goes on, but nothing to close onto
    rig.pilot("B")  # the EV is back (OCPP 1.6: the transaction continues)
    again = await rig.wait("relay_set", lambda p: p.closed, count=2)
    assert again.closed is True
    assert rig.seen["session"] == []


async def test_real_hardware_service_killed_mid_transaction(
        rig: Rig, services: ServiceGroup, tmp_path: Path) -> None:
    env = {**rig.broker.env("hardware"), "VOLTBUS_STATIONS": rig.id,
           "VOLTBUS_METER_INTERVAL_S": "0.2", "VOLTBUS_POLL_INTERVAL_S": "0.05",
           "VOLTBUS_DATA_DIR": str(tmp_path / "hw")}
    watcher = Bus(rig.broker.settings("operator", stations=[rig.id]), station=rig.id,
                  service=None)
    status = Watch(watcher, ch.SERVICE_STATUS, service="hardware")
    relays = Watch(watcher, ch.RELAY)
    meters = Watch(watcher, ch.METER)
    task = asyncio.create_task(watcher.run())
    try:
        await watcher.wait_connected(5)
        hardware = services.start("hardware", env)
        await status.until(lambda m: m.payload is ServiceState.ONLINE, within=15)
        await rig.start_gateway(relay_grace_s=GRACE, ocpp_config={
            "MeterValueSampleInterval": "20", "StopTransactionOnEVSideDisconnect": "false"})
        rig.op.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await rig.status("Preparing")
        rig.tap("04A1B2C3")
        await relays.until(lambda m: m.payload.closed, within=10)
        await rig.status("Charging", timeout=10)
        await meters.until(lambda m: m.payload.power_w > 0)

        hardware.kill()  # SIGKILL: its Last Will says offline; its commands are gone
        await status.until(lambda m: m.payload is ServiceState.OFFLINE, within=10)
        services.start("hardware", env)
        await status.until(lambda m: m.payload is ServiceState.ONLINE, within=15)
        await relays.until(lambda m: not m.payload.closed, within=10)  # opened at start-up
        # The simulator forgets the plug with the process (a real EVSE board would not): plug
        # the EV in again; the gateway closes the relay of the transaction still running.
        rig.op.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await relays.until(lambda m: m.payload.closed, within=10)
        meters.drain()
        await meters.until(lambda m: m.payload.power_w > 0, within=10)
        await rig.status("Charging", count=2, timeout=10)
    except BaseException:
        print(services.logs())
        raise
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert rig.seen["session"] == []  # one transaction all along
    assert rig.csms.violations(rig.id) == []  # the register never went back (sim_registers)
