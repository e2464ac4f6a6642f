"""OCPP 2.0.1 UnlockConnector through the cable lock the 1.6 adapter uses (the station core's
`unlock`, with the hardware service's simulator: its lock moves in 50 ms, ConnectorLockFailure
jams it) and DataTransfer, against the dev central system in 2.0.1 with schema validation on."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.ocpp_gateway.test_billing import TAG, charge_point
from voltbus_common import channels as ch
from voltbus_common.enums import ChargePointErrorCode, LockState, PilotState
from voltbus_common.models import SimFault, SimPlug, SimTap
from voltbus_hardware.registry import build_station, simulated_config


def unlock(evse: int = 1, connector: int = 1) -> dict[str, int]:
    return {"evseId": evse, "connectorId": connector}


async def test_unlock_connector_in_201(mosquitto: Broker, csms: Csms, station: str,
                                       tmp_path: Path) -> None:
    async with charge_point(mosquitto, csms, station, tmp_path / "data",
                            ocpp_version="2.0.1") as (hw, _gw, _w):
        assert csms.central.version(station) == "2.0.1"
        assert await csms.send_action(station, "UnlockConnector", unlock()) == {
            "status": "Unlocked"}
        locks = [m.payload for m in hw.watches["lock"].seen if m.payload.request_id]
        assert locks[-1].state is LockState.UNLOCKED  # the lock confirmed it
        assert await csms.send_action(station, "UnlockConnector", unlock(evse=2)) == {
            "status": "UnknownConnector"}
        assert await csms.send_action(station, "UnlockConnector", unlock(connector=2)) == {
            "status": "UnknownConnector"}  # one connector per EVSE

        hw.send(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await hw.watches["pilot"].until(lambda m: m.payload.state is PilotState.B)
        hw.send(ch.SIM_TAP, SimTap(id_tag=TAG))
        await csms.wait_for(station, "TransactionEvent",
                            where=lambda p: p["eventType"] == "Started")
        assert await csms.send_action(station, "UnlockConnector", unlock()) == {
            "status": "OngoingAuthorizedTransaction"}  # F05.FR.02: the transaction goes on
        await asyncio.sleep(0.2)
        assert [m.payload["eventType"] for m in csms.received(station, "TransactionEvent")
                if m.payload["eventType"] == "Ended"] == []
    assert csms.violations(station) == []


async def test_a_jammed_lock_answers_unlock_failed_in_201(
        mosquitto: Broker, csms: Csms, station: str, tmp_path: Path) -> None:
    async with charge_point(mosquitto, csms, station, tmp_path / "data",
                            ocpp_version="2.0.1") as (hw, _gw, _w):
        hw.send(ch.SIM_FAULT, SimFault(code=ChargePointErrorCode.CONNECTOR_LOCK_FAILURE,
                                       info="jam"), connector=1)
        await asyncio.sleep(0.2)
        assert await csms.send_action(station, "UnlockConnector", unlock()) == {
            "status": "UnlockFailed"}
        failed = [m.payload for m in hw.watches["lock"].seen if m.payload.request_id]
    assert failed[-1].state is LockState.FAILED
    assert csms.violations(station) == []


async def test_no_cable_lock_answers_unlock_failed_in_201(
        mosquitto: Broker, csms: Csms, station: str, tmp_path: Path) -> None:
    """1.6 says NotSupported; 2.0.1's UnlockStatusEnumType has no such word: UnlockFailed."""
    config = simulated_config(1)
    lockless = build_station(config.model_copy(update={"connectors": [
        config.connectors[0].model_copy(update={"lock": None})]}), station)
    async with charge_point(mosquitto, csms, station, tmp_path / "data", station_hw=lockless,
                            ocpp_version="2.0.1") as (hw, _gw, _w):
        await hw.watches["lock"].until(lambda m: m.payload.state is LockState.NOT_SUPPORTED)
        assert await csms.send_action(station, "UnlockConnector", unlock()) == {
            "status": "UnlockFailed"}
    assert csms.violations(station) == []


async def test_data_transfer_answers_unknown_vendor_id_in_201(
        mosquitto: Broker, csms: Csms, station: str, tmp_path: Path) -> None:
    async with charge_point(mosquitto, csms, station, tmp_path / "data",
                            ocpp_version="2.0.1"):
        assert await csms.send_action(station, "DataTransfer", {
            "vendorId": "com.example", "messageId": "x", "data": {"a": 1}}) == {
            "status": "UnknownVendorId"}
    assert csms.violations(station) == []
