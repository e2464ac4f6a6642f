"""Failed-login limiter per client address, with exponential back-off.

Limited per address, never per user name: a lock on the name would let anyone lock the real admin
out with five wrong passwords (issue 15). An address that keeps guessing waits longer each time
(base, doubling, up to max_delay_s); its slate is clean after a success or window_s without a
failure. IPv6 addresses count per /64, the block one machine usually holds.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass


def client_key(host: str | None) -> str:
    """The key for a client address: the address, or its /64 for IPv6."""
    if not host:
        return "?"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6 and getattr(address, "ipv4_mapped", None) is None:
        return str(ipaddress.ip_network(f"{host}/64", strict=False))
    return str(getattr(address, "ipv4_mapped", None) or address)


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


class LoginLimiter:
    """Counts failures per client; after max_failures, each failure blocks it for longer."""

    def __init__(self, max_failures: int, window_s: float, *, base_delay_s: float = 30.0,
                 max_delay_s: float = 3600.0) -> None:
        self._max = max_failures
        self._window_s = window_s
        self._base = base_delay_s
        self._cap = max_delay_s
        self._clients: dict[str, _Record] = {}

    def _record(self, key: str, now: float) -> _Record:
        record = self._clients.get(key)
        if record is None or (now - record.last > self._window_s and now >= record.blocked_until):
            record = self._clients[key] = _Record()
        return record

    def retry_after(self, key: str) -> float | None:
        """Seconds until this client may try again, or None if it may now."""
        now = time.monotonic()
        if len(self._clients) > 10_000:  # forget idle clients so memory stays bounded
            self._clients = {k: r for k, r in self._clients.items()
                             if now - r.last <= self._window_s or now < r.blocked_until}
        wait = self._record(key, now).blocked_until - now
        return wait if wait > 0 else None

    def failed(self, key: str) -> float | None:
        """Record a failed attempt; the block it starts (seconds), if any."""
        now = time.monotonic()
        record = self._record(key, now)
        record.failures += 1
        record.last = now
        excess = record.failures - self._max
        if excess < 0:
            return None
        delay: float = min(self._base * 2.0 ** min(excess, 30), self._cap)
        record.blocked_until = now + delay
        return delay

    def succeeded(self, key: str) -> None:
        """Forget the failures of a client after a successful login."""
        self._clients.pop(key, None)
