"""Failed-login limiter: too many failures per client address or per user name within a window."""

from __future__ import annotations

import time
from collections import deque


class LoginLimiter:
    """Counts failures per key in a sliding window; blocked keys get a Retry-After."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self._max = max_failures
        self._window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self._window_s:
            times.popleft()
        return times

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until any of these keys may try again, or None if none is blocked."""
        now = time.monotonic()
        waits = []
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self._max:
                waits.append(times[0] + self._window_s - now)
        if len(self._failures) > 10_000:  # forget idle keys so memory stays bounded
            self._failures = {k: v for k, v in self._failures.items() if v}
        return max(waits) if waits else None

    def failed(self, *keys: str) -> None:
        """Record a failed attempt for each key."""
        now = time.monotonic()
        for key in keys:
            self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        """Forget the failures of a key after a successful login."""
        self._failures.pop(key, None)
