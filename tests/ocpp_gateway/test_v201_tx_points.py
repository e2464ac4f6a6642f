"""2.0.1 TxCtrlr TxStartPoint/TxStopPoint (E01/E06) against the dev central system: the station
shows the points it honours (a transaction starts once authorised and plugged in, the relay
closing with it: PowerPathClosed; it stops on EVConnected or Authorized no longer true), takes
the lists it can honour and Rejects the others; TxStopPoint Authorized keeps a transaction
through unplugging until the card is presented again."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.ocpp_gateway.conftest import Rig


async def set_var(rig: Rig, variable: str, value: str) -> str:
    answer = await rig.csms.send_action(rig.id, "SetVariables", {"setVariableData": [
        {"component": {"name": "TxCtrlr"}, "variable": {"name": variable},
         "attributeValue": value}]})
    return str(answer["setVariableResult"][0]["attributeStatus"])


async def get_var(rig: Rig, variable: str) -> Any:
    answer = await rig.csms.send_action(rig.id, "GetVariables", {"getVariableData": [
        {"component": {"name": "TxCtrlr"}, "variable": {"name": variable}}]})
    return answer["getVariableResult"][0].get("attributeValue")


async def test_tx_start_and_stop_points(rig: Rig) -> None:
    csms = rig.csms
    await rig.online_201()
    assert await get_var(rig, "TxStartPoint") == "PowerPathClosed"
    assert await get_var(rig, "TxStopPoint") == "EVConnected,Authorized"
    for value in ("EVConnected", "Authorized", "EnergyTransfer", "PowerPathClosed,Authorized"):
        assert await set_var(rig, "TxStartPoint", value) == "Rejected", value
    assert await set_var(rig, "TxStartPoint", "PowerPathClosed") == "Accepted"
    for value in ("PowerPathClosed", "EVConnected", "ParkingBayOccupancy,Authorized"):
        assert await set_var(rig, "TxStopPoint", value) == "Rejected", value
    assert await set_var(rig, "TxStopPoint", "Authorized") == "Accepted"

    rig.pilot("B")
    await rig.status("Preparing")
    rig.tap("TAG")
    started = await csms.wait_for(rig.id, "TransactionEvent",
                                  where=lambda p: p["eventType"] == "Started")
    rig.pilot("A")  # unplugged: EVConnected is no stop point now
    await asyncio.sleep(0.5)
    events = [m.payload["eventType"] for m in csms.received(rig.id, "TransactionEvent")]
    assert "Ended" not in events
    rig.tap("TAG")  # Authorized ends: the transaction stops
    ended = await csms.wait_for(rig.id, "TransactionEvent",
                                where=lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["transactionId"] == started["transactionInfo"][
        "transactionId"]
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert await set_var(rig, "TxStopPoint", "Authorized,EVConnected") == "Accepted"
    assert csms.violations(rig.id) == []
