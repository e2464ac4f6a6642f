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


def _where(task: asyncio.Task[object]) -> str:
    """A task's name and the line it waits at: what a stop that hangs is waiting for."""
    frames = task.get_stack(limit=None)
    if not frames:
        return task.get_name()
    frame = frames[-1]
    return f"{task.get_name()} at {frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}"


async def _until_signalled(main: Callable[[], Awaitable[int | None]]) -> int | None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    attempts = 0

    def stop() -> None:
        # Python 3.11's wait_for (used inside aiomqtt) can swallow a cancellation that lands just
        # as its awaitable completes; cancel again if the task is still running after the time a
        # clean shutdown needs (the bus flushes and says `offline` within 2 s).
        nonlocal attempts
        if task.done():
            return
        if attempts:
            log.warning("still stopping after %.0f s; waiting on: %s", 3.0 * attempts,
                        "; ".join(_where(t) for t in asyncio.all_tasks(loop) if t is not task)
                        or "nothing else")
        attempts += 1
        task.cancel()
        if attempts > 2:  # a child that swallowed its cancel keeps its TaskGroup waiting: cancel it
            for other in asyncio.all_tasks(loop):
                other.cancel()
        loop.call_later(3.0, stop)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        return await main()
    except asyncio.CancelledError:
        log.info("stopped")
        return 0


def run(main: Callable[[], Awaitable[int | None]], *, service: str,
        log_level: str = "INFO") -> int:
    """Run a service's main coroutine until SIGTERM/SIGINT, then shut down cleanly.

    The exit code: main's (None is 0), or 0 after a stop. Every service's `__main__` ends in
    `raise SystemExit(cli())`, its cli() returning this (or 2 for a configuration it rejects).
    """
    setup_logging(service, log_level)
    code: int | None = 0
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(_until_signalled(main))
    return code or 0
