"""The HTTP control API known from the MOEV seed: change configuration, disconnect, remote start and
stop, set max power; each POST answers with the charge point's real reply, in the OCPP version the
station speaks. `POST /chargers/{id}/call/{Action}` sends any CSMS-initiated CALL of that version
with a camelCase payload (schema-validated both ways); violations and transactions can be read."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, HTTPException
from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from ocpp.v16.datatypes import ChargingProfile, ChargingSchedule, ChargingSchedulePeriod
from ocpp.v16.enums import (
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
)
from ocpp.v201 import call as v201_call
from pydantic import BaseModel, Field

from voltbus_devcsms.central import CentralSystem
from voltbus_devcsms.records import Violation

StationId = Annotated[str, Field(min_length=1, max_length=48)]


class ChangeConfig(BaseModel):
    """ChangeConfiguration for one station, or every connected one when id is absent.

    A 2.0.1 station gets SetVariables: the key is then Component.Variable (e.g.
    SampledDataCtrlr.TxUpdatedInterval).
    """

    id: StationId | None = None
    key: str = Field(min_length=1, max_length=50)
    value: str = Field(max_length=500)


class StationOnly(BaseModel):
    """A request naming only the station."""

    id: StationId


class RemoteStart(BaseModel):
    """RemoteStartTransaction."""

    id: StationId
    connector: int | None = Field(default=None, ge=1)
    id_tag: str = Field(default="DEVCSMS", min_length=1, max_length=20)


class RemoteStop(BaseModel):
    """RemoteStopTransaction; without transaction_id the station's latest open one."""

    id: StationId
    transaction_id: int | str | None = None  # 2.0.1 ids are strings


class SetMax(BaseModel):
    """SetChargingProfile with one period: a station-wide maximum or the default per transaction."""

    id: StationId
    limit: float = Field(ge=0)
    unit: Literal["A", "W"] = "A"
    connector: int = Field(default=0, ge=0)
    purpose: Literal["ChargePointMaxProfile", "TxDefaultProfile"] = "ChargePointMaxProfile"
    stack_level: int = Field(default=0, ge=0)
    profile_id: int = Field(default=1, ge=1)


def create_app(csms: CentralSystem) -> FastAPI:
    """The control API bound to a running central system."""
    app = FastAPI(title="voltbus development central system")

    remote_start_ids = itertools.count(1)

    def connected(station: str) -> str:
        if station not in csms.sessions:
            raise HTTPException(404, f"station {station!r} is not connected")
        return csms.version(station)

    async def send(station: str, payload: Any) -> dict[str, Any]:
        connected(station)
        try:
            return await csms.send(station, payload)
        except TimeoutError:
            raise HTTPException(504, f"station {station!r} did not answer") from None

    @app.get("/chargers")
    async def chargers() -> list[dict[str, Any]]:
        known = sorted(set(csms.messages) | set(csms.sessions))
        return [{"id": s, "connected": s in csms.sessions,
                 "ocpp_version": csms.sessions[s].ocpp_version if s in csms.sessions else None,
                 "connections": csms.connections.get(s, 0),
                 "open_transactions": csms.open_transactions.get(s, []),
                 "messages": csms.messages.total(s),
                 "violations": len(csms.violations_of(s))} for s in known]

    @app.get("/chargers/{station}/counts")
    async def counts(station: str) -> dict[str, int]:
        """CALLs received per action, in all (the message list keeps only the newest)."""
        return csms.messages.counts(station)

    @app.get("/violations")
    async def violations(station: str | None = None,
                         rule: str | None = None) -> list[dict[str, Any]]:
        """The rules of the spec stations broke, oldest first."""
        return [_violation(v) for v in csms.violations_of(station, rule)]

    @app.get("/chargers/{station}/transactions")
    async def transactions(station: str) -> list[dict[str, Any]]:
        """The station's transactions (1.6: as started here; 2.0.1: every event by seqNo)."""
        found: list[dict[str, Any]] = [
            {"transaction_id": t.transaction_id, "connector_id": t.connector_id,
             "id_tag": t.id_tag, "meter_start": t.meter_start, "started": t.started,
             "meter_stop": t.meter_stop, "stopped": t.stopped, "reason": t.reason}
            for t in csms.transactions16.values() if t.station == station]
        found += [{"transaction_id": t.transaction_id, "evse_id": t.evse_id, "ended": t.ended,
                   "stopped_reason": t.stopped_reason,
                   "events": [{"seq_no": e.seq_no, "event_type": e.event_type,
                               "trigger_reason": e.trigger_reason, "timestamp": e.timestamp,
                               "offline": e.offline, "energy_wh": e.energy_wh,
                               "received_at": e.received_at.isoformat()} for e in t.events]}
                  for t in csms.transactions201.get(station, {}).values()]
        return found

    @app.post("/chargers/{station}/call/{action}")
    async def call_action(station: str, action: str,
                          payload: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Any CSMS-initiated CALL of the station's OCPP version, camelCase payload."""
        connected(station)
        try:
            return await csms.send_action(station, action, payload)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except (TypeError, OCPPError) as exc:
            raise HTTPException(422, f"not a valid {action}: {exc}") from None
        except TimeoutError:
            raise HTTPException(504, f"station {station!r} did not answer") from None

    @app.get("/chargers/{station}/messages")
    async def messages(station: str, action: str | None = None) -> list[dict[str, Any]]:
        return [{"action": m.action, "payload": m.payload, "unique_id": m.unique_id,
                 "at": m.at.isoformat()} for m in csms.received(station, action)]

    @app.post("/changeconfig")
    async def change_config(body: ChangeConfig) -> dict[str, Any]:
        stations = [body.id] if body.id else list(csms.sessions)
        return {s: await send(s, change_config_call(connected(s), body.key, body.value))
                for s in stations}

    @app.post("/disconnect")
    async def disconnect(body: StationOnly) -> dict[str, Any]:
        if body.id not in csms.sessions:
            raise HTTPException(404, f"station {body.id!r} is not connected")
        await csms.disconnect(body.id)
        return {"disconnected": body.id}

    @app.post("/remotestart")
    async def remote_start(body: RemoteStart) -> dict[str, Any]:
        if connected(body.id) == "2.0.1":
            return await send(body.id, v201_call.RequestStartTransaction(
                id_token={"id_token": body.id_tag, "type": "Central"},
                remote_start_id=next(remote_start_ids), evse_id=body.connector))
        return await send(body.id, call.RemoteStartTransaction(id_tag=body.id_tag,
                                                               connector_id=body.connector))

    @app.post("/remotestop")
    async def remote_stop(body: RemoteStop) -> dict[str, Any]:
        transaction_id = body.transaction_id
        if transaction_id is None:
            open_ids = csms.open_transactions.get(body.id, [])
            if not open_ids:
                raise HTTPException(409, f"station {body.id!r} has no open transaction")
            transaction_id = open_ids[-1]
        if connected(body.id) == "2.0.1":
            return await send(body.id, v201_call.RequestStopTransaction(
                transaction_id=str(transaction_id)))
        if not isinstance(transaction_id, int):
            raise HTTPException(422, "a 1.6 transaction id is an integer")
        return await send(body.id, call.RemoteStopTransaction(transaction_id=transaction_id))

    @app.post("/setmaxvalue")
    async def set_max(body: SetMax) -> dict[str, Any]:
        if connected(body.id) == "2.0.1":
            return await send(body.id, set_max_201(body))
        profile = ChargingProfile(
            charging_profile_id=body.profile_id, stack_level=body.stack_level,
            charging_profile_purpose=ChargingProfilePurposeType(body.purpose),
            charging_profile_kind=ChargingProfileKindType.absolute,
            charging_schedule=ChargingSchedule(  # Absolute: from now (1.6 needs the start)
                start_schedule=datetime.now(UTC).isoformat(timespec="seconds").replace(
                    "+00:00", "Z"),
                charging_rate_unit=ChargingRateUnitType(body.unit),
                charging_schedule_period=[ChargingSchedulePeriod(start_period=0, limit=body.limit)],
            ),
        )
        return await send(body.id, call.SetChargingProfile(connector_id=body.connector,
                                                           cs_charging_profiles=profile))

    return app


def _violation(v: Violation) -> dict[str, Any]:
    return {"station": v.station, "rule": v.rule, "detail": v.detail, "action": v.action,
            "unique_id": v.unique_id, "at": v.at.isoformat()}


def change_config_call(version: str, key: str, value: str) -> Any:
    """ChangeConfiguration (1.6) or SetVariables of Component.Variable (2.0.1)."""
    if version != "2.0.1":
        return call.ChangeConfiguration(key=key, value=value)
    component, _, variable = key.partition(".")
    if not component or not variable:
        raise HTTPException(422, "a 2.0.1 key is Component.Variable, e.g. "
                                 "SampledDataCtrlr.TxUpdatedInterval")
    return v201_call.SetVariables(set_variable_data=[{
        "attribute_value": value, "component": {"name": component},
        "variable": {"name": variable}}])


def set_max_201(body: SetMax) -> Any:
    """The 2.0.1 SetChargingProfile for a SetMax (ChargePointMaxProfile is ChargingStation...)."""
    purpose = ("ChargingStationMaxProfile" if body.purpose == "ChargePointMaxProfile"
               else body.purpose)
    start = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return v201_call.SetChargingProfile(evse_id=body.connector, charging_profile={
        "id": body.profile_id, "stack_level": body.stack_level,
        "charging_profile_purpose": purpose, "charging_profile_kind": "Absolute",
        "charging_schedule": [{
            "id": 1, "start_schedule": start, "charging_rate_unit": body.unit,
            "charging_schedule_period": [{"start_period": 0, "limit": body.limit}]}]})
