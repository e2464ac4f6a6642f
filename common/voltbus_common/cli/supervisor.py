"""Runs each service as its own process, restarts the ones that die, stops all on Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PLANNED_RESTART_EXIT_CODE = 75  # the gateway's hard Reset (sysexits EX_TEMPFAIL)
FAST_RESTARTS = 3  # crashes in a row restarted after FIRST_DELAY_S before the backoff grows
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
STABLE_AFTER_S = 60.0  # a child that ran this long starts again from the fast restarts


def restart_delay_s(crashes: int, exit_code: int | None) -> float:
    """Seconds before restarting a child that exited; crashes counts this one (1, 2, ...).

    A planned restart (exit 75) is immediate. The first FAST_RESTARTS crashes in a row wait
    1 s each, so a single crash of the gateway or the hardware service ends the sessions'
    fail-safe pause (relays open) within about a second and a half; only a crash loop backs
    off, doubling up to 30 s, so it does not eat the Pi's CPU.
    """
    if exit_code == PLANNED_RESTART_EXIT_CODE:
        return 0.0
    if crashes <= FAST_RESTARTS:
        return FIRST_DELAY_S
    return min(FIRST_DELAY_S * 2.0 ** (crashes - FAST_RESTARTS), MAX_DELAY_S)


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0  # 0: running, or exit not yet seen
    started_at: float = field(default=0.0)


class Supervisor:
    """Keeps children running until stop() (or SIGINT/SIGTERM in run_forever)."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self._stopping = False

    def add(self, name: str, module: str, env: dict[str, str]) -> Child:
        """Start `python -m module` with env, and keep it running."""
        child = Child(name, [sys.executable, "-m", module], {**os.environ, **env})
        self.children.append(child)
        self._start(child)
        return child

    def _start(self, child: Child) -> None:
        # Its own session: a Ctrl-C in the terminal reaches only the supervisor, which then
        # stops the services first and the broker last, so each can say `offline` cleanly.
        child.process = subprocess.Popen(child.argv, env=child.env, start_new_session=True)
        child.started_at = time.monotonic()
        log.info("started %s (pid %d)", child.name, child.process.pid)

    def poll(self) -> None:
        """Restart children that exited (see restart_delay_s; the count resets after 60 s)."""
        now = time.monotonic()
        for child in self.children:
            if child.process is None or child.process.poll() is None or self._stopping:
                continue
            if child.next_start == 0.0:
                lived = now - child.started_at
                child.restarts = 1 if lived > STABLE_AFTER_S else child.restarts + 1
                code = child.process.returncode
                delay = restart_delay_s(child.restarts, code)
                child.next_start = now + delay
                log.warning("%s exited with code %s; restarting in %.0f s", child.name, code,
                            delay)
            elif now >= child.next_start:
                child.next_start = 0.0
                self._start(child)

    def run_forever(self) -> None:
        """Supervise until SIGINT/SIGTERM, then stop everything cleanly."""
        def _stop(signum: int, _frame: object) -> None:
            self._stopping = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        while not self._stopping:
            self.poll()
            time.sleep(0.3)
        self.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every child (last started first), wait, then SIGKILL stragglers."""
        self._stopping = True
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()
