"""create_app(): the FastAPI application; its lifespan runs the buses and keeps the state cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from voltbus_api import errors
from voltbus_api.context import ApiContext
from voltbus_api.routes import commands, health, state
from voltbus_api.settings import ApiSettings

DESCRIPTION = """REST API of a voltbus charge point.

State comes from the retained bus topics; commands go to the OCPP gateway over the bus and answer
with the gateway's real result (409 when it rejected the command, 504 when it did not answer).
Every error has the shape `{"detail": "a sentence", ...}`.
"""


def create_app(settings: ApiSettings) -> FastAPI:
    """The application for these settings; the lifespan connects one Bus per station."""
    ctx = ApiContext.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        try:
            yield
        finally:
            await ctx.stop()

    app = FastAPI(title="voltbus API", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url="/api/docs", redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.state.ctx = ctx
    errors.install(app)
    for module in (health, state, commands):
        app.include_router(module.router, prefix="/api/v1")
    return app
