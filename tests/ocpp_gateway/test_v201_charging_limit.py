"""OCPP 2.0.1 external charging limits (K11-K13) against the dev central system (schema validation
and its charging-limit rules on, a real WebSocket and broker): the energy manager's limit
published on the bus is a NotifyChargingLimit (EMS, with its schedule when
NotifyChargingLimitWithSchedules), a move below LimitChangeSignificance is not, a release is a
ClearedChargingLimit; GetChargingProfiles reports it as ChargingStationExternalConstraints and
GetCompositeSchedule takes it in; across a central-system outage each report arrives once; the
off-peak policy is a station-wide limit of source Other. A limit set or released that moves a
running transaction's charging rate by more than the significance is a TransactionEvent Updated
ChargingRateChanged in the transaction's seqNo order (K11.FR.04, K13.FR.03)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_offpeak_gateway import OffsetClock, start, today_at
from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.models import EnergyLimitCommand
from voltbus_devcsms import rules


@pytest.fixture
async def energy(mosquitto: Broker, station: str) -> AsyncIterator[Bus]:
    """The energy manager's side of the bus (its own MQTT user)."""
    bus = Bus(mosquitto.settings("energy", stations=[station]), station=station, service=None)
    task = asyncio.create_task(bus.run())
    await bus.wait_connected(5)
    yield bus
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def limit(bus: Bus, amps: float, connector: int = 1) -> None:
    bus.publish(ch.ENERGY_LIMIT, EnergyLimitCommand(amps=amps, reason="fuse share"),
                connector=connector)


async def set_variable(rig: Rig, variable: str, value: str) -> str:
    answer = await rig.csms.send_action(rig.id, "SetVariables", {"setVariableData": [{
        "component": {"name": "SmartChargingCtrlr"}, "variable": {"name": variable},
        "attributeValue": value}]})
    return str(answer["setVariableResult"][0]["attributeStatus"])


async def charging_at(rig: Rig, amps: float) -> None:
    await rig.wait("charging", lambda p: p is not None and p.current_limit_a == amps)


async def test_energy_limit_notified_moved_below_significance_and_cleared(
        rig: Rig, energy: Bus) -> None:
    """10 A from the energy manager: NotifyChargingLimit EMS on EVSE 1 with its schedule;
    10.5 A (5 %, below the 10 % significance): nothing; 6 A: notified again; the hardware
    maximum (16 A, nothing restricted): ClearedChargingLimit. The CSMS's rules hold."""
    csms = rig.csms
    await rig.online_201()
    assert await set_variable(rig, "NotifyChargingLimitWithSchedules", "true") == "Accepted"
    assert await set_variable(rig, "LimitChangeSignificance", "101") == "Rejected"
    limit(energy, 10.0)
    notify = await csms.wait_for(rig.id, "NotifyChargingLimit")
    assert notify["evseId"] == 1
    assert notify["chargingLimit"] == {"chargingLimitSource": "EMS", "isGridCritical": False}
    [schedule] = notify["chargingSchedule"]
    assert schedule["chargingRateUnit"] == "A"
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10.0}]
    await charging_at(rig, 10.0)

    answer = await csms.send_action(rig.id, "GetCompositeSchedule",
                                    {"duration": 300, "evseId": 1})
    assert [p["limit"] for p in answer["schedule"]["chargingSchedulePeriod"]] == [10.0]
    await csms.send_action(rig.id, "GetChargingProfiles", {
        "requestId": 7, "chargingProfile": {"chargingLimitSource": ["EMS"]}})
    report = await csms.wait_report(rig.id, 7, action="ReportChargingProfiles")
    assert report.pages[0]["chargingLimitSource"] == "EMS"
    [external] = report.items("chargingProfile")
    assert external["chargingProfilePurpose"] == "ChargingStationExternalConstraints"
    assert external["id"] < 0  # K11.FR.06's recommendation
    assert (await csms.send_action(rig.id, "GetChargingProfiles", {
        "requestId": 8, "chargingProfile": {"chargingLimitSource": ["CSO"]}}))["status"] \
        == "NoProfiles"

    limit(energy, 10.5)
    await charging_at(rig, 10.5)
    limit(energy, 6.0)
    await charging_at(rig, 6.0)
    again = await csms.wait_for(rig.id, "NotifyChargingLimit", count=2)
    assert again["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 6.0
    limit(energy, 16.0)
    cleared = await csms.wait_for(rig.id, "ClearedChargingLimit")
    assert cleared == {"chargingLimitSource": "EMS", "evseId": 1}
    await charging_at(rig, 16.0)
    assert [m.payload["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"]
            for m in csms.received(rig.id, "NotifyChargingLimit")] == [10.0, 6.0]
    limit(energy, 16.0)  # still released: nothing more
    await asyncio.sleep(0.3)
    assert len(csms.received(rig.id, "ClearedChargingLimit")) == 1
    assert csms.received(rig.id, "TransactionEvent") == []  # no transaction: no rate to report
    assert csms.violations(rig.id) == []


def is_rate(event: dict[str, Any]) -> bool:
    return bool(event["triggerReason"] == "ChargingRateChanged")


def rate_changes(rig: Rig) -> list[dict[str, Any]]:
    return [m.payload for m in rig.csms.received(rig.id, "TransactionEvent")
            if is_rate(m.payload)]


async def test_external_limit_changing_a_transactions_rate_is_a_transaction_event(
        rig: Rig, energy: Bus) -> None:
    """During a transaction at 16 A: the energy manager's 10 A is NotifyChargingLimit, then
    TransactionEvent Updated ChargingRateChanged (next seqNo); 10.5 A (5 %): neither; the
    release (16 A) is ClearedChargingLimit, then another. A TxDefaultProfile of 6 A (the
    central system's own) is no such event; an 8 A limit and its release that leave the rate
    at 6 A are notified and cleared, but the rate did not change: no event. seqNo has no gaps."""
    csms = rig.csms
    await rig.online_201(pilot="B", energy_wh=1000.0)
    await rig.status("Preparing")
    rig.tap("04A1B2C3")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    tx_id = started["transactionInfo"]["transactionId"]
    await rig.wait("transaction", lambda p: p is not None and p.transaction_ref == tx_id)
    await charging_at(rig, 16.0)

    limit(energy, 10.0)
    first = await csms.wait_for(rig.id, "TransactionEvent", where=is_rate)
    assert first["eventType"] == "Updated"
    # the state it charges in (pilot B, the relay never confirmed: the EVSE offers, the EV
    # takes nothing)
    assert first["transactionInfo"] == {"transactionId": tx_id, "chargingState": "SuspendedEV"}
    before = [m.payload for m in csms.received(rig.id, "TransactionEvent")][:-1]
    assert first["seqNo"] == before[-1]["seqNo"] + 1
    actions = [a for a in csms.actions(rig.id) if a in (
        "NotifyChargingLimit", "ClearedChargingLimit", "TransactionEvent")]
    assert actions[-2:] == ["NotifyChargingLimit", "TransactionEvent"]  # K11's order
    await charging_at(rig, 10.0)
    limit(energy, 10.5)
    await charging_at(rig, 10.5)
    limit(energy, 16.0)
    await csms.wait_for(rig.id, "ClearedChargingLimit")
    second = await csms.wait_for(rig.id, "TransactionEvent", where=is_rate, count=2)
    assert second["eventType"] == "Updated"
    assert second["seqNo"] == first["seqNo"] + 1
    await charging_at(rig, 16.0)

    assert await set_variable(rig, "LimitChangeSignificance", "10") == "Accepted"
    answer = await csms.send_action(rig.id, "SetChargingProfile", {"evseId": 1, "chargingProfile": {
        "id": 3, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": [{
            "id": 30, "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0}]}]}})
    assert answer["status"] == "Accepted"
    await charging_at(rig, 6.0)
    limit(energy, 8.0)
    await csms.wait_for(rig.id, "NotifyChargingLimit", count=2)
    limit(energy, 16.0)
    await csms.wait_for(rig.id, "ClearedChargingLimit", count=2)
    await asyncio.sleep(0.3)
    assert len(rate_changes(rig)) == 2  # neither the profile nor a limit above the rate

    rig.pilot("A")
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Ended")
    events = [m.payload for m in csms.received(rig.id, "TransactionEvent")]
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert csms.violations(rig.id) == []


async def test_limit_reports_cross_an_outage_once(rig: Rig, energy: Bus) -> None:
    """Set and released while the central system is down: both come out of the outbox once
    it is back, in order; a gateway restart after that sends neither again."""
    csms = rig.csms
    await rig.online_201()
    await csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    limit(energy, 8.0)
    await charging_at(rig, 8.0)
    limit(energy, 16.0)
    await charging_at(rig, 16.0)
    await csms.start()
    await csms.wait_for(rig.id, "ClearedChargingLimit", timeout=10)
    notify = csms.received(rig.id, "NotifyChargingLimit")
    assert len(notify) == 1
    assert "chargingSchedule" not in notify[0].payload  # NotifyChargingLimitWithSchedules false
    actions = [a for a in csms.actions(rig.id) if a.endswith("ChargingLimit")]
    assert actions == ["NotifyChargingLimit", "ClearedChargingLimit"]

    assert rig.gateway is not None
    queue = rig.gateway.queue
    for _ in range(100):  # the answer processed: the record left the outbox (else it is sent
        if not len(queue):  # again after the restart, as any message whose answer was lost)
            break
        await asyncio.sleep(0.05)
    assert not len(queue)
    await rig.stop_gateway()
    await rig.start_gateway(ocpp_version="2.0.1")
    await csms.wait_for(rig.id, "BootNotification", count=2)
    limit(energy, 16.0)
    await asyncio.sleep(0.5)
    assert [a for a in csms.actions(rig.id) if a.endswith("ChargingLimit")] == actions
    assert csms.violations(rig.id) == []


async def test_a_rate_change_during_an_outage_arrives_in_order(rig: Rig, energy: Bus) -> None:
    """A limit set while the central system is away moves the rate of the running transaction:
    once it is back, NotifyChargingLimit, then TransactionEvent Updated ChargingRateChanged
    (offline, the next seqNo), each once."""
    csms = rig.csms
    await rig.online_201(pilot="B", energy_wh=1000.0)
    await rig.status("Preparing")
    rig.tap("04A1B2C3")
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Started")
    await charging_at(rig, 16.0)
    await csms.stop()
    await rig.wait("connection", lambda p: p.connected is False)
    limit(energy, 8.0)
    await charging_at(rig, 8.0)
    await csms.start()
    rate = await csms.wait_for(rig.id, "TransactionEvent", where=is_rate, timeout=10)
    assert rate["eventType"] == "Updated"
    assert rate["offline"] is True
    actions = [a for a in csms.actions(rig.id) if a in ("NotifyChargingLimit", "TransactionEvent")]
    assert actions[-2:] == ["NotifyChargingLimit", "TransactionEvent"]
    await asyncio.sleep(0.3)
    assert len(rate_changes(rig)) == 1
    events = [m.payload for m in csms.received(rig.id, "TransactionEvent")]
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert csms.violations(rig.id) == []


def test_devcsms_charging_limit_rules() -> None:
    """CSO is not an external source, evseId 0 is not an EVSE; a profiles report of an
    external source holds ChargingStationExternalConstraints only."""
    assert rules.notify_limit_problem({"chargingLimit": {"chargingLimitSource": "CSO"}}) == (
        rules.LIMIT_SOURCE, "NotifyChargingLimit with chargingLimitSource CSO")
    assert rules.notify_limit_problem({"chargingLimit": {"chargingLimitSource": "EMS"},
                                       "evseId": 0})[0] == rules.LIMIT_EVSE  # type: ignore[index]
    assert rules.notify_limit_problem({"chargingLimit": {"chargingLimitSource": "SO"}}) is None
    request = {"requestId": 1, "chargingProfile": {"chargingLimitSource": ["EMS"]}}
    tx_default = {"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile"}
    assert rules.profiles_report_problem(request, 1, [tx_default], "EMS")[0] == (  # type: ignore[index]
        rules.LIMIT_SOURCE)
    assert rules.profiles_report_problem(request, 1, [tx_default], "CSO")[0] == (  # type: ignore[index]
        rules.REPORT_CRITERIA)


async def test_off_peak_policy_is_a_station_wide_limit(rig: Rig) -> None:
    """Off-peak on and the window closed: NotifyChargingLimit Other without evseId (the whole
    station, 0 A); the window opens by itself: ClearedChargingLimit Other, no evseId."""
    clock = OffsetClock()
    opens = today_at(12)
    clock.set(opens - timedelta(seconds=2))
    await start(rig, clock, offpeak_enabled=True, ocpp_version="2.0.1")
    notify = await rig.csms.wait_for(rig.id, "NotifyChargingLimit")
    assert notify == {"chargingLimit": {"chargingLimitSource": "Other", "isGridCritical": False}}
    answer = await rig.csms.send_action(rig.id, "GetCompositeSchedule",
                                        {"duration": 60, "evseId": 1})
    assert [p["limit"] for p in answer["schedule"]["chargingSchedulePeriod"]] == [0.0]
    cleared = await rig.csms.wait_for(rig.id, "ClearedChargingLimit", timeout=10)
    assert cleared == {"chargingLimitSource": "Other"}
    assert rig.csms.violations(rig.id) == []


async def test_a_lost_energy_manager_is_reported_as_the_fail_safe_limit(
        rig: Rig, mosquitto: Broker) -> None:
    """The energy manager of site S (its own status online) limits EVSE 1 to 10 A during a
    transaction: NotifyChargingLimit EMS 10 A. It stops (its status offline): the gateway's
    6 A fail-safe (a 60 s timeout: the status did it) is NotifyChargingLimit Other 6 A and
    ClearedChargingLimit EMS, then ChargingRateChanged; ocpp/1/charging says why. Back with
    10 A: ClearedChargingLimit Other, NotifyChargingLimit EMS 10 A, ChargingRateChanged. The
    central system's rules hold and seqNo has no gaps."""
    csms = rig.csms
    site = f"S{rig.id}"
    rig.meter(1000.0)
    rig.pilot("B")
    await rig.start_gateway(ocpp_version="2.0.1", energy_limit_timeout_s=60.0)
    await rig.status("Preparing")
    rig.tap("04A1B2C3")
    await csms.wait_for(rig.id, "TransactionEvent", where=lambda p: p["eventType"] == "Started")
    await charging_at(rig, 16.0)

    def manager() -> Bus:
        return Bus(mosquitto.settings("energy", stations=[site]), station=site,
                   service="energy")

    def send(bus: Bus, amps: float) -> None:
        bus.publish(ch.ENERGY_LIMIT, EnergyLimitCommand(amps=amps, reason="fuse share",
                                                        site=site), station=rig.id, connector=1)

    def limits() -> list[tuple[str, str, float | None]]:
        out = []
        for m in csms.received(rig.id):
            if m.action == "NotifyChargingLimit":
                period = m.payload["chargingSchedule"][0]["chargingSchedulePeriod"][0] \
                    if "chargingSchedule" in m.payload else {"limit": None}
                out.append(("Notify", m.payload["chargingLimit"]["chargingLimitSource"],
                            period["limit"]))
            elif m.action == "ClearedChargingLimit":
                out.append(("Cleared", m.payload["chargingLimitSource"], None))
        return out

    assert await set_variable(rig, "NotifyChargingLimitWithSchedules", "true") == "Accepted"
    async with manager() as energy:
        await energy.wait_connected(5)
        send(energy, 10.0)
        await charging_at(rig, 10.0)
        await csms.wait_for(rig.id, "TransactionEvent", where=is_rate)
    # the manager's bus stopped cleanly: its status is offline
    lost = await rig.wait("charging", lambda p: p is not None and p.energy_fail_safe)
    assert (lost.current_limit_a, lost.energy_limit_a, lost.energy_fail_safe_reason,
            lost.limit_source.value) == (6.0, 6.0, "energy manager offline", "energy_fail_safe")
    await csms.wait_for(rig.id, "TransactionEvent", where=is_rate, count=2)
    assert limits() == [("Notify", "EMS", 10.0), ("Notify", "Other", 6.0),
                        ("Cleared", "EMS", None)]

    async with manager() as energy:
        await energy.wait_connected(5)
        send(energy, 10.0)
        back = await rig.wait("charging", lambda p: p is not None and p.ts > lost.ts
                              and p.current_limit_a == 10.0)
        assert (back.energy_fail_safe, back.limit_source.value) == (False, "energy_manager")
        await csms.wait_for(rig.id, "TransactionEvent", where=is_rate, count=3)
        assert limits()[3:] == [("Cleared", "Other", None), ("Notify", "EMS", 10.0)]
    events = [m.payload for m in csms.received(rig.id, "TransactionEvent")]
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert csms.violations(rig.id) == []
