"""The energy manager on the web page: the site's power flow and each connector's mode and plan.

Kept from the bus like the state cache: the retained `{site}/energy/site` (the site id is
VOLTBUS_ENERGY_SITE, as for Home Assistant) and every `{station}/energy/{c}/mode`. Setting a mode
publishes a whole `ChargeModeSetting` on `energy/{c}/mode/set` and answers with the mode the
energy manager then announces (504 when it does not answer, 409 when it says otherwise).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from voltbus_api.context import ApiContext
from voltbus_api.deps import ConnectorDep, StationDep
from voltbus_api.errors import ApiError
from voltbus_api.schemas import error_responses
from voltbus_api.site_history import SiteBuffer, SiteHistory, history
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import ChargeMode
from voltbus_common.models import ChargeModeSetting, ChargeModeState, SessionCost, SiteState

log = logging.getLogger(__name__)
viewer_router = APIRouter(tags=["energy"])
admin_router = APIRouter(tags=["energy"])
ANSWER_TIMEOUT_S = 5.0


class ConnectorEnergy(BaseModel):
    """A connector's charge mode as the energy manager last announced it."""

    station: str
    connector: int
    mode: ChargeModeState


class ConnectorCost(BaseModel):
    """A connector's running (or last) session cost at the live tariff (energy/{c}/cost)."""

    station: str
    connector: int
    cost: SessionCost


class EnergyView(BaseModel):
    """The site (null until the energy manager reported it), every connector's mode and the
    session costs at the live tariff."""

    site_id: str | None = Field(description="VOLTBUS_ENERGY_SITE; null: not configured")
    site: SiteState | None = None
    connectors: list[ConnectorEnergy] = Field(default_factory=list)
    costs: list[ConnectorCost] = Field(default_factory=list)


class ChargeModeBody(ChargeModeSetting):
    """A connector's charge mode and plan, as the page sets it (the whole setting)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"mode": "pv", "priority": 0},
        {"mode": "plan", "priority": 0, "plan_energy_wh": 20000,
         "plan_departure": "2026-12-04T06:00:00Z", "plan_objective": "cost"}]})


class EnergyCache:
    """The retained energy topics, and waiters for the next mode of a connector."""

    def __init__(self, site_id: str | None) -> None:
        self.site_id = site_id
        self.site: SiteState | None = None
        self.buffer = SiteBuffer()
        self.costs: dict[tuple[str, int], SessionCost] = {}
        # final costs seen on the bus, by session identity (station, connector, start)
        self.finals: dict[tuple[str, int, datetime], SessionCost] = {}
        self.modes: dict[tuple[str, int], ChargeModeState] = {}
        self._waiters: dict[tuple[str, int], list[asyncio.Future[ChargeModeState]]] = {}

    def attach(self, buses: dict[str, Bus]) -> None:
        """Subscribe on every station's bus (the site on the first); before bus.run()."""
        for bus in buses.values():
            bus.on(ch.ENERGY_MODE, self._on_mode)
            bus.on(ch.ENERGY_COST, self._on_cost)
        if self.site_id is not None and buses:
            next(iter(buses.values())).on(ch.ENERGY_SITE, self._on_site, station=self.site_id)

    async def _on_site(self, msg: Received[SiteState]) -> None:
        self.site = msg.payload
        if msg.payload is not None:
            self.buffer.add(msg.payload)

    async def _on_cost(self, msg: Received[SessionCost]) -> None:
        if msg.payload is None:
            return
        self.costs[(msg.station, int(msg.connector))] = msg.payload
        if msg.payload.final:
            if len(self.finals) >= 10_000:
                self.finals.pop(next(iter(self.finals)))
            self.finals[(msg.station, int(msg.connector), msg.payload.started_at)] = msg.payload

    async def _on_mode(self, msg: Received[ChargeModeState]) -> None:
        key = (msg.station, int(msg.connector))
        if msg.payload is None:
            self.modes.pop(key, None)
            return
        self.modes[key] = msg.payload
        for waiter in self._waiters.pop(key, []):
            if not waiter.done():
                waiter.set_result(msg.payload)

    def view(self) -> EnergyView:
        return EnergyView(site_id=self.site_id, site=self.site, connectors=[
            ConnectorEnergy(station=s, connector=n, mode=m)
            for (s, n), m in sorted(self.modes.items())], costs=[
            ConnectorCost(station=s, connector=n, cost=c)
            for (s, n), c in sorted(self.costs.items())])

    def next_mode(self, station: str, connector: int) -> asyncio.Future[ChargeModeState]:
        future: asyncio.Future[ChargeModeState] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault((station, connector), []).append(future)
        return future


def _cache(request: Request) -> EnergyCache:
    cache: EnergyCache = request.app.state.energy
    return cache


@viewer_router.get("/site", response_model=EnergyView)
async def site(request: Request) -> EnergyView:
    """The site's grid, PV, battery and charge power, and each connector's mode and plan."""
    return _cache(request).view()


@viewer_router.get("/site/history", response_model=SiteHistory,
                   responses=error_responses(401, 422))
async def site_history(
    request: Request,
    start: Annotated[datetime | None, Query(alias="from", description="default: 24 h ago")
                     ] = None,
    points: Annotated[int, Query(ge=10, le=2000)] = 288,
) -> SiteHistory:
    """The site's grid, PV, house, cars, battery and price from `from` until now, as at most
    `points` means (from InfluxDB's `site`, else from what this API saw on the bus)."""
    if start is None:
        start = datetime.now(UTC) - timedelta(hours=24)
    if start.tzinfo is None:
        raise ApiError(422, "'from' needs a time zone, e.g. 2026-01-05T08:00:00Z")
    ctx: ApiContext = request.app.state.ctx
    cache = _cache(request)
    return await history(cache.site_id, ctx.sessions.influx, cache.buffer, start, points)


@admin_router.put("/stations/{station}/connectors/{n}/energy/mode",
                  response_model=ChargeModeState, responses=error_responses(401, 403, 404, 409,
                                                                            422, 504))
async def set_mode(request: Request, station: StationDep, n: ConnectorDep,
                   body: ChargeModeBody) -> ChargeModeState:
    """Set the connector's charge mode (and plan); answers with the mode now in force."""
    setting = ChargeModeSetting.model_validate(body.model_dump())
    if setting.mode is ChargeMode.PLAN and (setting.plan_energy_wh is None
                                            or setting.plan_departure is None):
        raise ApiError(422, "plan mode needs plan_energy_wh and plan_departure")
    ctx: ApiContext = request.app.state.ctx
    cache = _cache(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_TIMEOUT_S
    answer = cache.next_mode(station, n)
    ctx.buses[station].publish(ch.ENERGY_MODE_SET, setting, connector=n)
    state: ChargeModeState | None = None
    # The manager also re-announces modes of its own: wait for the one that took ours.
    while state is None or state.mode is not setting.mode:
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                state = await answer
        except TimeoutError:
            break
        answer = cache.next_mode(station, n)
    if state is None:
        raise ApiError(504, "the energy manager did not answer (is it running and does it "
                            "manage this connector?)")
    if state.mode is not setting.mode:
        raise ApiError(409, f"the energy manager kept mode {state.mode.value}")
    return state


def install(app: FastAPI, ctx: ApiContext, viewer: list[Any], admin: list[Any]) -> None:
    """Mount the routes and subscribe to the energy topics."""
    cache = EnergyCache(ctx.settings.energy_site)
    cache.attach(ctx.buses)
    app.state.energy = cache
    app.include_router(viewer_router, prefix="/api/v1", dependencies=viewer)
    app.include_router(admin_router, prefix="/api/v1", dependencies=admin)
