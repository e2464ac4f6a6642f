"""Bus commands against a running session: start (authorised by the central system), limits,
enable/disable, availability, unlock; every one answered on command/result."""

from __future__ import annotations

import asyncio

from tests.ocpp_gateway.conftest import Rig


async def test_start_command_is_authorised_by_the_central_system(rig: Rig) -> None:
    rig.csms.behaviour.accepted_tags = {"GOOD"}
    rig.pilot("B")
    await rig.start_gateway()
    await rig.status("Preparing")
    await rig.csms.wait_for(rig.id, "StatusNotification")
    rig.command(1, command="start", id_tag="BAD", request_id="r1")
    refused = await rig.wait("result", lambda p: p.request_id == "r1")
    assert (refused.status.value, refused.reason) == ("Rejected", "id tag BAD: Invalid")
    rig.command(1, command="start", id_tag="GOOD", request_id="r2")
    accepted = await rig.wait("result", lambda p: p.request_id == "r2")
    assert accepted.status.value == "Accepted"
    start = await rig.csms.wait_for(rig.id, "StartTransaction")
    assert start["idTag"] == "GOOD"
    rig.command(1, command="start", id_tag="GOOD", request_id="r3")
    busy = await rig.wait("result", lambda p: p.request_id == "r3")
    assert busy.reason == "connector 1 already has a transaction"
    assert [a for a in rig.csms.actions(rig.id) if a == "Authorize"] == ["Authorize"] * 2


async def test_limit_disable_enable_and_stop(rig: Rig) -> None:
    rig.pilot("C")
    rig.meter(100.0)
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "StatusNotification")
    rig.command(1, command="start", id_tag="TAG", request_id="s")
    await rig.csms.wait_for(rig.id, "StartTransaction")
    await rig.status("Charging")
    rig.command(1, command="set_current_limit", amps=8, request_id="l")
    assert (await rig.wait("result", lambda p: p.request_id == "l")).status.value == "Accepted"
    assert (await rig.wait("limit_set", lambda p: p.amps == 8.0)).amps == 8.0
    rig.command(1, command="disable_charging", request_id="d")
    await rig.wait("result", lambda p: p.request_id == "d")
    assert (await rig.wait("limit_set", lambda p: p.amps == 0.0)).amps == 0.0
    await rig.status("SuspendedEVSE")
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["status"] == "SuspendedEVSE")
    charging = await rig.wait("charging", lambda p: p.enabled is False)
    assert charging.current_limit_a == 0.0
    rig.command(1, command="enable_charging", request_id="e")
    await rig.wait("result", lambda p: p.request_id == "e")
    assert (await rig.wait("limit_set", lambda p: p.amps == 8.0, count=2)).amps == 8.0
    await rig.status("Charging", count=2)
    rig.command(1, command="stop", request_id="x")
    assert (await rig.wait("result", lambda p: p.request_id == "x")).status.value == "Accepted"
    stop = await rig.csms.wait_for(rig.id, "StopTransaction")
    assert stop["reason"] == "Local"
    assert stop["meterStop"] == 100


async def test_change_availability_station_and_unlock(rig: Rig) -> None:
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "StatusNotification")
    rig.command(0, command="change_availability", operative=False, request_id="a")
    assert (await rig.wait("result", lambda p: p.request_id == "a")).status.value == "Accepted"
    await rig.status("Unavailable")
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["status"] == "Unavailable")
    rig.tap("TAG")
    rig.pilot("B")
    rig.command(1, command="start", id_tag="TAG", request_id="s")
    refused = await rig.wait("result", lambda p: p.request_id == "s")
    assert refused.reason == "connector 1 is unavailable"
    rig.command(1, command="change_availability", operative=True, request_id="b")
    await rig.wait("result", lambda p: p.request_id == "b")
    await asyncio.sleep(0.1)  # the station (connector 0) is still Inoperative (1.6 §5.2)
    assert rig.seen["status"][-1].payload.status.value == "Unavailable"
    rig.command(0, command="change_availability", operative=True, request_id="c")
    await rig.wait("result", lambda p: p.request_id == "c")
    await rig.status("Preparing")
    rig.command(1, command="unlock", request_id="u")
    unlock = await rig.wait("result", lambda p: p.request_id == "u")
    assert (unlock.status.value, unlock.reason) == ("NotSupported",
                                                    "this station has no connector lock")
    assert rig.csms.received(rig.id, "StartTransaction") == []


async def test_leds_follow_the_status(rig: Rig) -> None:
    await rig.start_gateway()
    await rig.status("Available")
    available = await rig.wait("led_set")
    assert (available.color, available.pattern.value) == ("green", "solid")
    rig.pilot("B")
    preparing = await rig.wait("led_set", lambda p: p.color == "blue")
    assert preparing.pattern.value == "blink"
