"""A person at the charger goes first: an Authorize is sent ahead of a stored backlog."""

from __future__ import annotations

import asyncio

from tests.ocpp_gateway.conftest import Rig
from voltbus_ocpp.records import METER_VALUES


async def test_authorize_goes_ahead_of_stored_meter_values(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(1000.0)
    rig.pilot("B")
    await rig.start_gateway(connectors=2)
    await rig.status("Preparing")
    rig.tap("TAG1")
    await csms.wait_for(rig.id, "StartTransaction")
    rig.pilot("C")
    rig.relay(True)
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["status"] == "Charging")

    # Offline for a while: periodic MeterValues (every 0.2 s here) pile up in the outbox.
    await csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    await asyncio.sleep(2.0)
    assert rig.gateway is not None
    backlog = sum(1 for q in rig.gateway.queue.all() if q.kind == METER_VALUES)
    assert backlog >= 5

    # Back online behind a slow central system; a driver taps at connector 2 meanwhile.
    csms.behaviour.answer_delay_s["MeterValues"] = 0.25
    rig.pilot("B", connector=2)
    before = len(csms.received(rig.id, "MeterValues"))  # some may be from before the outage
    await csms.start()
    await csms.wait_for(rig.id, "MeterValues", count=before + 1, timeout=10)  # online again
    rig.tap("TAG2")
    await csms.wait_for(rig.id, "Authorize", where=lambda p: p["idTag"] == "TAG2", timeout=10)
    actions = [(m.action, m.payload) for m in csms.received(rig.id)]
    authorize_at = next(i for i, (a, p) in enumerate(actions)
                        if a == "Authorize" and p["idTag"] == "TAG2")
    replayed_before = sum(1 for a, _ in actions[:authorize_at] if a == "MeterValues")
    # Without priority the Authorize waits behind the whole backlog (>= 5 x 0.25 s).
    assert replayed_before < backlog, (replayed_before, backlog)
    csms.behaviour.answer_delay_s.clear()
    await rig.wait("relay_set", lambda p: p.closed is True, count=2)  # connector 2 charges too



async def test_authorize_goes_ahead_of_a_queued_status(rig: Rig) -> None:
    """A StatusNotification queued behind the CALL in flight waited ahead of the driver's
    Authorize (one CALL at a time in OCPP-J): one more round trip before the relay closed."""
    csms = rig.csms
    rig.meter(1000.0)
    rig.meter(1000.0, connector=2)
    rig.pilot("B", connector=2)
    await rig.start_gateway(connectors=2)
    await rig.status("Preparing", connector=2)
    rig.tap("TAG2")  # connector 2 charges: its MeterValues every 0.2 s
    await csms.wait_for(rig.id, "StartTransaction")
    rig.relay(True, connector=2)
    csms.behaviour.answer_delay_s["MeterValues"] = 0.6
    before = len(csms.received(rig.id, "MeterValues"))
    await csms.wait_for(rig.id, "MeterValues", count=before + 1, timeout=10)  # in flight
    rig.pilot("B")  # connector 1: Preparing, its StatusNotification queued behind it
    await rig.status("Preparing")
    rig.tap("TAG1")
    await csms.wait_for(rig.id, "StatusNotification", timeout=10,
                        where=lambda p: p["connectorId"] == 1 and p["status"] == "Preparing")
    await csms.wait_for(rig.id, "Authorize", where=lambda p: p["idTag"] == "TAG1", timeout=10)
    csms.behaviour.answer_delay_s.clear()
    actions = [(m.action, m.payload.get("connectorId"), m.payload.get("status"))
               for m in csms.received(rig.id) if m.action in ("Authorize", "StatusNotification")]
    authorize = next(i for i, m in enumerate(csms.received(rig.id))
                     if m.action == "Authorize" and m.payload["idTag"] == "TAG1")
    status = next(i for i, m in enumerate(csms.received(rig.id))
                  if m.action == "StatusNotification" and m.payload["connectorId"] == 1
                  and m.payload["status"] == "Preparing")
    assert authorize < status, actions
    await rig.wait("relay_set", lambda p: p.closed is True, count=2)
