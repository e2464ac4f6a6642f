"""Issue 11's offline promise in 2.0.1, in one run: the gateway as a real process
(`python -m voltbus_ocpp`) charging against the dev central system, which goes down mid-transaction
(it keeps what it received, as a real one would); TransactionEvents pile up in the outbox, the
gateway is SIGKILLed with them queued, restarts while the central system is still down (ending
the cut-short transaction, PowerLoss), and once the central system is back every
TransactionEvent arrives once, in seqNo order without gaps, flagged offline, with the
timestamp it was made at."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_processes import GatewayProcess
from voltbus_ocpp.protocol.wire_time import parse_time


def events(rig: Rig) -> list[dict[str, Any]]:
    return [m.payload for m in rig.csms.received(rig.id, "TransactionEvent")]


def register(event: dict[str, Any]) -> list[float]:
    return [v["value"] for mv in event.get("meterValue", []) for v in mv["sampledValue"]
            if v.get("measurand") == "Energy.Active.Import.Register"]


async def test_201_outage_then_sigkill_every_event_once_in_order_with_its_time(
        rig: Rig, mosquitto: Broker, station: str, tmp_path: Path) -> None:
    csms = rig.csms
    gateway = GatewayProcess(mosquitto, station, csms.url, tmp_path / "gw")
    gateway.env["VOLTBUS_OCPP_VERSION"] = "2.0.1"  # TxUpdatedInterval 60 s x 0.01: 0.6 s
    rig.meter(1000.0)
    rig.pilot("B")
    gateway.start()
    try:
        await csms.wait_for(rig.id, "StatusNotification", timeout=15, where=lambda p: (
            p["evseId"] == 1 and p["connectorStatus"] == "Occupied"))
        await rig.wait("connection", lambda p: p.connected is True, timeout=15)
        rig.tap("04A1B2C3")
        started = await csms.wait_for(rig.id, "TransactionEvent",
                                      where=lambda p: p["eventType"] == "Started")
        tx_id = started["transactionInfo"]["transactionId"]
        await rig.wait("relay_set", lambda p: p.closed is True)
        rig.relay(True)
        rig.pilot("C")
        await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["transactionInfo"].get(
            "chargingState") == "Charging")
        online = len(events(rig))

        await csms.stop()  # the central system goes away; charging goes on
        down_at = datetime.now(UTC)
        await rig.wait("connection", lambda p: p.connected is False)
        rig.meter(1100.0)
        await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 100.0)
        await asyncio.sleep(1.5)  # periodic Updated events (every 0.6 s) are queued
        rig.pilot("B")  # the EV pauses: an Updated ChargingStateChanged SuspendedEV, queued
        await asyncio.sleep(0.3)
        relays_before_kill = [m.payload.closed for m in rig.seen["relay_set"]]
        assert gateway.signal(signal.SIGKILL) == -9  # with the events still in the outbox
        killed_at = datetime.now(UTC)
        rig.meter(1200.0)  # the register moved on while the gateway was down (retained)
        gateway.start()  # still offline: the cut-short transaction ends (PowerLoss), queued
        session = await rig.wait("session", lambda p: p is not None, timeout=15)
        assert session.meter_stop_wh == 1200.0
        await asyncio.sleep(0.3)
        back_at = datetime.now(UTC)
        await csms.start()
        ended = await csms.wait_for(rig.id, "TransactionEvent", timeout=15,
                                    where=lambda p: p["eventType"] == "Ended")
        await asyncio.sleep(0.5)  # anything sent twice would come now
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            gateway.signal(signal.SIGKILL)

    # the relay stayed closed through the outage: never told to open after the start closed it
    assert True in relays_before_kill
    assert False not in relays_before_kill[relays_before_kill.index(True):], relays_before_kill
    sent = events(rig)
    assert {e["transactionInfo"]["transactionId"] for e in sent} == {tx_id}
    assert [e["seqNo"] for e in sent] == list(range(len(sent)))  # once each, in order
    assert [e["eventType"] for e in sent].count("Ended") == 1
    assert ended["transactionInfo"]["stoppedReason"] == "PowerLoss"
    assert register(ended) == [1200.0]
    queued = sent[online:]
    assert all(e.get("offline") is True for e in queued), queued
    assert not any(e.get("offline") for e in sent[:online])
    triggers = [e["triggerReason"] for e in queued]
    assert triggers.count("MeterValuePeriodic") >= 2, triggers
    # the periodic values carry the state the transaction was in: Charging, then SuspendedEV
    periodic = [e["transactionInfo"].get("chargingState") for e in queued
                if e["triggerReason"] == "MeterValuePeriodic"]
    assert set(periodic) <= {"Charging", "SuspendedEV"}, periodic
    assert periodic[0] == "Charging", periodic
    paused = [e for e in queued if e["transactionInfo"].get("chargingState") == "SuspendedEV"
              and e["triggerReason"] == "ChargingStateChanged"]
    assert len(paused) == 1, triggers
    # made while the central system was down, before the kill; sent only once it was back:
    # the timestamps are the original ones, not the sending time, and they never go back
    stamps = [parse_time(e["timestamp"]) for e in sent]
    assert stamps == sorted(stamps)
    made_before_kill = [parse_time(e["timestamp"]) for e in queued[:-1]]
    assert all(down_at <= t <= killed_at for t in made_before_kill), (down_at, killed_at)
    assert killed_at <= parse_time(ended["timestamp"]) <= back_at
    assert [e for e in sent if e["triggerReason"] == "MeterValuePeriodic"
            and parse_time(e["timestamp"]) >= back_at] == []
    assert csms.violations(rig.id) == []
