"""What the central system keeps: the CALLs each station sent (bounded) and the violations found."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One CALL a station sent, as it arrived (camelCase payload)."""

    action: str
    payload: dict[str, Any]
    unique_id: str
    at: datetime


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
    """Per-station CALL records, each station's kept to the last `limit` (None: all of them).

    The dev central system used to keep every message for its lifetime: 88-462 MB in the scale
    benches (issue 14). Counts per action are kept in full whatever the limit.
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("history limit must be at least 1 (or None for no limit)")
        self.limit = limit
        self._by_station: dict[str, deque[Recorded]] = {}
        self._counts: dict[str, Counter[str]] = {}
        self._waiters: set[asyncio.Event] = set()

    def add(self, station: str, message: Recorded) -> None:
        """Keep a received CALL and wake the waiters."""
        kept = self._by_station.get(station)
        if kept is None:
            kept = self._by_station[station] = deque(maxlen=self.limit)
            self._counts[station] = Counter()
        kept.append(message)
        self._counts[station][message.action] += 1
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
