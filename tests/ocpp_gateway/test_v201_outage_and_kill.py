"""Issue 11's offline promise in 2.0.1, in one run: the gateway as a real process
(`python -m voltbus_ocpp`) charging against the dev central system, which goes down mid-transaction
(it keeps what it received, as a real one would); TransactionEvents pile up in the outbox, the
gateway is SIGKILLed with them queued, restarts while the central system is still down and
resumes the transaction (the hardware kept the relay closed for the same plug-in: issue 11's
"keeps charging through a central-system outage and a SIGKILL of the gateway"); once the central
system is back every TransactionEvent arrives once, in seqNo order without gaps (the restarted
gateway continues the seqNo), those made while it was down flagged offline, with the timestamp
it was made at; the driver then ends the session as usual: one Started, one Ended."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
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
    rig.hardware_status(True)
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
        gateway.start()  # still offline: the transaction resumes, its periodic events queued
        await rig.wait("transaction", lambda p: p is not None and p.energy_wh == 200.0,
                       timeout=15)
        restarted_at = datetime.now(UTC)
        await asyncio.sleep(1.5)  # periodic Updated events of the restarted gateway, queued
        back_at = datetime.now(UTC)
        await csms.start()
        await rig.wait("connection", lambda p: p.connected is True, count=2, timeout=15)
        rig.meter(1300.0)
        await asyncio.sleep(1.0)  # periodic events sent live
        relays_before_stop = [m.payload.closed for m in rig.seen["relay_set"]]
        rig.tap("04A1B2C3")  # the driver ends the session as usual
        ended = await csms.wait_for(rig.id, "TransactionEvent", timeout=15,
                                    where=lambda p: p["eventType"] == "Ended")
        await asyncio.sleep(0.5)  # anything sent twice would come now
    finally:
        if gateway.proc is not None and gateway.proc.poll() is None:
            gateway.signal(signal.SIGKILL)

    # the relay stayed closed through the outage and the kill: closed once for the start,
    # never commanded again (neither gateway) before the stop
    assert True in relays_before_kill
    assert relays_before_stop[relays_before_stop.index(True):] == [True], relays_before_stop
    sent = events(rig)
    assert {e["transactionInfo"]["transactionId"] for e in sent} == {tx_id}
    assert [e["seqNo"] for e in sent] == list(range(len(sent)))  # once each, in order
    kinds = [e["eventType"] for e in sent]
    assert (kinds.count("Started"), kinds.count("Ended")) == (1, 1), kinds
    assert (kinds[0], kinds[-1]) == ("Started", "Ended")
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert register(ended) == [1300.0]
    stamps = [parse_time(e["timestamp"]) for e in sent]
    assert stamps == sorted(stamps)  # the timestamps they were made at, never going back
    # made while the central system was down (before and after the kill), flagged offline
    queued = [e for e in sent[online:] if parse_time(e["timestamp"]) < back_at]
    assert queued, "nothing was queued"
    assert all(e.get("offline") is True for e in queued), queued
    assert not any(e.get("offline") for e in sent[:online])
    live = [e for e in sent if parse_time(e["timestamp"]) > back_at + timedelta(seconds=0.5)]
    assert live, "nothing sent live after the central system was back"
    assert not any(e.get("offline") for e in live), live
    periodic = [e for e in queued if e["triggerReason"] == "MeterValuePeriodic"]
    before_kill = [e for e in periodic if parse_time(e["timestamp"]) <= killed_at]
    after_restart = [e for e in periodic if parse_time(e["timestamp"]) >= restarted_at]
    assert len(before_kill) >= 2, [e["timestamp"] for e in periodic]
    assert len(after_restart) >= 1, [e["timestamp"] for e in periodic]
    assert all(down_at <= parse_time(e["timestamp"]) for e in before_kill)
    # the periodic values carry the state the transaction was in: Charging, then SuspendedEV
    states = [e["transactionInfo"].get("chargingState") for e in before_kill]
    assert set(states) <= {"Charging", "SuspendedEV"}, states
    assert states[0] == "Charging", states
    paused = [e for e in queued if e["transactionInfo"].get("chargingState") == "SuspendedEV"
              and e["triggerReason"] == "ChargingStateChanged"]
    assert len(paused) == 1, [e["triggerReason"] for e in queued]
    assert all(e["transactionInfo"].get("chargingState") == "SuspendedEV"
               for e in after_restart), after_restart  # still paused (pilot B) after it
    # nothing is stamped while the gateway was dead: no event of the kill's gap
    assert not [e for e in sent if killed_at < parse_time(e["timestamp"]) < restarted_at
                - timedelta(seconds=1.5)]
    assert register(after_restart[0]) == [1200.0]
    assert csms.violations(rig.id) == []
