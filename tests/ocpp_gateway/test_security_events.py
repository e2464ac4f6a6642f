"""SecurityEventNotification (1.6 security whitepaper, issue 10 §4): the events are queued in the
durable outbox, so one raised while the central system is away (even across a gateway restart)
arrives once it is back, with the time it happened; against the dev central system over a real
WebSocket, which checks each type against the whitepaper's list."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ocpp.v16 import call

from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig
from voltbus_common.bus import Bus
from voltbus_ocpp.station import Station


async def start_with_clock(rig: Rig, offset: list[timedelta], **extra: object) -> Station:
    """The rig's gateway on a clock the test can move (datetime.now + offset[0])."""
    settings = rig.settings(**extra)
    rig.gateway = Station(settings, rig.id, Bus(settings, station=rig.id, service="gateway"),
                          clock=lambda: datetime.now(UTC) + offset[0])
    rig._gw_task = asyncio.create_task(rig.gateway.run())
    await rig.gateway.bus.wait_connected(5)
    return rig.gateway


def events(rig: Rig, kind: str) -> list[dict[str, object]]:
    return [m.payload for m in rig.csms.received(rig.id, "SecurityEventNotification")
            if m.payload["type"] == kind]


async def test_setting_the_clock_offline_is_reported_after_a_restart(rig: Rig) -> None:
    offset = [timedelta(0)]
    rig.csms.behaviour.clock = lambda: datetime.now(UTC) + offset[0]
    await start_with_clock(rig, offset)
    startup = await rig.csms.wait_for(rig.id, "SecurityEventNotification")
    assert startup["type"] == "StartupOfTheDevice"
    await rig.csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    offset[0] = timedelta(hours=1)  # someone sets the clock an hour ahead while offline
    await asyncio.sleep(1.5)  # the watch looks every second
    queued = [q for q in rig.gateway.queue.all() if q.kind == "security_event"]
    assert [q.payload["type"] for q in queued] == ["SettingSystemTime"]
    await rig.stop_gateway()  # and the gateway restarts before the central system is back
    await start_with_clock(rig, offset)
    await rig.csms.start()
    moved = await rig.csms.wait_for(
        rig.id, "SecurityEventNotification", where=lambda p: p["type"] == "SettingSystemTime")
    assert "+3600 s" in moved["techInfo"]
    at = datetime.fromisoformat(str(moved["timestamp"]).replace("Z", "+00:00"))
    assert at < datetime.now(UTC) + offset[0] - timedelta(seconds=0.5)  # when it happened
    await rig.csms.wait_for(rig.id, "SecurityEventNotification", count=3)  # and the new start
    assert len(events(rig, "StartupOfTheDevice")) == 2
    assert len(events(rig, "SettingSystemTime")) == 1
    assert rig.csms.violations(rig.id) == []


async def test_reset_is_reported(rig: Rig) -> None:
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "SecurityEventNotification")
    assert await rig.csms.send(rig.id, call.Reset(type="Soft")) == {"status": "Accepted"}
    reset = await rig.csms.wait_for(rig.id, "SecurityEventNotification",
                                    where=lambda p: p["type"] == "ResetOrReboot")
    assert reset["techInfo"].startswith("Soft Reset")
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)
    actions = rig.csms.actions(rig.id)
    # sent before the station went down for the reset
    assert actions.index("SecurityEventNotification", 1) < len(actions) - 1 - actions[
        ::-1].index("BootNotification")


async def test_refused_credentials_are_reported_once_when_back(
        mosquitto: Broker, station: str, tmp_path: Path) -> None:
    csms = Csms(auth_keys={station: "the-right-key-0123456"})
    csms.behaviour.heartbeat_interval_s = 3600
    await csms.start()
    rig = Rig(mosquitto, csms, station, tmp_path / "data")
    await rig.start_buses()
    try:
        await rig.start_gateway(csms_auth_key="a-wrong-key-000000000")
        await rig.wait("connection", lambda p: p.connected is False)
        await asyncio.sleep(1.0)  # several attempts (backoff up to 0.3 s), each refused: 401
        csms.central.auth_keys[station] = "a-wrong-key-000000000"  # the operator fixes it
        failed = await csms.wait_for(
            station, "SecurityEventNotification",
            where=lambda p: p["type"] == "FailedToAuthenticateAtCentralSystem")
        assert failed["techInfo"] == "HTTP 401"
        await asyncio.sleep(0.3)
        assert len(events(rig, "FailedToAuthenticateAtCentralSystem")) == 1
    finally:
        await rig.close()
        await csms.stop()


def test_an_event_without_tech_info_makes_a_valid_call() -> None:
    """techInfo is optional: an event without it is still a SecurityEventNotification the
    ocpp package can send (its 1.6 dataclass wants the argument)."""
    from ocpp.v16 import call as call16

    from voltbus_ocpp.protocol.v16.convert import record_call
    from voltbus_ocpp.records import SecurityEventRecord
    action, payload = record_call(SecurityEventRecord("TamperDetectionActivated",
                                                      datetime.now(UTC)), None)
    assert action == "SecurityEventNotification"
    request = call16.SecurityEventNotification(type=payload["type"],
                                               timestamp=payload["timestamp"],
                                               tech_info=payload["techInfo"])
    assert request.tech_info is None


async def test_events_reach_a_2_0_1_central_system_too(rig: Rig) -> None:
    """The events are version-neutral: OCPP 2.0.1 has the same SecurityEventNotification."""
    await rig.start_gateway(ocpp_version="2.0.1")
    event = await rig.csms.wait_for(rig.id, "SecurityEventNotification")
    assert event["type"] == "StartupOfTheDevice"
    assert rig.csms.central.version(rig.id) == "2.0.1"
    assert rig.csms.violations(rig.id) == []


async def test_a_central_system_without_the_extension_does_not_hold_up_the_outbox(
        rig: Rig) -> None:
    """NotImplemented for SecurityEventNotification: sent once, dropped from the outbox (kept
    in the security log), never retried in front of the transaction messages."""
    rig.csms.behaviour.not_implemented = {"SecurityEventNotification"}
    rig.meter(100.0)
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "SecurityEventNotification")
    rig.pilot("B")
    rig.tap("TAG")
    await rig.csms.wait_for(rig.id, "StartTransaction")
    assert len(rig.csms.received(rig.id, "SecurityEventNotification")) == 1
    assert rig.gateway is not None
    assert [q for q in rig.gateway.queue.all() if q.kind == "security_event"] == []
    assert "StartupOfTheDevice" in rig.gateway.security.events.log_text()
