"""Requests from the central system (through the dev CSMS's HTTP API and directly), boot states."""

from __future__ import annotations

import asyncio

import httpx
from ocpp.v16 import call
from ocpp.v16.enums import RegistrationStatus

from tests.ocpp_gateway.conftest import Rig


async def test_http_remote_start_waits_for_plug_then_setmaxvalue_limits_current(rig: Rig) -> None:
    csms = rig.csms
    rig.pilot("A")
    rig.meter(500.0)
    await rig.start_gateway()
    await csms.wait_connected(rig.id)
    await csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["connectorId"] == 1)
    response = await csms.post("/remotestart", {"id": rig.id, "connector": 1})
    assert response.json() == {"status": "Accepted"}
    await rig.status("Preparing")
    rig.pilot("B")
    start = await csms.wait_for(rig.id, "StartTransaction")
    assert start["idTag"] == "DEVCSMS"
    assert (await rig.wait("relay_set")).closed is True

    response = await csms.post("/setmaxvalue", {"id": rig.id, "limit": 10, "unit": "A"})
    assert response.json() == {"status": "Accepted"}
    assert (await rig.wait("limit_set", lambda p: p.amps == 10.0)).amps == 10.0
    charging = await rig.wait("charging", lambda p: p.current_limit_a == 10.0)
    assert charging.enabled is True
    # 4140 W on 3 phases at 230 V is 6 A; the lower profile (stack level 1) does not matter:
    # ChargePointMaxProfile with the highest stack level wins.
    response = await csms.post("/setmaxvalue", {"id": rig.id, "limit": 4140, "unit": "W",
                                                "stack_level": 1, "profile_id": 2})
    assert response.json() == {"status": "Accepted"}
    assert (await rig.wait("limit_set", lambda p: p.amps == 6.0)).amps == 6.0
    response = await csms.post("/setmaxvalue", {"id": rig.id, "limit": 8, "connector": 1})
    assert response.json() == {"status": "Rejected"}  # ChargePointMaxProfile only on 0
    cleared = await csms.send(rig.id, call.ClearChargingProfile(id=2))
    assert cleared == {"status": "Accepted"}
    assert (await rig.wait("limit_set", lambda p: p.amps == 10.0, count=2)).amps == 10.0


async def test_http_remote_start_times_out_without_plug(rig: Rig) -> None:
    await rig.start_gateway(ocpp_config={"ConnectionTimeOut": "20"})  # 0.2 s here
    await rig.csms.wait_connected(rig.id)
    await rig.status("Available")
    response = await rig.csms.post("/remotestart", {"id": rig.id})
    assert response.json() == {"status": "Accepted"}
    await rig.status("Preparing")
    await rig.status("Available", count=2)
    assert rig.csms.received(rig.id, "StartTransaction") == []


async def test_http_change_config_and_get_configuration(rig: Rig) -> None:
    csms = rig.csms
    await rig.start_gateway()
    await csms.wait_connected(rig.id)
    await csms.wait_for(rig.id, "StatusNotification")
    post = csms.post
    assert (await post("/changeconfig", {"id": rig.id, "key": "MeterValueSampleInterval",
                                         "value": "30"})).json() == {rig.id: {
                                             "status": "Accepted"}}
    assert (await post("/changeconfig", {"id": rig.id, "key": "MeterValueSampleInterval",
                                         "value": "soon"})).json()[rig.id] == {
                                             "status": "Rejected"}
    assert (await post("/changeconfig", {"id": rig.id, "key": "NumberOfConnectors",
                                         "value": "4"})).json()[rig.id] == {"status": "Rejected"}
    assert (await post("/changeconfig", {"id": rig.id, "key": "NoSuchKey",
                                         "value": "1"})).json()[rig.id] == {
                                             "status": "NotSupported"}
    assert (await post("/changeconfig", {"key": "WebSocketPingInterval", "value": "0"})).json()[
        rig.id] == {"status": "RebootRequired"}
    got = await csms.send(rig.id, call.GetConfiguration(key=["MeterValueSampleInterval",
                                                              "NumberOfConnectors", "Bogus"]))
    assert got == {"configurationKey": [
        {"key": "MeterValueSampleInterval", "readonly": False, "value": "30"},
        {"key": "NumberOfConnectors", "readonly": True, "value": "1"}], "unknownKey": ["Bogus"]}
    everything = await csms.send(rig.id, call.GetConfiguration())
    names = {k["key"] for k in everything["configurationKey"]}
    assert {"HeartbeatInterval", "LocalAuthListEnabled", "ChargeProfileMaxStackLevel",
            "ReserveConnectorZeroSupported", "AuthorizationKey"} <= names
    assert "value" not in next(k for k in everything["configurationKey"]
                               if k["key"] == "AuthorizationKey")  # write-only
    chargers = (await rig.csms.post("/changeconfig", {"id": "nobody", "key": "A", "value": "1"}))
    assert chargers.status_code == 404


async def test_http_disconnect_makes_the_gateway_reconnect(rig: Rig) -> None:
    csms = rig.csms
    await rig.start_gateway()
    await csms.wait_for(rig.id, "StatusNotification")
    assert (await csms.post("/disconnect", {"id": rig.id})).json() == {"disconnected": rig.id}
    await csms.wait_for(rig.id, "BootNotification", count=2)
    async with httpx.AsyncClient(base_url=csms.http_url) as client:
        chargers = (await client.get("/chargers")).json()
        messages = (await client.get(f"/chargers/{rig.id}/messages",
                                     params={"action": "BootNotification"})).json()
    mine = next(c for c in chargers if c["id"] == rig.id)
    assert mine["connections"] == 2
    assert len(messages) == 2


async def test_boot_pending_then_accepted(rig: Rig) -> None:
    csms = rig.csms
    csms.behaviour.boot_status = RegistrationStatus.pending
    csms.behaviour.heartbeat_interval_s = 10  # retry after 10 "s" = 0.1 s here
    await rig.start_gateway()
    await csms.wait_for(rig.id, "BootNotification", count=3)
    pending = await rig.wait("connection", lambda p: p.registration is not None)
    assert pending.registration.value == "Pending"
    assert set(csms.actions(rig.id)) == {"BootNotification"}  # nothing else while Pending
    csms.behaviour.boot_status = RegistrationStatus.accepted
    csms.behaviour.heartbeat_interval_s = 3600
    await csms.wait_for(rig.id, "StatusNotification")
    accepted = await rig.wait("connection", lambda p: p.registration
                              and p.registration.value == "Accepted")
    assert accepted.connected is True


async def test_boot_rejected_sends_nothing_else_and_retries(rig: Rig) -> None:
    csms = rig.csms
    csms.behaviour.boot_status = RegistrationStatus.rejected
    csms.behaviour.heartbeat_interval_s = 10
    rig.pilot("B")
    await rig.start_gateway()
    await csms.wait_for(rig.id, "BootNotification", count=2)
    rig.tap("TAG")
    await asyncio.sleep(0.15)
    assert set(csms.actions(rig.id)) == {"BootNotification"}


async def test_heartbeat_at_the_interval(rig: Rig) -> None:
    rig.csms.behaviour.heartbeat_interval_s = 10  # 0.1 s here
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "Heartbeat", count=3)
    assert rig.gateway is not None
    assert rig.gateway.config.get_int("HeartbeatInterval") == 10
