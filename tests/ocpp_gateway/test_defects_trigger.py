"""Issue 10 §2, TriggerMessage against the dev central system (schema validation on): connector 0
says what the station is (§5.17), maintenance notifications say Idle when nothing is in progress
(§4.4, §4.5), and a triggered BootNotification is a whole one whose answer is applied."""

from __future__ import annotations

import asyncio
import itertools
import socket

from ocpp.v16 import call
from ocpp.v16.enums import RegistrationStatus

from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_protocol_ops import online
from voltbus_common import channels as ch
from voltbus_common.enums import ChargePointErrorCode
from voltbus_common.models import HardwareError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def trigger(rig: Rig, message: str, connector: int | None = None) -> None:
    answer = await rig.csms.send(rig.id, call.TriggerMessage(requested_message=message,
                                                             connector_id=connector))
    assert answer == {"status": "Accepted"}


async def triggered_status(rig: Rig, connector: int) -> dict:
    before = len([m for m in rig.csms.received(rig.id, "StatusNotification")
                  if m.payload["connectorId"] == connector])
    await trigger(rig, "StatusNotification", connector)
    return await rig.csms.wait_for(rig.id, "StatusNotification", count=before + 1,
                                   where=lambda p: p["connectorId"] == connector)


async def test_trigger_status_of_connector_0_is_the_stations_status(rig: Rig) -> None:
    await online(rig)
    assert (await triggered_status(rig, 0))["status"] == "Available"
    assert await rig.csms.send(rig.id, call.ChangeAvailability(
        connector_id=0, type="Inoperative")) == {"status": "Accepted"}
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["connectorId"] == 1 and p["status"] == "Unavailable")
    assert (await triggered_status(rig, 0))["status"] == "Unavailable"
    assert await rig.csms.send(rig.id, call.ChangeAvailability(
        connector_id=0, type="Operative")) == {"status": "Accepted"}
    rig.hw.publish(ch.HW_ERROR, HardwareError(code=ChargePointErrorCode.GROUND_FAILURE,
                                              info="RCD"), connector=1)
    await rig.csms.wait_for(rig.id, "StatusNotification",
                            where=lambda p: p["connectorId"] == 1 and p["status"] == "Faulted")
    faulted = await triggered_status(rig, 0)
    assert (faulted["status"], faulted["errorCode"]) == ("Faulted", "GroundFailure")
    assert rig.csms.violations(rig.id) == []


async def test_trigger_status_without_connector_includes_connector_0(rig: Rig) -> None:
    await online(rig)
    before = len(rig.csms.received(rig.id, "StatusNotification"))
    await trigger(rig, "StatusNotification")
    await rig.csms.wait_for(rig.id, "StatusNotification", count=before + 2)
    sent = [m.payload for m in rig.csms.received(rig.id, "StatusNotification")[before:]]
    assert [(p["connectorId"], p["status"]) for p in sent] == [(0, "Available"),
                                                               (1, "Available")]
    assert rig.csms.violations(rig.id) == []


async def test_trigger_maintenance_notifications_say_idle_after_a_job_ended(rig: Rig) -> None:
    await online(rig)
    await rig.csms.send(rig.id, call.GetDiagnostics(
        location=f"http://127.0.0.1:{free_port()}/nothing", retries=0))
    await rig.csms.wait_for(rig.id, "DiagnosticsStatusNotification",
                            where=lambda p: p["status"] == "UploadFailed")
    await rig.csms.send(rig.id, call.UpdateFirmware(
        location=f"http://127.0.0.1:{free_port()}/fw.bin", retrieve_date="2020-01-01T00:00:00Z",
        retries=0))
    await rig.csms.wait_for(rig.id, "FirmwareStatusNotification",
                            where=lambda p: p["status"] == "DownloadFailed")
    await trigger(rig, "DiagnosticsStatusNotification")
    assert await rig.csms.wait_for(rig.id, "DiagnosticsStatusNotification", count=3) == {
        "status": "Idle"}
    await trigger(rig, "FirmwareStatusNotification")
    assert await rig.csms.wait_for(rig.id, "FirmwareStatusNotification", count=3) == {
        "status": "Idle"}
    assert rig.csms.violations(rig.id) == []


async def test_triggered_boot_has_the_serial_and_its_interval_applies(rig: Rig) -> None:
    await online(rig)
    first = await rig.csms.wait_for(rig.id, "BootNotification")
    assert first["chargePointSerialNumber"] == rig.id[:25]
    rig.csms.behaviour.heartbeat_interval_s = 42
    await trigger(rig, "BootNotification")
    again = await rig.csms.wait_for(rig.id, "BootNotification", count=2)
    assert again == first
    for _ in range(100):  # the gateway reads the answer just after the central system sent it
        got = await rig.csms.send(rig.id, call.GetConfiguration(key=["HeartbeatInterval"]))
        if got["configurationKey"][0]["value"] != "3600":
            break
        await asyncio.sleep(0.02)
    assert got["configurationKey"][0]["value"] == "42"
    assert rig.csms.violations(rig.id) == []


async def test_triggered_boot_answered_pending_sends_only_boots_until_accepted(rig: Rig) -> None:
    """§4.2: a Pending answer's interval is the wait before the next BootNotification; until one
    is Accepted the station sends nothing else (a plug-in's status waits), and it still answers
    the central system's requests."""
    await online(rig)
    csms = rig.csms
    csms.behaviour.boot_status = RegistrationStatus.pending
    csms.behaviour.boot_interval_s = 10  # 0.1 s here
    await trigger(rig, "BootNotification")
    await csms.wait_for(rig.id, "BootNotification", count=3)
    rig.pilot("B")
    await rig.wait("status", lambda p: p.status.value == "Preparing")
    got = await csms.send(rig.id, call.GetConfiguration(key=["HeartbeatInterval"]))
    assert got["configurationKey"][0]["key"] == "HeartbeatInterval"
    await csms.wait_for(rig.id, "BootNotification", count=4)
    boots = csms.received(rig.id, "BootNotification")
    since = boots[1].at
    later = [m.action for m in csms.received(rig.id) if m.at > since]
    assert set(later) == {"BootNotification"}
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(boots[1:])]
    assert min(gaps) >= 0.1
    csms.behaviour.boot_status = RegistrationStatus.accepted
    await csms.wait_for(rig.id, "StatusNotification",
                        where=lambda p: p["connectorId"] == 1 and p["status"] == "Preparing")
    registered = await rig.wait("connection", lambda p: p.registration is not None
                                and p.registration.value == "Pending")
    assert registered.connected is True
    assert csms.violations(rig.id) == []


async def test_triggered_boot_answered_rejected_is_silent_for_the_interval(rig: Rig) -> None:
    """§4.2: after Rejected nothing is sent until the retry interval has expired, and no request
    of the central system is answered; the next BootNotification comes after the interval."""
    await online(rig)
    csms = rig.csms
    csms.behaviour.boot_status = RegistrationStatus.rejected
    csms.behaviour.boot_interval_s = 40  # 0.4 s here
    await trigger(rig, "BootNotification")
    rejected = await csms.wait_for(rig.id, "BootNotification", count=2)
    assert rejected["chargePointSerialNumber"] == rig.id[:25]
    rig.pilot("B")  # its StatusNotification waits for the acceptance
    try:
        await asyncio.wait_for(csms.send(rig.id, call.GetConfiguration(
            key=["HeartbeatInterval"])), 0.2)
        raise AssertionError("a Rejected station answered a request")
    except TimeoutError:
        pass
    csms.behaviour.boot_status = RegistrationStatus.accepted
    csms.behaviour.boot_interval_s = None
    await csms.wait_for(rig.id, "StatusNotification",
                        where=lambda p: p["connectorId"] == 1 and p["status"] == "Preparing")
    boots = csms.received(rig.id, "BootNotification")
    assert len(boots) == 3
    assert (boots[2].at - boots[1].at).total_seconds() >= 0.4
    between = [m.action for m in csms.received(rig.id) if boots[1].at < m.at < boots[2].at]
    assert between == []
    assert csms.violations(rig.id) == []
    got = await csms.send(rig.id, call.GetConfiguration(key=["HeartbeatInterval"]))
    assert got["configurationKey"][0]["value"] == "3600"
