"""Command routes: each publishes a GatewayCommand and answers with the gateway's result."""

from __future__ import annotations

from fastapi import APIRouter

from voltbus_api.commands import BusUnavailable, CommandTimeout
from voltbus_api.deps import CommandsDep, ConnectorDep, StateDep, StationDep
from voltbus_api.errors import ApiError
from voltbus_api.schemas import (
    AvailabilityBody,
    ChargingBody,
    CurrentLimitBody,
    StartBody,
    error_responses,
)
from voltbus_common.enums import CommandName, CommandStatus, ServiceState
from voltbus_common.models import CommandResult, GatewayCommand

router = APIRouter(tags=["commands"])
_ERRORS = error_responses(404, 409, 422, 501, 502, 503, 504)
_HTTP_FOR = {CommandStatus.REJECTED: 409, CommandStatus.NOT_SUPPORTED: 501,
             CommandStatus.FAILED: 502}


async def _send(cache: StateDep, commands: CommandsDep, station: str, connector: int,
                command: GatewayCommand) -> CommandResult:
    """Send, then map the gateway's answer to an HTTP status."""
    if cache.station(station).services.get("gateway") is ServiceState.OFFLINE:
        raise ApiError(503, f"the gateway of station {station!r} is offline")
    try:
        result = await commands.send(station, connector, command)
    except CommandTimeout as exc:
        raise ApiError(504, str(exc)) from None
    except BusUnavailable as exc:
        raise ApiError(503, str(exc)) from None
    status = _HTTP_FOR.get(result.status)
    if status is not None:
        why = f": {result.reason}" if result.reason else ""
        raise ApiError(status, f"the gateway answered {result.status.value}{why}",
                       result=result.model_dump(mode="json"))
    return result


@router.post("/stations/{station}/connectors/{n}/start", response_model=CommandResult,
             responses=_ERRORS)
async def start(cache: StateDep, commands: CommandsDep, station: StationDep, n: ConnectorDep,
                body: StartBody) -> CommandResult:
    """Remote start a transaction for an id tag."""
    return await _send(cache, commands, station, n,
                       GatewayCommand(command=CommandName.START, id_tag=body.id_tag))


@router.post("/stations/{station}/connectors/{n}/stop", response_model=CommandResult,
             responses=_ERRORS)
async def stop(cache: StateDep, commands: CommandsDep, station: StationDep,
               n: ConnectorDep) -> CommandResult:
    """Remote stop the running transaction."""
    return await _send(cache, commands, station, n, GatewayCommand(command=CommandName.STOP))


@router.post("/stations/{station}/connectors/{n}/current_limit", response_model=CommandResult,
             responses=_ERRORS)
async def current_limit(cache: StateDep, commands: CommandsDep, station: StationDep,
                        n: ConnectorDep, body: CurrentLimitBody) -> CommandResult:
    """Set the current the EV may draw (A per phase); 0 pauses charging."""
    return await _send(cache, commands, station, n, GatewayCommand(
        command=CommandName.SET_CURRENT_LIMIT, amps=body.amps))


@router.post("/stations/{station}/connectors/{n}/charging", response_model=CommandResult,
             responses=_ERRORS)
async def charging(cache: StateDep, commands: CommandsDep, station: StationDep,
                   n: ConnectorDep, body: ChargingBody) -> CommandResult:
    """Enable or disable charging."""
    name = CommandName.ENABLE_CHARGING if body.enabled else CommandName.DISABLE_CHARGING
    return await _send(cache, commands, station, n, GatewayCommand(command=name))


@router.post("/stations/{station}/connectors/{n}/unlock", response_model=CommandResult,
             responses=_ERRORS)
async def unlock(cache: StateDep, commands: CommandsDep, station: StationDep,
                 n: ConnectorDep) -> CommandResult:
    """Unlock the connector's cable."""
    return await _send(cache, commands, station, n, GatewayCommand(command=CommandName.UNLOCK))


@router.post("/stations/{station}/connectors/{n}/availability", response_model=CommandResult,
             responses=_ERRORS)
async def availability(cache: StateDep, commands: CommandsDep, station: StationDep,
                       n: ConnectorDep, body: AvailabilityBody) -> CommandResult:
    """Change a connector's availability (OCPP ChangeAvailability)."""
    return await _send(cache, commands, station, n, GatewayCommand(
        command=CommandName.CHANGE_AVAILABILITY, operative=body.operative))


@router.post("/stations/{station}/availability", response_model=CommandResult,
             responses=_ERRORS)
async def station_availability(cache: StateDep, commands: CommandsDep, station: StationDep,
                               body: AvailabilityBody) -> CommandResult:
    """Change the whole station's availability (connector 0)."""
    return await _send(cache, commands, station, 0, GatewayCommand(
        command=CommandName.CHANGE_AVAILABILITY, operative=body.operative))


@router.post("/stations/{station}/connectors/{n}/offpeak_override", response_model=CommandResult,
             responses=_ERRORS)
async def offpeak_override(cache: StateDep, commands: CommandsDep, station: StationDep,
                           n: ConnectorDep) -> CommandResult:
    """Let the session waiting for the off-peak window charge now (this session only).

    409 when no transaction on the connector is waiting for off-peak (none running, off-peak
    not enabled, the window already open, or already overridden); the reason says which.
    """
    return await _send(cache, commands, station, n,
                       GatewayCommand(command=CommandName.OVERRIDE_OFFPEAK))
