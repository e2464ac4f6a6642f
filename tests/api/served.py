"""The API app served by a real uvicorn on a free port, in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn

from voltbus_api.app import create_app
from voltbus_api.context import ApiContext
from voltbus_api.settings import ApiSettings
from voltbus_common.devbroker import free_port


@dataclass
class Served:
    """Where the API listens, its admin token and its context."""

    url: str
    token: str
    ctx: ApiContext


@contextlib.asynccontextmanager
async def served_api(settings: ApiSettings) -> AsyncIterator[Served]:
    """Run uvicorn with the app until the block ends."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        ctx: ApiContext = app.state.ctx
        for bus in ctx.buses.values():
            await bus.wait_connected(5)
        assert settings.api_admin_token_file is not None
        token = settings.api_admin_token_file.read_text().strip()
        yield Served(f"http://127.0.0.1:{port}", token, ctx)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
