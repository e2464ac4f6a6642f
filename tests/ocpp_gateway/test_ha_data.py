"""What Home Assistant needs from the gateway (issue 13): the commanded limit across a restart,
on the real broker with the gateway talking WebSocket to the dev central system."""

from __future__ import annotations

from tests.ocpp_gateway.conftest import Rig


def _forget(rig: Rig) -> None:
    for seen in rig.seen.values():
        seen.clear()


async def test_command_limit_survives_a_restart(rig: Rig) -> None:
    await rig.start_gateway(connectors=2)
    first = await rig.wait("charging", connector=1)
    assert first.command_limit_a is None  # none set yet
    rig.command(1, command="set_current_limit", amps=10, request_id="l")
    assert (await rig.wait("result", lambda p: p.request_id == "l")).status.value == "Accepted"
    charging = await rig.wait("charging", lambda p: p.command_limit_a is not None, connector=1)
    assert (charging.command_limit_a, charging.current_limit_a) == (10.0, 10.0)
    other = await rig.wait("charging", connector=2)
    assert other.command_limit_a is None  # per connector

    await rig.stop_gateway()
    _forget(rig)
    await rig.start_gateway(connectors=2)
    again = await rig.wait("charging", lambda p: p.ts > charging.ts, connector=1)
    assert (again.command_limit_a, again.current_limit_a) == (10.0, 10.0)
    assert (await rig.wait("charging", lambda p: p.ts > charging.ts,
                           connector=2)).command_limit_a is None

    # In force again: the session after the restart charges at the kept limit (the hardware
    # gets a limit while a transaction runs), and a new command replaces the kept one.
    rig.pilot("C")
    rig.meter(100.0)
    rig.command(1, command="start", id_tag="TAG", request_id="s")
    await rig.csms.wait_for(rig.id, "StartTransaction")
    await rig.status("Charging")
    assert (await rig.wait("limit_set", lambda p: p.amps > 0, connector=1)).amps == 10.0
    rig.command(1, command="set_current_limit", amps=7, request_id="l2")
    await rig.wait("result", lambda p: p.request_id == "l2")
    await rig.stop_gateway()
    _forget(rig)
    await rig.start_gateway(connectors=2)
    kept = await rig.wait("charging", connector=1)
    assert kept.command_limit_a == 7.0


async def test_firmware_and_last_heartbeat_on_the_connection(rig: Rig) -> None:
    rig.csms.behaviour.heartbeat_interval_s = 10  # 0.1 s here
    await rig.start_gateway(firmware_version="9.8.7")
    registered = await rig.wait("connection", lambda p: p.registration is not None)
    assert registered.firmware_version == "9.8.7"
    await rig.csms.wait_for(rig.id, "Heartbeat")
    beat = await rig.wait("connection", lambda p: p.last_heartbeat is not None)
    assert (beat.connected, beat.firmware_version) == (True, "9.8.7")
    assert beat.since == registered.since  # a heartbeat is no link change
    assert beat.last_heartbeat >= registered.since
    later = await rig.wait("connection", lambda p: p.last_heartbeat is not None
                           and p.last_heartbeat > beat.last_heartbeat)
    assert later.since == registered.since
    assert len(rig.csms.actions(rig.id)) >= 2  # answered by the dev CSMS over WebSocket


async def test_transaction_ref_carries_the_201_uuid(rig: Rig) -> None:
    csms = rig.csms
    rig.meter(1000.0)
    rig.pilot("B")
    await rig.start_gateway(ocpp_version="2.0.1")
    await rig.status("Preparing")
    rig.tap("04A1B2C3")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    tx_id = started["transactionInfo"]["transactionId"]
    tx = await rig.wait("transaction", lambda p: p is not None and p.transaction_ref is not None)
    assert (tx.transaction_ref, tx.transaction_id) == (tx_id, None)  # not an integer
    rig.pilot("A")
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Ended")
    session = await rig.wait("session")
    assert (session.transaction_ref, session.transaction_id) == (tx_id, None)


async def test_transaction_ref_in_16_is_the_integer_as_text(rig: Rig) -> None:
    rig.meter(100.0)
    rig.pilot("C")
    await rig.start_gateway()
    rig.command(1, command="start", id_tag="TAG", request_id="s")
    start = await rig.csms.wait_for(rig.id, "StartTransaction")
    assert start["idTag"] == "TAG"
    tx = await rig.wait("transaction", lambda p: p is not None and p.transaction_id is not None)
    assert tx.transaction_ref == str(tx.transaction_id)
    rig.command(1, command="stop", request_id="x")
    session = await rig.wait("session")
    assert session.transaction_ref == str(session.transaction_id)
    assert session.transaction_id == tx.transaction_id
