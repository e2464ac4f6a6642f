"""The central system plus its HTTP API in one process or one test: start(), stop(), ports."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from voltbus_devcsms.central import CentralSystem
from voltbus_devcsms.http_api import create_app

log = logging.getLogger(__name__)


class DevCsms:
    """Central system (websocket) and HTTP control API; port 0 picks free ports."""

    def __init__(self, csms: CentralSystem, *, http_host: str = "127.0.0.1",
                 http_port: int = 0) -> None:
        self.csms = csms
        self.http_host = http_host
        self.http_port = http_port
        self._http: uvicorn.Server | None = None
        self._http_task: asyncio.Task[None] | None = None

    async def start(self) -> tuple[int, int]:
        """Start both servers; return (websocket port, HTTP port)."""
        await self.csms.start()
        config = uvicorn.Config(create_app(self.csms), host=self.http_host, port=self.http_port,
                                log_level="warning", lifespan="off")
        self._http = uvicorn.Server(config)
        self._http_task = asyncio.create_task(self._http.serve())
        while not self._http.started:
            if self._http_task.done():
                await self._http_task
                raise RuntimeError("HTTP API did not start")
            await asyncio.sleep(0.01)
        self.http_port = self._http.servers[0].sockets[0].getsockname()[1]
        log.info("control API on http://%s:%d/", self.http_host, self.http_port)
        return self.csms.port, self.http_port

    async def stop(self) -> None:
        """Stop both servers."""
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._http_task
        await self.csms.stop()
