"""voltbus_common.aio.timeout against what Python 3.11.2's asyncio.timeout gets wrong."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.interpreters import other_python, run_tests_under
from voltbus_common.aio import _counting_timeout, timeout


def _with_stale_cancel_count() -> asyncio.Task[None]:
    """The state 3.11's TaskGroup leaves its parent in when a child fails: cancelling() == 1."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    return task


@pytest.mark.parametrize("timeout_cm", [timeout, _counting_timeout])
async def test_expiry_is_a_timeout_even_with_a_stale_cancel_count(timeout_cm: object) -> None:
    task = _with_stale_cancel_count()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(0)  # the stale cancel lands; nobody uncancels it
    assert task.cancelling() == 1
    with pytest.raises(TimeoutError):
        async with timeout_cm(0.05):  # type: ignore[operator]
            await asyncio.sleep(5)
    assert task.cancelling() == 1  # the timeout took back only its own cancel


@pytest.mark.parametrize("timeout_cm", [timeout, _counting_timeout])
async def test_a_real_cancel_inside_the_block_stays_a_cancel(timeout_cm: object) -> None:
    async def wait_long() -> None:
        async with timeout_cm(5):  # type: ignore[operator]
            await asyncio.sleep(5)

    waiter = asyncio.create_task(wait_long())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


@pytest.mark.parametrize("timeout_cm", [timeout, _counting_timeout])
async def test_a_block_that_finishes_in_time_is_untouched(timeout_cm: object) -> None:
    async with timeout_cm(1):  # type: ignore[operator]
        await asyncio.sleep(0.01)
    async with timeout_cm(None):  # type: ignore[operator]
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # no late cancel arrives after the block


def test_under_debian_python() -> None:
    """Again under Debian 12's / Raspberry Pi OS's 3.11.2, where `timeout` is the backport
    and asyncio.timeout raises CancelledError in the stale-count test."""
    python, _version = other_python()
    output = run_tests_under(python, "tests/common/test_aio.py", "-k", "not under_debian",
                             timeout=60)
    assert "6 passed" in output
