"""Smart charging defects of issue 10 §2, against the real gateway and the dev central system
over a real WebSocket (the test plays the hardware on the bus): TxProfile given in
RemoteStartTransaction, the ChargePointMaxProfile share, schedule checks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.v16 import call

from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.conftest import Rig
from voltbus_common import channels as ch
from voltbus_common.bus import Received


def iso(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat().replace("+00:00", "Z")


def profile(pid: int, purpose: str, periods: list[tuple[int, float]], *, level: int = 0,
            kind: str = "Absolute", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "chargingProfileId": pid, "stackLevel": level, "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
            {"startPeriod": s, "limit": lim} for s, lim in periods]}}
    if kind == "Absolute":
        body["chargingSchedule"]["startSchedule"] = iso(-1)
    body.update(extra)
    return body


async def online(rig: Rig, **settings: Any) -> None:
    await rig.start_gateway(**settings)
    await rig.csms.wait_for(rig.id, "StatusNotification", where=lambda p: p["connectorId"] == 1)


def limits_after(rig: Rig, connector: int, since: int) -> list[float]:
    return [m.payload.amps for m in rig.seen["limit_set"][since:] if m.connector == connector]


async def test_tx_profile_of_remote_start_stays_after_the_start_is_answered(rig: Rig) -> None:
    csms = rig.csms
    rig.pilot("C")
    await online(rig)
    assert await csms.send(rig.id, call.SetChargingProfile(
        connector_id=1, cs_charging_profiles=profile(1, "TxDefaultProfile", [(0, 16)]))) == {
        "status": "Accepted"}
    tx = profile(5, "TxProfile", [(0, 8)], kind="Relative")
    answer = await csms.send(rig.id, call.RemoteStartTransaction(id_tag="R", connector_id=1,
                                                                 charging_profile=tx))
    assert answer == {"status": "Accepted"}
    await csms.wait_for(rig.id, "StartTransaction")
    await rig.wait("transaction", lambda p: p is not None and p.transaction_id is not None)
    mark = len(rig.seen["limit_set"])
    await asyncio.sleep(0.6)  # many ticks after StartTransaction.conf
    assert limits_after(rig, 1, mark) == []  # the limit did not go back to the TxDefault's 16
    assert rig.seen["limit_set"][-1].payload.amps == 8.0
    result = await csms.send(rig.id, call.GetCompositeSchedule(connector_id=1, duration=60))
    assert result["status"] == "Accepted"
    assert [p["limit"] for p in result["chargingSchedule"]["chargingSchedulePeriod"]] == [8.0]
    assert csms.violations(rig.id) == []


async def test_held_tx_profile_of_remote_start_applies_when_the_ev_plugs_in(rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    tx = profile(6, "TxProfile", [(0, 9)], kind="Relative")
    assert await csms.send(rig.id, call.RemoteStartTransaction(
        id_tag="R", connector_id=1, charging_profile=tx)) == {"status": "Accepted"}
    rig.pilot("C")
    await csms.wait_for(rig.id, "StartTransaction")
    await rig.wait("transaction", lambda p: p is not None and p.transaction_id is not None)
    await asyncio.sleep(0.6)
    amps = [m.payload.amps for m in rig.seen["limit_set"]]
    # 16 A at start-up, before any session (the hardware is kept at the limit in force); from
    # the start on 9 A: never above, never back
    assert amps[0] == 16.0
    assert set(amps[1:]) == {9.0}
    result = await csms.send(rig.id, call.GetCompositeSchedule(connector_id=1, duration=60))
    assert [p["limit"] for p in result["chargingSchedule"]["chargingSchedulePeriod"]] == [9.0]
    rig.pilot("A")  # the transaction ends: its TxProfile with it
    await csms.wait_for(rig.id, "StopTransaction")
    await asyncio.sleep(0.1)
    assert rig.gateway is not None
    assert [p.purpose for p in rig.gateway.smart.profiles] == []
    assert csms.violations(rig.id) == []


class CommandLog:
    """What the gateway commanded the hardware (limits and relays), in the order it arrived."""

    def __init__(self, rig: Rig) -> None:
        self.seen: list[tuple[int, str, float]] = []
        rig.op.on(ch.CURRENT_LIMIT_SET, self._limit)
        rig.op.on(ch.RELAY_SET, self._relay)

    async def _limit(self, msg: Received[Any]) -> None:
        self.seen.append((int(msg.args["connector"]), "limit", float(msg.payload.amps)))

    async def _relay(self, msg: Received[Any]) -> None:
        self.seen.append((int(msg.args["connector"]), "relay", float(msg.payload.closed)))

    def over(self, station_limit_a: float) -> list[tuple[int, float]]:
        """Every moment the connectors with a closed relay were allowed more than the station
        limit together: (index into seen, total)."""
        limits: dict[int, float] = {}
        closed: dict[int, bool] = {}
        over: list[tuple[int, float]] = []
        for i, (connector, kind, value) in enumerate(self.seen):
            if kind == "limit":
                limits[connector] = value
            else:
                closed[connector] = bool(value)
            total = sum(limits.get(c, 0.0) for c, on in closed.items() if on)
            if total > station_limit_a + 1e-9:
                over.append((i, total))
        return over


@pytest.fixture
async def rig2(mosquitto: Broker, csms: Csms, station: str,
               tmp_path: Any) -> Any:
    """A rig whose hardware commands are also logged in arrival order (rig2.log)."""
    csms.behaviour.heartbeat_interval_s = 3600
    r = Rig(mosquitto, csms, station, tmp_path / "data")
    r.log = CommandLog(r)  # type: ignore[attr-defined]
    await r.start_buses()
    yield r
    await r.close()


async def test_second_connector_starts_at_its_share_of_the_station_limit(rig2: Rig) -> None:
    rig, csms = rig2, rig2.csms
    log: CommandLog = rig.log  # type: ignore[attr-defined]
    await online(rig, connectors=2, max_current_a=32)
    assert await csms.send(rig.id, call.SetChargingProfile(
        connector_id=0, cs_charging_profiles=profile(1, "TxDefaultProfile", [(0, 14)]))) == {
        "status": "Accepted"}
    assert await csms.send(rig.id, call.SetChargingProfile(
        connector_id=0, cs_charging_profiles=profile(2, "ChargePointMaxProfile",
                                                     [(0, 20)]))) == {"status": "Accepted"}
    rig.pilot("C", connector=1)
    rig.tap("A")
    await csms.wait_for(rig.id, "StartTransaction")
    await rig.wait("limit_set", lambda p: p.amps == 14.0, connector=1)
    await asyncio.sleep(0.3)
    rig.pilot("C", connector=2)
    rig.tap("B")
    await csms.wait_for(rig.id, "StartTransaction", count=2)
    await rig.wait("limit_set", lambda p: p.amps == 10.0, connector=1)
    await rig.wait("limit_set", lambda p: p.amps == 10.0, connector=2)
    await asyncio.sleep(0.5)
    assert log.over(20.0) == [], log.seen
    two = [(k, v) for c, k, v in log.seen if c == 2]
    closed = two.index(("relay", 1.0))
    # at its share before its relay closed and after (before its session the idle connector
    # was kept at the limit in force then: 32 A at start-up, 14 A with the TxDefault)
    assert [v for k, v in two[:closed] if k == "limit"][-1] == 10.0
    assert {v for k, v in two[closed:] if k == "limit"} <= {10.0}
    station = await csms.send(rig.id, call.GetCompositeSchedule(connector_id=0, duration=60))
    assert station["status"] == "Accepted"
    assert [p["limit"] for p in station["chargingSchedule"]["chargingSchedulePeriod"]] == [20.0]
    for n in (1, 2):  # the share actually enforced, not the TxDefault's 14
        each = await csms.send(rig.id, call.GetCompositeSchedule(connector_id=n, duration=60))
        assert [p["limit"] for p in each["chargingSchedule"]["chargingSchedulePeriod"]] == [
            10.0]
    rig.tap("B")  # connector 2 stops: connector 1 gets the TxDefault back
    await csms.wait_for(rig.id, "StopTransaction")
    await rig.wait("limit_set", lambda p: p.amps == 14.0, connector=1, count=2)
    assert log.over(20.0) == []
    assert csms.violations(rig.id) == []


def without_start(body: dict[str, Any]) -> dict[str, Any]:
    body["chargingSchedule"].pop("startSchedule", None)
    return body


@pytest.mark.parametrize(("what", "body"), [
    ("first period not at 0", profile(11, "TxDefaultProfile", [(60, 16)])),
    ("unsorted periods", profile(12, "TxDefaultProfile", [(0, 16), (600, 8), (300, 10)])),
    ("two periods at once", profile(13, "TxDefaultProfile", [(0, 16), (0, 8)])),
    ("Absolute without startSchedule", without_start(profile(14, "TxDefaultProfile",
                                                             [(0, 16)]))),
    ("Recurring without startSchedule", profile(15, "TxDefaultProfile", [(0, 16)],
                                                kind="Recurring", recurrencyKind="Daily")),
])
async def test_bad_schedules_are_rejected(rig: Rig, what: str, body: dict[str, Any]) -> None:
    csms = rig.csms
    await online(rig)
    answer = await csms.send(rig.id, call.SetChargingProfile(connector_id=1,
                                                             cs_charging_profiles=body))
    assert answer == {"status": "Rejected"}, what
    assert rig.gateway is not None
    assert rig.gateway.smart.profiles == []
    assert (await csms.send(rig.id, call.GetCompositeSchedule(connector_id=1, duration=60)))[
        "status"] == "Rejected"
    tx = {**body, "chargingProfilePurpose": "TxProfile"}
    assert await csms.send(rig.id, call.RemoteStartTransaction(
        id_tag="R", connector_id=1, charging_profile=tx)) == {"status": "Rejected"}
    assert csms.violations(rig.id) == []


async def test_good_schedules_and_the_dev_csms_setmaxvalue_are_accepted(rig: Rig) -> None:
    csms = rig.csms
    await online(rig)
    recurring = profile(16, "TxDefaultProfile", [(0, 6), (3600, 16)], kind="Recurring",
                        recurrencyKind="Daily")
    recurring["chargingSchedule"]["startSchedule"] = iso(-10)
    assert await csms.send(rig.id, call.SetChargingProfile(
        connector_id=1, cs_charging_profiles=recurring)) == {"status": "Accepted"}
    response = await csms.post("/setmaxvalue", {"id": rig.id, "limit": 10, "unit": "A"})
    assert response.json() == {"status": "Accepted"}  # an Absolute profile with its start
    result = await csms.send(rig.id, call.GetCompositeSchedule(connector_id=1, duration=60))
    assert [p["limit"] for p in result["chargingSchedule"]["chargingSchedulePeriod"]] == [6.0]
    assert csms.violations(rig.id) == []
