"""create_app(): the FastAPI application; its lifespan runs the buses and keeps the state cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from voltbus_api import access, docs_page, errors
from voltbus_api.context import ApiContext
from voltbus_api.deps import current_principal, require_admin
from voltbus_api.docker_admin import DockerAdmin, create_router
from voltbus_api.routes import auth, commands, config, health, history, page, reports, state, stream
from voltbus_api.routes import energy as energy_routes
from voltbus_api.security_headers import SecurityHeaders
from voltbus_api.settings import ApiSettings

STATIC = Path(__file__).parent / "static"
DESCRIPTION = """REST API of a voltbus charge point.

State comes from the retained bus topics; commands go to the OCPP gateway over the bus and answer
with the gateway's real result (409 when it rejected the command, 504 when it did not answer).
Every error has the shape `{"detail": "a sentence", ...}`.

Authentication: `Authorization: Bearer <token>` (an API token, or the session token from
`POST /api/v1/auth/login`), or the login cookie. Role `viewer` reads; `admin` also sends commands
and manages users and tokens. `GET /api/v1/health` is open.
"""


def create_app(settings: ApiSettings, *, docker_admin: DockerAdmin | None = None) -> FastAPI:
    """The application for these settings; the lifespan connects one Bus per station.

    docker_admin, when given, mounts the opt-in container admin routes (admin role only).
    """
    ctx = ApiContext.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        try:
            yield
        finally:
            await ctx.stop()

    app = FastAPI(title="voltbus API", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.state.ctx = ctx
    app.add_middleware(SecurityHeaders)
    errors.install(app)
    access.install(app)  # 401/403 before a 422 tells a stranger about the body
    docs_page.install(app)  # /api/docs with Swagger UI served locally
    viewer, admin = [Depends(current_principal)], [Depends(require_admin)]
    app.include_router(health.router, prefix="/api/v1")
    app.include_router(auth.router, prefix="/api/v1")
    for module in (state, history, reports, stream, config):
        app.include_router(module.router, prefix="/api/v1", dependencies=viewer)
    app.include_router(commands.router, prefix="/api/v1", dependencies=admin)
    page.install(app, ctx, viewer)  # the web page's power curve and costs
    energy_routes.install(app, ctx, viewer, admin)  # the energy manager's site and modes
    if docker_admin is not None:
        app.include_router(create_router(docker_admin), prefix="/api/v1", dependencies=admin)
    # The web page last, so every API route takes precedence.
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="web")
    return app
