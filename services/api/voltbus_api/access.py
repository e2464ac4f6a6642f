"""Who may learn that a request is malformed: a 422 only to a caller the route would admit.

FastAPI parses a JSON body before it runs the route's dependencies, so without this a request
with a broken body and no token got 422 instead of 401, and a viewer got 422 instead of 403 on
an admin route: the schema answered before authentication (so did FastAPI's 400 for a body
that is not UTF-8). These handlers ask the route what it needs first
(tests/faults/test_fuzz_api.py checks every operation).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from voltbus_api import errors
from voltbus_api.auth_store import Role
from voltbus_api.deps import SESSION_COOKIE, current_principal, require_admin
from voltbus_api.errors import ApiError


def _effective_dependant(request: Request) -> Dependant | None:
    """The matched route's dependencies, including those its router was included with.

    scope["route"] is the route as declared, without the dependencies app.py adds when it
    includes the router, so match the request against the app's effective routes.
    """
    path = request.scope["path"]
    for route in iter_route_contexts(request.app.router.routes):
        regex, methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and methods and request.method in methods and regex.match(path):
            dependant: Dependant | None = getattr(route, "dependant", None)
            return dependant
    return None


def _required_role(dependant: Dependant) -> Role | None:
    """ADMIN or VIEWER when the route's dependencies authenticate the caller, else None."""
    calls, stack = set(), [dependant]
    while stack:
        d: Dependant = stack.pop()
        calls.add(d.call)
        stack.extend(d.dependencies)
    if require_admin in calls:
        return Role.ADMIN
    return Role.VIEWER if current_principal in calls else None


def _token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return request.cookies.get(SESSION_COOKIE)


async def _denied(request: Request) -> JSONResponse | None:
    """The 401 or 403 the route's dependencies would give this caller, None if admitted."""
    dependant = _effective_dependant(request)
    if dependant is None:
        return None
    needed = _required_role(dependant)  # only on the error path: no cache needed
    if needed is None:
        return None
    try:  # the dependencies' own checks, so the answer is the one the route gives
        principal = await current_principal(request.app.state.ctx, _token(request))
        if needed is Role.ADMIN:
            await require_admin(principal)
    except ApiError as denied:
        return await errors.api_error(request, denied)
    return None


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    return await _denied(request) or await errors.validation_error(request, exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    # 400 is FastAPI's answer to a body it cannot decode, raised before the dependencies run.
    denied = await _denied(request) if exc.status_code == 400 else None
    return denied or await errors.http_error(request, exc)


def install(app: FastAPI) -> None:
    """Replace the handlers errors.install() registered for bad requests (call after it)."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
