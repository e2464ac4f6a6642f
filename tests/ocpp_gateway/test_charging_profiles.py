"""Smart charging defects of issue 10 §2, against the real gateway and the dev central system
over a real WebSocket (the test plays the hardware on the bus): TxProfile given in
RemoteStartTransaction, the ChargePointMaxProfile share, schedule checks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v16 import call

from tests.ocpp_gateway.conftest import Rig


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
    assert [m.payload.amps for m in rig.seen["limit_set"]] == [9.0]  # never above, never back
    result = await csms.send(rig.id, call.GetCompositeSchedule(connector_id=1, duration=60))
    assert [p["limit"] for p in result["chargingSchedule"]["chargingSchedulePeriod"]] == [9.0]
    rig.pilot("A")  # the transaction ends: its TxProfile with it
    await csms.wait_for(rig.id, "StopTransaction")
    await asyncio.sleep(0.1)
    assert rig.gateway is not None
    assert [p.purpose for p in rig.gateway.smart.profiles] == []
    assert csms.violations(rig.id) == []
