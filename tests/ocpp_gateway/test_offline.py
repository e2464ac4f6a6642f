"""Central system down mid-session: keep charging, stop and start offline, replay in order with
original timestamps and real transaction ids, nothing lost, nothing sent twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.ocpp_gateway.conftest import Rig


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def energy(mv: dict) -> str:
    return next(v["value"] for v in mv["meterValue"][0]["sampledValue"]
                if v["measurand"] == "Energy.Active.Import.Register")


async def test_offline_session_is_replayed_in_order_with_real_ids(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(1000.0)
    rig.pilot("B")
    await rig.start_gateway()
    await rig.status("Preparing")
    rig.tap("TAG1")
    start1 = await csms.wait_for(rig.id, "StartTransaction")
    await rig.wait("transaction", lambda p: p is not None and p.transaction_id == 1)
    rig.pilot("C")
    rig.relay(True)
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["status"] == "Charging")

    # The central system goes away; charging goes on.
    await csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    went_down = datetime.now(UTC)
    rig.meter(1100.0)
    await asyncio.sleep(0.5)  # a few MeterValueSampleIntervals (0.2 s) pass while offline
    assert not [r for r in rig.seen["relay_set"] if r.payload.closed is False]
    rig.meter(1200.0)
    await asyncio.sleep(0.25)

    # Stopped locally while offline: relay opens at once.
    rig.tap("TAG1")
    await rig.wait("relay_set", lambda p: p.closed is False)
    session1 = await rig.wait("session")
    assert session1.transaction_id == 1
    assert session1.meter_stop_wh == 1200.0

    # A new session offline: TAG1 is in the authorisation cache (LocalAuthorizeOffline).
    rig.pilot("A")
    await rig.status("Available", count=2)
    rig.meter(1200.0)
    rig.pilot("B")
    rig.tap("TAG1")
    await rig.wait("relay_set", lambda p: p.closed is True, count=2)
    tx2 = await rig.wait("transaction", lambda p: p is not None and p.meter_start_wh == 1200.0)
    assert tx2.transaction_id is None  # not known until the central system answers
    rig.meter(1300.0)
    await asyncio.sleep(0.3)
    rig.tap("TAG1")
    session2 = await rig.wait("session", count=2)
    assert session2.meter_stop_wh == 1300.0
    assert session2.transaction_id is None
    stopped_offline = datetime.now(UTC)
    calls_before = len(csms.received(rig.id))

    # Back online: everything arrives, in order, once, with the real transaction ids.
    await csms.start()
    stop2 = await csms.wait_for(rig.id, "StopTransaction", count=2, timeout=10)
    replay = csms.received(rig.id)[calls_before:]
    durable = [(m.action, m.payload) for m in replay
               if m.action in ("StartTransaction", "StopTransaction", "MeterValues")]
    actions = [a for a, _ in durable]
    assert actions[0] == "MeterValues"  # tx 1 samples taken offline come first
    stop1_at = actions.index("StopTransaction")
    assert set(actions[:stop1_at]) == {"MeterValues"}
    assert all(p["transactionId"] == 1 for _, p in durable[:stop1_at + 1])
    stop1 = durable[stop1_at][1]
    assert stop1["meterStop"] == 1200
    assert stop1["reason"] == "Local"
    assert stop1["idTag"] == "TAG1"
    assert went_down < ts(stop1["timestamp"]) < stopped_offline  # the original time
    assert actions[stop1_at + 1] == "StartTransaction"
    start2 = durable[stop1_at + 1][1]
    assert start2["meterStart"] == 1200
    assert ts(start2["timestamp"]) < stopped_offline
    assert actions[-1] == "StopTransaction"
    assert set(actions[stop1_at + 2:-1]) <= {"MeterValues"}
    assert stop2["transactionId"] == 2  # the real id, not a placeholder
    assert stop2["meterStop"] == 1300
    assert all(p["transactionId"] == 2 for _, p in durable[stop1_at + 2:])
    assert energy(durable[0][1]) in ("1000", "1100", "1200")
    # Nothing twice: one StartTransaction per session in the whole run.
    assert len(csms.received(rig.id, "StartTransaction")) == 2
    assert len(csms.received(rig.id, "StopTransaction")) == 2
    assert start1["meterStart"] == 1000
    assert rig.gateway is not None
    for _ in range(100):  # the last answer is on its way back
        if len(rig.gateway.queue) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(rig.gateway.queue) == 0
    await rig.wait("connection", lambda p: p.connected and p.registration is not None, count=2)


async def test_unknown_tag_offline_needs_allow_offline_tx(rig: Rig) -> None:
    csms = rig.csms
    rig.pilot("B")
    await rig.start_gateway(ocpp_config={"MeterValueSampleInterval": "20",
                                         "AllowOfflineTxForUnknownId": "true"})
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["status"] == "Preparing")
    await csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    rig.tap("NEWCARD")
    await rig.wait("relay_set", lambda p: p.closed is True)
    await csms.start()
    start = await csms.wait_for(rig.id, "StartTransaction", timeout=10)
    assert start["idTag"] == "NEWCARD"
    assert csms.received(rig.id, "Authorize") == []


async def test_unknown_tag_offline_is_refused_by_default(rig: Rig) -> None:
    rig.pilot("B")
    await rig.start_gateway()
    await rig.status("Preparing")
    await rig.csms.wait_for(rig.id, "StatusNotification")
    await rig.csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    rig.command(1, command="start", id_tag="NEWCARD", request_id="s")
    result = await rig.wait("result", lambda p: p.request_id == "s")
    assert result.status.value == "Rejected"
    assert "not authorised" in result.reason
    assert rig.seen["relay_set"] == []
