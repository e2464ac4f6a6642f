"""The service runtime's stop: SIGTERM ends a service even when a task swallowed its cancel.

Python 3.11's asyncio.wait_for drops a cancel that lands as the awaited step completes; a task of
a TaskGroup that does so keeps the group, and so the service, running after SIGTERM (the recorder
did once in CI and was killed). The runtime re-cancels, names what it is still waiting on, and
then cancels every task.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

STUBBORN_SERVICE = """
import asyncio
from voltbus_common.runtime import run

async def stubborn() -> None:
    swallowed = 0
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed += 1   # what 3.11's wait_for can do: the cancel is gone
            asyncio.current_task().uncancel()
            print("swallowed", flush=True)

async def main() -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(stubborn(), name="stubborn")
        print("ready", flush=True)

raise SystemExit(run(main, service="test"))
"""


def test_sigterm_ends_a_service_whose_task_swallowed_the_cancel() -> None:
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN_SERVICE], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "swallowed" in out
    assert "still stopping after 3 s; waiting on: stubborn at <string>:" in err
    assert time.monotonic() - started < 12  # within docker's default 10 s stop, plus start slack
