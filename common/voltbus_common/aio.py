"""asyncio pieces whose stdlib form misbehaves on the Python that Raspberry Pi OS ships.

Debian 12 and Raspberry Pi OS bookworm ship Python 3.11.2. Its `asyncio.timeout` turns an
expiry into CancelledError instead of TimeoutError whenever the task carries a cancel count
from before the block (`uncancel() == 0` in `Timeout.__aexit__`; CPython gh-102780, fixed in
3.11.3 by remembering the count on entry). 3.11's TaskGroup leaves such a count on its parent
task whenever a child fails, so a deadline such as the heartbeat wait or a cable-lock answer
would end its task as if it had been cancelled. Use `timeout` from here instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

__all__ = ["timeout"]


@contextlib.asynccontextmanager
async def _counting_timeout(delay: float | None) -> AsyncIterator[None]:
    """asyncio.timeout as 3.11.3+ has it: the entry's cancel count is the baseline."""
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("timeout() must be used inside a task")
    baseline = task.cancelling()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = None if delay is None else asyncio.get_running_loop().call_later(
        max(0.0, delay), expire)
    try:
        yield
    except asyncio.CancelledError:
        if expired and task.uncancel() <= baseline:
            raise TimeoutError from None
        raise
    finally:
        if handle is not None:
            handle.cancel()


def timeout(delay: float | None) -> contextlib.AbstractAsyncContextManager[object]:
    """`asyncio.timeout(delay)`, with 3.11.3's handling of an earlier cancel count."""
    if sys.version_info >= (3, 11, 3):
        return asyncio.timeout(delay)
    return _counting_timeout(delay)  # Debian's 3.11.2: tests/common/test_aio.py runs it there
