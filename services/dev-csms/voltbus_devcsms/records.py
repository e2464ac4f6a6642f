"""What the central system keeps: the CALLs each station sent (bounded) and the violations found."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


class Recorded:
    """One CALL a station sent, as it arrived (camelCase payload).

    Kept as the frame's text and decoded on each read of `payload`: a decoded MeterValues is
    ~4 KB of Python objects, its text a fifth of that, and most records are never read.
    """

    __slots__ = ("_payload", "_raw", "action", "at", "unique_id")

    def __init__(self, action: str, payload: dict[str, Any] | None, unique_id: str,
                 at: datetime, *, raw: str | None = None) -> None:
        self.action = action
        self.unique_id = unique_id
        self.at = at
        self._raw = raw if payload is None else None
        self._payload = payload

    @property
    def payload(self) -> dict[str, Any]:
        """The CALL's payload as a fresh dict."""
        if self._payload is not None:
            return self._payload
        decoded = json.loads(self._raw) if self._raw is not None else None
        payload = decoded[3] if isinstance(decoded, list) and len(decoded) > 3 else {}
        return payload if isinstance(payload, dict) else {}

    def __repr__(self) -> str:
        return f"Recorded({self.action!r}, {self.payload!r}, {self.unique_id!r}, {self.at!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Recorded):
            return NotImplemented
        return ((self.action, self.unique_id, self.at, self.payload)
                == (other.action, other.unique_id, other.at, other.payload))

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Violation:
    """Something a station did that the OCPP specification forbids, found by this central system.

    `rule` is a short stable name tests assert on (see rules.py); `detail` says what was seen.
    """

    station: str
    rule: str
    detail: str
    action: str
    unique_id: str
    at: datetime


class History:
    """The CALLs stations sent, the newest `limit` of them across all stations (None: all).

    The dev central system used to keep every message for its lifetime: 88-462 MB in the scale
    benches (issue 14). Counts per action are kept in full whatever the limit.
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("history limit must be at least 1 (or None for no limit)")
        self.limit = limit
        self._by_station: dict[str, deque[Recorded]] = {}
        self._order: deque[str] = deque()  # the station of each kept record, oldest first
        self._counts: dict[str, Counter[str]] = {}
        self._waiters: set[asyncio.Event] = set()
        self.dropping = False  # the limit was reached once (said once in the log)

    def add(self, station: str, message: Recorded) -> None:
        """Keep a received CALL (dropping the oldest one kept when full) and wake the waiters."""
        kept = self._by_station.get(station)
        if kept is None:
            kept = self._by_station[station] = deque()
            self._counts[station] = Counter()
        kept.append(message)
        self._counts[station][message.action] += 1
        if self.limit is not None:
            self._order.append(station)
            if len(self._order) > self.limit:
                self._by_station[self._order.popleft()].popleft()
                if not self.dropping:
                    self.dropping = True
                    log.warning("message history full (%d): the oldest CALLs are dropped from "
                                "/chargers/{id}/messages; /chargers/{id}/counts stays exact",
                                self.limit)
        self.wake()

    def wake(self) -> None:
        """Wake every waiter to look again (a message arrived, a station came or went)."""
        for event in self._waiters:
            event.set()

    def stations(self) -> list[str]:
        """Every station that sent at least one CALL."""
        return list(self._by_station)

    def __contains__(self, station: object) -> bool:
        return station in self._by_station

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._by_station))

    def get(self, station: str, default: Any = None) -> list[Recorded] | Any:
        """The kept CALLs of a station, oldest first (dict-like, as `messages` was)."""
        kept = self._by_station.get(station)
        return default if kept is None else list(kept)

    def __getitem__(self, station: str) -> list[Recorded]:
        return list(self._by_station[station])

    def received(self, station: str, action: str | None = None) -> list[Recorded]:
        """The kept CALLs a station sent, in order (only `action` ones if given)."""
        kept = self._by_station.get(station, ())
        return [m for m in kept if action in (None, m.action)]

    def counts(self, station: str) -> dict[str, int]:
        """How many CALLs of each action the station sent in all (not only the kept ones)."""
        return dict(self._counts.get(station, {}))

    def total(self, station: str) -> int:
        """How many CALLs the station sent in all."""
        return sum(self._counts.get(station, Counter()).values())

    async def wait_until(self, ready: Callable[[], Any], timeout: float) -> Any:  # noqa: ASYNC109
        """The first truthy ready() result, re-checked whenever something is recorded."""
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            async with asyncio.timeout(timeout):
                while not (result := ready()):
                    event.clear()
                    await event.wait()
                return result
        finally:
            self._waiters.discard(event)
