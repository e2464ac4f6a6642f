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


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
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
        """Restart children that exited, with backoff (1 s doubling to 30 s; reset after 60 s)."""
        now = time.monotonic()
        for child in self.children:
            if child.process is None or child.process.poll() is None or self._stopping:
                continue
            if child.next_start == 0.0:
                lived = now - child.started_at
                child.restarts = 0 if lived > 60 else child.restarts + 1
                delay = min(2 ** child.restarts, 30)
                child.next_start = now + delay
                log.warning("%s exited with code %s; restarting in %ds", child.name,
                            child.process.returncode, delay)
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
