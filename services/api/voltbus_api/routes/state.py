"""Read routes: stations and connectors with their live state from the bus."""

from __future__ import annotations

from fastapi import APIRouter

from voltbus_api.deps import ConnectorDep, StateDep, StationDep
from voltbus_api.schemas import error_responses
from voltbus_api.state_cache import ConnectorState, StationState

router = APIRouter(tags=["state"])


@router.get("/stations", response_model=list[StationState])
async def stations(cache: StateDep) -> list[StationState]:
    """Every station this API serves, with OCPP link, services and connectors."""
    return [cache.station(s) for s in cache.stations]


@router.get("/stations/{station}", response_model=StationState,
            responses=error_responses(404))
async def station(cache: StateDep, station: StationDep) -> StationState:
    """One station."""
    return cache.station(station)


@router.get("/stations/{station}/connectors", response_model=list[ConnectorState],
            responses=error_responses(404))
async def connectors(cache: StateDep, station: StationDep) -> list[ConnectorState]:
    """The station's connectors (those that have reported state on the bus)."""
    return cache.connectors(station)


@router.get("/stations/{station}/connectors/{n}", response_model=ConnectorState,
            responses=error_responses(404))
async def connector(cache: StateDep, station: StationDep, n: ConnectorDep) -> ConnectorState:
    """One connector: status, pilot, relay, meter, error, transaction, charging, last session."""
    state = cache.connector(station, n)
    assert state is not None  # ConnectorDep checked it
    return state
