"""A dynamic price (or CO2) feed: fetched by HTTP or read from a file, cached on disk.

The last good table is written to the cache after every successful fetch and read back at
start, so a restart without network still has today's prices. A fetch that fails keeps the
table it had (and so the plans made from it) and says so in `status`, which the site state
carries on the bus.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from voltbus_energy.tariff.formats import PARSERS, FeedFormatError, Format
from voltbus_energy.tariff.prices import PriceSlot, Tariff, cut, merge_co2

log = logging.getLogger(__name__)
TIBBER_QUERY = ("{ viewer { homes { currentSubscription { priceInfo { "
                "today { total startsAt } tomorrow { total startsAt } } } } } }")
KEEP_PAST = timedelta(hours=24)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _hhmm(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


class PriceFeed:
    """One feed: `source` is an http(s) URL or a file path; `refresh()` fetches it once."""

    def __init__(self, source: str, fmt: Format, *, cache: Path | None, refresh_s: float = 3600,
                 factor: float = 1.0, offset_per_kwh: float = 0.0, token: str | None = None,
                 timeout_s: float = 10.0, what: str = "price feed",
                 clock: Callable[[], datetime] = _utcnow) -> None:
        if fmt not in PARSERS:
            raise ValueError(f"unknown feed format {fmt!r} (known: {', '.join(PARSERS)})")
        self.source, self.fmt, self.cache = source, fmt, cache
        self.refresh_s, self.factor, self.offset = refresh_s, factor, offset_per_kwh
        self.token, self.timeout_s, self.what, self.clock = token, timeout_s, what, clock
        self.table: list[PriceSlot] = []
        self.fetched_at: datetime | None = None
        self.error: str | None = None
        self.failures = 0

    # --- state -------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """The feed's state in one line (at most 200 characters)."""
        if self.table:
            held = (f"{len(self.table)} prices until {_hhmm(self.table[-1].end)}"
                    f" (fetched {_hhmm(self.fetched_at)})" if self.fetched_at else "")
        else:
            held = "no prices"
        if self.error is None:
            return (f"ok: {held}" if self.fetched_at else "waiting for the first fetch")[:200]
        kept = f"keeping {held}" if self.table else held
        return f"{self.what} failed ({self.error}); {kept}"[:200]

    def _store(self, slots: list[PriceSlot], fetched_at: datetime) -> None:
        """Newer slots replace older ones from their first start on; the old past is dropped."""
        first = slots[0].start
        horizon = self.clock() - KEEP_PAST
        kept = [s for s in self.table if s.end <= first and s.end > horizon]
        self.table = kept + [s for s in slots if s.end > horizon]
        self.fetched_at = fetched_at

    # --- fetching ----------------------------------------------------------------------------

    async def _get(self) -> bytes:
        if not self.source.startswith(("http://", "https://")):
            return await asyncio.to_thread(Path(self.source).read_bytes)
        headers = {"Accept": "application/json, text/csv"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=True) as client:
            if self.fmt == "tibber":
                answer = await client.post(self.source, json={"query": TIBBER_QUERY},
                                           headers=headers)
            else:
                answer = await client.get(self.source, headers=headers)
        if answer.status_code != 200:
            raise FeedFormatError(f"HTTP {answer.status_code}")
        return answer.content

    def _parse(self, raw: bytes) -> list[PriceSlot]:
        slots = PARSERS[self.fmt](raw)
        if self.factor == 1.0 and self.offset == 0.0:
            return slots
        return [PriceSlot(s.start, s.end, None if s.price_per_kwh is None
                          else s.price_per_kwh * self.factor + self.offset, s.co2_g_per_kwh)
                for s in slots]

    async def refresh(self) -> bool:
        """Fetch and parse once; True when the table was replaced."""
        try:
            slots = self._parse(await self._get())
        except (httpx.HTTPError, OSError, FeedFormatError) as exc:
            self.error = _reason(exc)
            self.failures += 1
            level = logging.WARNING if self.failures in (1, 10) or self.failures % 100 == 0 \
                else logging.DEBUG
            log.log(level, "%s %s: %s (%d failures in a row)", self.what, self.source,
                    self.error, self.failures)
            return False
        self.error, self.failures = None, 0
        self._store(slots, self.clock())
        await self._save()
        log.info("%s: %s", self.what, self.status)
        return True

    async def run(self) -> None:
        """Refresh every refresh_s; after a failure retry sooner (1 min, doubling)."""
        retry_s = 60.0
        while True:
            if await self.refresh():
                retry_s = 60.0
                await asyncio.sleep(self.refresh_s)
            else:
                await asyncio.sleep(min(retry_s, self.refresh_s))
                retry_s = min(retry_s * 2, 3600.0)

    # --- the disk cache ----------------------------------------------------------------------

    async def _save(self) -> None:
        if self.cache is None or self.fetched_at is None:
            return
        doc = {"source": self.source, "format": self.fmt, "fetched_at": self.fetched_at.isoformat(),
               "slots": [[s.start.isoformat(), s.end.isoformat(), s.price_per_kwh,
                          s.co2_g_per_kwh] for s in self.table]}
        await asyncio.to_thread(_write_atomic, self.cache, json.dumps(doc).encode())

    def load_cache(self) -> bool:
        """The last good table from the cache file, if it is there and readable."""
        if self.cache is None or not self.cache.is_file():
            return False
        try:
            doc = json.loads(self.cache.read_bytes())
            slots = [PriceSlot(datetime.fromisoformat(a), datetime.fromisoformat(b), p, c)
                     for a, b, p, c in doc["slots"]]
            fetched = datetime.fromisoformat(doc["fetched_at"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s cache %s unreadable, ignored: %s", self.what, self.cache, exc)
            return False
        if slots:
            self._store(slots, fetched)
        log.info("%s: %d cached prices from %s", self.what, len(slots), _hhmm(fetched))
        return True


def _reason(exc: Exception) -> str:
    """A short reason for the status line."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    return str(exc)[:100] or type(exc).__name__


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class FeedTariff:
    """A tariff whose prices come from a feed (and, optionally, CO2 from another)."""

    def __init__(self, prices: PriceFeed | None, *, co2: PriceFeed | None = None,
                 fallback: Tariff | None = None) -> None:
        self.prices, self.co2, self.fallback = prices, co2, fallback

    @property
    def status(self) -> str:
        """The feeds' state."""
        parts = [self.prices.status if self.prices else self.fallback.status
                 if self.fallback else "no tariff"]
        if self.co2 is not None:
            parts.append(f"CO2 {self.co2.status}")
        return "; ".join(parts)[:200]

    def slots(self, start: datetime, end: datetime) -> list[PriceSlot]:
        """Feed prices (a fixed/ToU fallback where set), with CO2 where the CO2 feed knows it."""
        if self.prices is not None:
            table = cut(self.prices.table, start, end)
        else:
            table = self.fallback.slots(start, end) if self.fallback else cut([], start, end)
        return merge_co2(table, cut(self.co2.table, start, end)) if self.co2 else table
