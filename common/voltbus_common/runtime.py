"""Service runtime: logging, signals, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


def setup_logging(service: str, level: str = "INFO") -> None:
    """One line per record, with the service name, to stderr (journald and docker read that)."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("websockets", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


async def _until_signalled(main: Callable[[], Awaitable[None]]) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def stop() -> None:
        # Python 3.11's wait_for (used inside aiomqtt) can swallow a cancellation that lands just
        # as its awaitable completes; cancel again if the task is still running after the time a
        # clean shutdown needs (the bus flushes and says `offline` within 2 s).
        if not task.done():
            task.cancel()
            loop.call_later(3.0, stop)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await main()
    except asyncio.CancelledError:
        log.info("stopped")


def run(main: Callable[[], Awaitable[None]], *, service: str, log_level: str = "INFO") -> None:
    """Run a service's main coroutine until SIGTERM/SIGINT, then shut down cleanly (exit 0)."""
    setup_logging(service, log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_until_signalled(main))
