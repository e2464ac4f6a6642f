"""Reset against the dev central system: a hard Reset finishes the transactions, then ends the
station's runtime (the process exits with HARD_RESET_EXIT_CODE for its supervisor; a process with
several stations rebuilds only that one); ResetRetries bounds how long a reset waits for its
StopTransactions to be answered."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from ocpp.v16 import call

from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_processes import GatewayProcess
from tests.ocpp_gateway.test_protocol_ops import charging, online
from voltbus_ocpp.station import HARD_RESET_EXIT_CODE


async def test_hard_reset_stops_the_transaction_then_ends_the_station(rig: Rig) -> None:
    rig.meter(100.0)
    await online(rig)
    await charging(rig)
    assert await rig.csms.send(rig.id, call.Reset(type="Hard")) == {"status": "Accepted"}
    stop = await rig.csms.wait_for(rig.id, "StopTransaction")
    assert stop["reason"] == "HardReset"
    assert rig._gw_task is not None
    await asyncio.wait_for(asyncio.shield(rig._gw_task), 5)  # run() returned by itself
    assert rig.gateway is not None
    assert rig.gateway.reset_done
    assert len(rig.gateway.queue) == 0  # the StopTransaction was answered before
    await rig.wait("connection", lambda p: p.connected is False)
    await rig.stop_gateway()
    await rig.start_gateway()  # what the supervisor does
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)
    await rig.csms.wait_for(rig.id, "StatusNotification", count=2,
                            where=lambda p: p["connectorId"] == 1 and p["status"] == "Preparing")
    await asyncio.sleep(0.2)
    assert len(rig.csms.received(rig.id, "StopTransaction")) == 1  # not stopped twice


@pytest.mark.parametrize(("retries", "stop_first"), [("0", False), ("5", True)])
async def test_reset_retries_wait_for_the_stop_transaction(rig: Rig, retries: str,
                                                           stop_first: bool) -> None:
    """Each attempt waits TransactionMessageRetryInterval (0.6 s here) for the outbox; the
    StopTransaction gets two CALLERRORs, so it is answered ~1.8 s after the reset."""
    rig.csms.behaviour.fail_next["StopTransaction"] = 2
    await online(rig, ocpp_config={"ResetRetries": retries, "MeterValueSampleInterval": "0",
                                   "TransactionMessageAttempts": "5"})
    await charging(rig)
    assert await rig.csms.send(rig.id, call.Reset(type="Soft")) == {"status": "Accepted"}
    answered = await rig.csms.wait_for(rig.id, "StopTransaction", count=3, timeout=8)
    assert answered["reason"] == "SoftReset"
    await rig.csms.wait_for(rig.id, "BootNotification", count=2, timeout=8)
    actions = rig.csms.actions(rig.id)
    third_stop = [i for i, a in enumerate(actions) if a == "StopTransaction"][2]
    second_boot = [i for i, a in enumerate(actions) if a == "BootNotification"][1]
    assert (third_stop < second_boot) is stop_first


async def test_hard_reset_exits_the_process_with_the_restart_code(
        rig: Rig, mosquitto: Broker, tmp_path: Path) -> None:
    gw = GatewayProcess(mosquitto, rig.id, rig.csms.url, tmp_path / "gw")
    rig.meter(700.0)
    rig.pilot("C")
    gw.start()
    try:
        # Preparing, not the first status: that one can come before the gateway subscribed to the
        # bus (the link may boot first), and a tap published then reaches nobody.
        await rig.csms.wait_for(rig.id, "StatusNotification", timeout=10,
                                where=lambda p: p["connectorId"] == 1
                                and p["status"] == "Preparing")
        rig.tap("TAG")
        await rig.csms.wait_for(rig.id, "StartTransaction")
        rig.meter(750.0)
        await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 50.0)
        answer = await rig.csms.send(rig.id, call.Reset(type="Hard"))
        assert answer == {"status": "Accepted"}
        assert gw.proc is not None
        assert await asyncio.to_thread(gw.proc.wait, 10) == HARD_RESET_EXIT_CODE
        stop = await rig.csms.wait_for(rig.id, "StopTransaction")
        assert (stop["reason"], stop["meterStop"]) == ("HardReset", 750)
        gw.start()  # the supervisor's part: it comes back and boots; nothing is stopped again
        await rig.csms.wait_for(rig.id, "BootNotification", count=2, timeout=10)
        await asyncio.sleep(0.3)
        assert len(rig.csms.received(rig.id, "StopTransaction")) == 1
    finally:
        if gw.proc is not None and gw.proc.poll() is None:
            assert await asyncio.to_thread(gw.signal, signal.SIGTERM) == 0


async def test_hard_reset_of_one_station_leaves_the_others_charging(
        rig: Rig, mosquitto: Broker, tmp_path: Path) -> None:
    """Two stations in one process: the reset one is rebuilt in-process, the process lives on."""
    other = f"{rig.id}b"
    gw = GatewayProcess(mosquitto, f"{rig.id},{other}", rig.csms.url, tmp_path / "gw")
    gw.start()
    try:
        await rig.csms.wait_for(other, "BootNotification", timeout=10)
        await rig.csms.wait_for(rig.id, "StatusNotification", timeout=10,
                                where=lambda p: p["connectorId"] == 1)
        answer = await rig.csms.send(rig.id, call.Reset(type="Hard"))
        assert answer == {"status": "Accepted"}
        await rig.csms.wait_for(rig.id, "BootNotification", count=2, timeout=10)
        await rig.csms.wait_for(rig.id, "StatusNotification", count=2, timeout=10,
                                where=lambda p: p["connectorId"] == 1)  # rebuilt and running
        assert gw.proc is not None
        assert gw.proc.poll() is None
        assert len(rig.csms.received(other, "BootNotification")) == 1
    finally:
        if gw.proc is not None and gw.proc.poll() is None:
            assert await asyncio.to_thread(gw.signal, signal.SIGTERM) == 0


async def test_hard_reset_runs_the_reboot_command_after_the_stops(rig: Rig, tmp_path: Path) -> None:
    """§5.14: Hard is a reboot of the charge point: VOLTBUS_REBOOT_COMMAND runs once the
    transactions are stopped (and answered), then the process ends as without one."""
    marker = tmp_path / "rebooted"
    script = tmp_path / "reboot.sh"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {marker}\n")
    script.chmod(0o755)
    rig.meter(100.0)
    await online(rig, reboot_command=f"{script} now")
    await charging(rig)
    assert await rig.csms.send(rig.id, call.Reset(type="Hard")) == {"status": "Accepted"}
    stop = await rig.csms.wait_for(rig.id, "StopTransaction")
    assert stop["reason"] == "HardReset"
    assert rig._gw_task is not None
    await asyncio.wait_for(asyncio.shield(rig._gw_task), 5)
    assert marker.read_text() == "now\n"
    assert rig.gateway is not None
    assert rig.gateway.reset_done
    assert len(rig.gateway.queue) == 0  # answered before the reboot command ran
    assert rig.csms.violations(rig.id) == []


async def test_no_new_session_between_the_reset_and_the_restart(rig: Rig) -> None:
    """§5.14: once a Reset is accepted nothing new starts (the connectors are Unavailable) while
    its StopTransaction is retried; after the soft reset the station behaves as just booted."""
    rig.csms.behaviour.fail_next["StopTransaction"] = 2  # the restart waits ~1.8 s
    rig.meter(100.0)
    await online(rig, ocpp_config={"ResetRetries": "5", "MeterValueSampleInterval": "0",
                                   "TransactionMessageAttempts": "5"})
    await charging(rig)
    assert await rig.csms.send(rig.id, call.Reset(type="Soft")) == {"status": "Accepted"}
    await rig.csms.wait_for(rig.id, "StopTransaction")
    await rig.status("Unavailable")
    rig.command(1, command="start", id_tag="OTHER", request_id="during-reset")
    refused = await rig.wait("result", lambda p: p.request_id == "during-reset")
    assert refused.status.value == "Rejected"
    rig.tap("TAG")
    await rig.csms.wait_for(rig.id, "BootNotification", count=2, timeout=8)
    assert len(rig.csms.received(rig.id, "StartTransaction")) == 1
    assert rig.csms.received(rig.id, "Authorize")[-1].at < rig.csms.received(
        rig.id, "StopTransaction")[0].at  # the tap during the reset asked nothing
    await rig.csms.wait_for(rig.id, "StatusNotification", count=2,
                            where=lambda p: p["connectorId"] == 1 and p["status"] == "Preparing")
    rig.tap("TAG")  # free again after the reset: Preparing, as just booted
    await rig.csms.wait_for(rig.id, "StartTransaction", count=2)
    assert rig.csms.violations(rig.id) == []
