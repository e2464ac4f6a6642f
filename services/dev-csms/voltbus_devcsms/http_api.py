"""The HTTP control API known from the MOEV seed: change configuration, disconnect, remote start and
stop, set max power; each POST answers with the charge point's real reply."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException
from ocpp.v16 import call
from ocpp.v16.datatypes import ChargingProfile, ChargingSchedule, ChargingSchedulePeriod
from ocpp.v16.enums import (
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
)
from pydantic import BaseModel, Field

from voltbus_devcsms.central import CentralSystem

StationId = Annotated[str, Field(min_length=1, max_length=48)]


class ChangeConfig(BaseModel):
    """ChangeConfiguration for one station, or every connected one when id is absent."""

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
    transaction_id: int | None = None


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

    async def send(station: str, payload: Any) -> dict[str, Any]:
        if station not in csms.sessions:
            raise HTTPException(404, f"station {station!r} is not connected")
        try:
            return await csms.send(station, payload)
        except TimeoutError:
            raise HTTPException(504, f"station {station!r} did not answer") from None

    @app.get("/chargers")
    async def chargers() -> list[dict[str, Any]]:
        known = sorted(set(csms.messages) | set(csms.sessions))
        return [{"id": s, "connected": s in csms.sessions,
                 "connections": csms.connections.get(s, 0),
                 "open_transactions": csms.open_transactions.get(s, []),
                 "messages": len(csms.messages.get(s, []))} for s in known]

    @app.get("/chargers/{station}/messages")
    async def messages(station: str, action: str | None = None) -> list[dict[str, Any]]:
        return [{"action": m.action, "payload": m.payload, "unique_id": m.unique_id,
                 "at": m.at.isoformat()} for m in csms.received(station, action)]

    @app.post("/changeconfig")
    async def change_config(body: ChangeConfig) -> dict[str, Any]:
        stations = [body.id] if body.id else list(csms.sessions)
        return {s: await send(s, call.ChangeConfiguration(key=body.key, value=body.value))
                for s in stations}

    @app.post("/disconnect")
    async def disconnect(body: StationOnly) -> dict[str, Any]:
        if body.id not in csms.sessions:
            raise HTTPException(404, f"station {body.id!r} is not connected")
        await csms.disconnect(body.id)
        return {"disconnected": body.id}

    @app.post("/remotestart")
    async def remote_start(body: RemoteStart) -> dict[str, Any]:
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
        return await send(body.id, call.RemoteStopTransaction(transaction_id=transaction_id))

    @app.post("/setmaxvalue")
    async def set_max(body: SetMax) -> dict[str, Any]:
        profile = ChargingProfile(
            charging_profile_id=body.profile_id, stack_level=body.stack_level,
            charging_profile_purpose=ChargingProfilePurposeType(body.purpose),
            charging_profile_kind=ChargingProfileKindType.absolute,
            charging_schedule=ChargingSchedule(
                charging_rate_unit=ChargingRateUnitType(body.unit),
                charging_schedule_period=[ChargingSchedulePeriod(start_period=0, limit=body.limit)],
            ),
        )
        return await send(body.id, call.SetChargingProfile(connector_id=body.connector,
                                                           cs_charging_profiles=profile))

    return app
