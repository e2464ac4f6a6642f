"""FastAPI dependencies as Annotated aliases: routes declare what they need by type.

All are `async def` although none awaits: FastAPI runs plain `def` dependencies in a thread pool
(a thread hop per dependency per request, about 1 ms per command in bench/bench_api_commands.py);
these are quick and never block.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from voltbus_api.auth_store import Principal, Role
from voltbus_api.commands import CommandClient
from voltbus_api.context import ApiContext
from voltbus_api.errors import ApiError
from voltbus_api.sessions import SessionSource
from voltbus_api.settings import ApiSettings
from voltbus_api.state_cache import StateCache


async def get_context(request: Request) -> ApiContext:
    """The context the lifespan put on the app."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]


async def get_cache(ctx: ContextDep) -> StateCache:
    """The state cache."""
    return ctx.cache


async def get_commands(ctx: ContextDep) -> CommandClient:
    """The command client."""
    return ctx.commands


async def get_settings(ctx: ContextDep) -> ApiSettings:
    """The service settings."""
    return ctx.settings


StateDep = Annotated[StateCache, Depends(get_cache)]
CommandsDep = Annotated[CommandClient, Depends(get_commands)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


async def known_station(cache: StateDep,
                  station: Annotated[str, Path(description="station id", examples=["CP1"])]
                  ) -> str:
    """The station path parameter, 404 unless this API serves it."""
    if not cache.has_station(station):
        raise ApiError(404, f"station {station!r} is unknown (this API serves: "
                            f"{', '.join(cache.stations)})")
    return station


StationDep = Annotated[str, Depends(known_station)]


async def known_connector(cache: StateDep, station: StationDep,
                    n: Annotated[int, Path(ge=1, le=10_000, description="connector id, from 1",
                                           examples=[1])]) -> int:
    """The connector path parameter, 404 unless the station has reported it on the bus."""
    if cache.connector(station, n) is None:
        known = ", ".join(str(c.connector) for c in cache.connectors(station)) or "none yet"
        raise ApiError(404, f"station {station!r} has no connector {n} (known: {known})")
    return n


ConnectorDep = Annotated[int, Depends(known_connector)]


SESSION_COOKIE = "voltbus_session"
_bearer = HTTPBearer(auto_error=False, description="an API token or a login session token")


async def bearer_or_cookie(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None,
                                            Depends(_bearer)]) -> str | None:
    """The token from `Authorization: Bearer` or else the login cookie."""
    if credentials is not None:
        return credentials.credentials
    return request.cookies.get(SESSION_COOKIE)


TokenDep = Annotated[str | None, Depends(bearer_or_cookie)]


async def current_principal(ctx: ContextDep, token: TokenDep) -> Principal:
    """The caller; 401 without a valid token or session."""
    if not token:
        raise ApiError(401, "not authenticated: log in or send 'Authorization: Bearer <token>'",
                       headers={"WWW-Authenticate": "Bearer"})
    principal = ctx.auth.authenticate(token)
    if principal is None:
        raise ApiError(401, "the token or session is invalid or has expired",
                       headers={"WWW-Authenticate": "Bearer"})
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def require_admin(principal: PrincipalDep) -> Principal:
    """The caller, who must have the admin role (403 otherwise)."""
    if principal.role is not Role.ADMIN:
        raise ApiError(403, f"{principal.name!r} has the role {principal.role.value!r}; "
                            "this needs 'admin'")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


async def get_sessions(ctx: ContextDep) -> SessionSource:
    """Session history."""
    return ctx.sessions


SessionsDep = Annotated[SessionSource, Depends(get_sessions)]
