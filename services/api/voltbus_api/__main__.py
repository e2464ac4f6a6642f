"""Run the API service: `python -m voltbus_api` (uvicorn on VOLTBUS_API_HOST:VOLTBUS_API_PORT)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from types import FrameType

import uvicorn

from voltbus_api.app import create_app
from voltbus_api.docker_admin import DockerAdmin, DockerAdminSettings
from voltbus_api.settings import ApiSettings
from voltbus_common.runtime import setup_logging
from voltbus_common.settings import load_settings


class _Server(uvicorn.Server):
    """uvicorn that also tells the app it is stopping, so open live streams end at once."""

    def __init__(self, config: uvicorn.Config, closing: asyncio.Event) -> None:
        super().__init__(config)
        self._closing = closing
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def main_loop(self) -> None:
        """uvicorn's own loop wakes every 0.1 s to look for a stop; this one ticks once a second
        (the Date header) and wakes at once on a stop signal (handle_exit sets `closing`)."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # each tick is uvicorn's once-a-second tick
            if self._closing.is_set():  # closing, but not (yet) exiting: uvicorn's pace
                await asyncio.sleep(0.1)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # not wait_for: it can swallow a stop (3.11)
                    await self._closing.wait()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is not None:  # called from a signal handler: wake the loop safely
            self._loop.call_soon_threadsafe(self._closing.set)
        super().handle_exit(sig, frame)


def cli() -> int:
    """Load settings, build the app, serve until SIGTERM/SIGINT (uvicorn shuts down cleanly).

    Not runtime.run: uvicorn owns the event loop and the signals; the exit code the same way."""
    settings = load_settings(ApiSettings)
    setup_logging("api", settings.log_level)
    docker = DockerAdminSettings()
    app = create_app(settings, docker_admin=DockerAdmin.from_settings(docker)
                     if docker.admin else None)
    # uvicorn re-raises the stop signal once it has shut down; with a no-op handler in place that
    # ends as a clean exit 0 instead of death by SIGTERM, which supervisors would count as a crash.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    config = uvicorn.Config(app, host=settings.api_host, port=settings.api_port,
                            log_config=None, access_log=False, proxy_headers=False,
                            timeout_graceful_shutdown=5,
                            ssl_certfile=settings.api_tls_cert_file,
                            ssl_keyfile=settings.api_tls_key_file)
    _Server(config, app.state.ctx.closing).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
