"""A gateway SIGKILLed while a car charges, restarted (as its supervisor does): the hardware kept
the relay closed (it holds it gateway_loss_relay_hold_s after the gateway's Will), so the restarted
gateway resumes the transaction when the hardware's retained state shows the same plug-in
(PilotEvent.plugged_at) with the relay closed, and stops it otherwise (docs/reliability.md,
"Gateway SIGKILL and power cut"). OCPP 1.6 here; 2.0.1 in test_v201_outage_and_kill.py.

The gateway is a real process (`python -m voltbus_ocpp`), the central system the dev CSMS, the
hardware played on the bus by the rig (its retained pilot, relay, meter and service status)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_processes import GatewayProcess


def actions(rig: Rig, *names: str) -> list[Any]:
    return [m for m in rig.csms.received(rig.id) if m.action in names]


async def charging(rig: Rig, gateway: GatewayProcess) -> dict[str, Any]:
    """Plugged in, authorised, the relay closed and reported closed, the EV drawing."""
    rig.hardware_status(True)
    rig.meter(3000.0)
    rig.pilot("B")
    gateway.start()
    await rig.csms.wait_for(rig.id, "StatusNotification", timeout=15,
                            where=lambda p: p["status"] == "Preparing")
    rig.tap("04A1B2C3")
    start = await rig.csms.wait_for(rig.id, "StartTransaction", timeout=10)
    await rig.wait("relay_set", lambda p: p.closed is True)
    rig.relay(True)
    rig.pilot("C")
    await rig.csms.wait_for(rig.id, "MeterValues", timeout=10)
    return dict(start)


async def test_16_sigkill_while_charging_resumes_the_transaction(
        rig: Rig, mosquitto: Broker, tmp_path: Path) -> None:
    gateway = GatewayProcess(mosquitto, rig.id, rig.csms.url, tmp_path / "gw")
    try:
        await charging(rig, gateway)
        assert await asyncio.to_thread(gateway.signal, signal.SIGKILL) == -9
        killed_at = len(rig.csms.received(rig.id))
        rig.meter(3200.0)  # the EV drew on while the gateway was down (the hardware kept it)
        gateway.start()
        await rig.csms.wait_for(rig.id, "BootNotification", timeout=15,
                                where=lambda p: len(rig.csms.received(rig.id, "BootNotification"))
                                >= 2)
        after = await rig.csms.wait_for(rig.id, "MeterValues", timeout=10, where=lambda p: any(
            float(v["value"]) == 3200 for mv in p["meterValue"] for v in mv["sampledValue"]
            if v.get("measurand", "Energy.Active.Import.Register")
            == "Energy.Active.Import.Register"))
        transaction = await rig.wait("transaction", lambda p: p is not None
                                     and p.energy_wh == 200.0, timeout=10)
        relays_before_stop = [m.payload.closed for m in rig.seen["relay_set"]]
        rig.meter(3300.0)
        await asyncio.sleep(0.5)
        rig.tap("04A1B2C3")  # the driver ends the session as usual
        stop = await rig.csms.wait_for(rig.id, "StopTransaction", timeout=10)
        await asyncio.sleep(0.5)  # anything sent twice would come now
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            assert await asyncio.to_thread(gateway.signal, signal.SIGTERM) == 0
    assert after["transactionId"] == 1
    assert (transaction.transaction_id, transaction.meter_start_wh) == (1, 3000.0)
    # the relay was closed once, for the start (an idle open before it); neither gateway
    # commanded it again before the stop
    assert relays_before_stop[relays_before_stop.index(True):] == [True], relays_before_stop
    assert (stop["transactionId"], stop["reason"], stop["meterStop"]) == (1, "Local", 3300)
    assert len(rig.csms.received(rig.id, "StartTransaction")) == 1
    assert len(rig.csms.received(rig.id, "StopTransaction")) == 1
    resumed = [m.payload for m in rig.csms.received(rig.id)[killed_at:]
               if m.action == "MeterValues"]
    assert resumed, "no MeterValues after the restart"
    assert all(p["transactionId"] == 1 for p in resumed), resumed
    order = [m.action for m in actions(rig, "StartTransaction", "MeterValues", "StopTransaction")]
    assert (order[0], order[-1]) == ("StartTransaction", "StopTransaction")
    assert rig.csms.violations(rig.id) == []


async def test_16_cable_pulled_while_the_gateway_was_down_stops_the_transaction_once(
        rig: Rig, mosquitto: Broker, tmp_path: Path) -> None:
    """Unplugged (the hardware opened the relay) and plugged in again while the gateway was
    dead: a new plug-in, not the transaction's: it is stopped (EVDisconnected), once, and the
    new plug-in may start a session of its own."""
    gateway = GatewayProcess(mosquitto, rig.id, rig.csms.url, tmp_path / "gw")
    try:
        await charging(rig, gateway)
        assert await asyncio.to_thread(gateway.signal, signal.SIGKILL) == -9
        rig.meter(3150.0)
        rig.pilot("A")
        rig.relay(False)  # the hardware opens on pilot A by itself
        await asyncio.sleep(0.05)
        rig.pilot("B")  # another plug-in: another plugged_at
        gateway.start()
        stop = await rig.csms.wait_for(rig.id, "StopTransaction", timeout=15)
        session = await rig.wait("session", lambda p: p is not None, timeout=10)
        await rig.csms.wait_for(rig.id, "StatusNotification", timeout=10,
                                where=lambda p: p["status"] == "Preparing" and len(
                                    rig.csms.received(rig.id, "BootNotification")) == 2)
        rig.tap("04A1B2C3")
        await rig.csms.wait_for(rig.id, "StartTransaction", timeout=10, where=lambda p:
                                len(rig.csms.received(rig.id, "StartTransaction")) == 2)
        second = rig.csms.received(rig.id, "StartTransaction")[1].payload
        await asyncio.sleep(0.5)
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            assert await asyncio.to_thread(gateway.signal, signal.SIGTERM) == 0
    assert (stop["transactionId"], stop["reason"], stop["meterStop"]) == (1, "EVDisconnected",
                                                                           3150)
    assert session.stop_reason.value == "EVDisconnected"
    assert second["meterStart"] == 3150
    assert len(rig.csms.received(rig.id, "StopTransaction")) == 1
    assert rig.csms.violations(rig.id) == []


async def test_16_relay_opened_meanwhile_stops_the_transaction(
        rig: Rig, mosquitto: Broker, tmp_path: Path) -> None:
    """The same plug-in, but the relay open (the hardware's hold ran out before the gateway
    came back): nothing charged it since; stopped as before the resume existed (PowerLoss)."""
    gateway = GatewayProcess(mosquitto, rig.id, rig.csms.url, tmp_path / "gw")
    try:
        await charging(rig, gateway)
        assert await asyncio.to_thread(gateway.signal, signal.SIGKILL) == -9
        rig.relay(False)
        rig.pilot("B")  # the EV stops drawing; the same plug-in
        gateway.start()
        stop = await rig.csms.wait_for(rig.id, "StopTransaction", timeout=15)
        await asyncio.sleep(0.5)
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            assert await asyncio.to_thread(gateway.signal, signal.SIGTERM) == 0
    assert (stop["transactionId"], stop["reason"]) == (1, "PowerLoss")
    assert len(rig.csms.received(rig.id, "StopTransaction")) == 1
    assert rig.csms.violations(rig.id) == []
