"""Drains the spool into InfluxDB in batches (by size and by age), with backoff.

A batch is deleted from the spool only after InfluxDB acknowledged it. A batch InfluxDB rejects
is split in halves until the bad points are isolated; those go to the dead-letter table, the good
ones are written (again: InfluxDB keeps one value per series and timestamp, so that is harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from voltbus_recorder.sinks import Result, Sink
from voltbus_recorder.spool import Spool

log = logging.getLogger(__name__)


@dataclass
class WriterStats:
    """What the writer has done, for the health report."""

    written: int = 0
    rejected: int = 0
    batches: int = 0
    influx_ok: bool | None = None
    last_error: str | None = None
    last_write_at: datetime | None = None
    outage_since: float | None = field(default=None, repr=False)


class Writer:
    """The one task that moves points from the spool to InfluxDB."""

    def __init__(self, spool: Spool, sink: Sink, *, batch_size: int = 5000,
                 max_age_s: float = 1.0, quiet_s: float = 0.15, live_share: float = 0.25,
                 retry_min_s: float = 0.5, retry_max_s: float = 30.0) -> None:
        self.spool = spool
        self.sink = sink
        self.batch_size = batch_size
        self.max_age_s = max_age_s
        self.quiet_s = quiet_s
        self.live_share = live_share
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.stats = WriterStats()
        # Called when stats.influx_ok changed (health reports that at once).
        self.on_reachability: Callable[[], None] | None = None
        self._wake = asyncio.Event()
        self._pending_since: float | None = None
        self._notified_at = time.monotonic()
        self._backlog = spool.committed > 0  # points from before a restart go out at once

    def notify(self) -> None:
        """New points were committed to the spool."""
        self._notified_at = time.monotonic()
        self._wake.set()

    async def run(self) -> None:
        """Write batches until cancelled."""
        backoff = self.retry_min_s
        while True:
            await self._wait_for_batch()
            try:
                written = await self._write_all()
            except sqlite3.Error as exc:
                log.error("spool %s failed: %s; retrying", self.spool.path, exc)
                written = False
            if written:
                backoff = self.retry_min_s
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max_s)

    async def _write_all(self) -> bool:
        """Write batches while a backlog lasts; False when InfluxDB is unavailable.

        While a full batch is on its way to InfluxDB, the spool deletes the one before and reads
        the next: the sqlite work overlaps the HTTP round trip, so a drain runs at InfluxDB's pace.
        """
        removals: list[asyncio.Future[int]] = []
        try:
            rows = await self.spool.take_async(self.batch_size, self.live_share)
            while rows:
                sending = asyncio.ensure_future(self._write(rows, removals))
                following: list[tuple[int, str]] = []
                try:
                    if len(rows) >= self.batch_size:
                        following = await self.spool.take_async(
                            self.batch_size, self.live_share, exclude=[i for i, _ in rows])
                finally:
                    written = await sending
                if not written:
                    return False
                self._on_success(len(rows))
                rows = following
            return True
        finally:
            await asyncio.gather(*removals, return_exceptions=True)
            if not self.spool.committed:  # _on_success may have counted before the deletes
                self._backlog, self._pending_since = False, None

    async def _wait_for_batch(self) -> None:
        """Return when a full batch waits, the oldest point is max_age old, nothing new came for
        quiet_s (waiting longer would not make the batch bigger), or a backlog drains."""
        while True:
            if self._backlog or self.spool.committed >= self.batch_size:
                return
            timeout: float | None = None
            if self.spool.committed:
                now = time.monotonic()
                if self._pending_since is None:
                    self._pending_since = now
                timeout = min(self._pending_since + self.max_age_s,
                              self._notified_at + self.quiet_s) - now
                if timeout <= 0:
                    return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # not wait_for: it can swallow a stop (3.11)
                    await self._wake.wait()

    def _on_success(self, count: int) -> None:
        s = self.stats
        s.batches += 1
        s.last_write_at = datetime.now(UTC)
        if s.influx_ok is False:
            down = time.monotonic() - (s.outage_since or time.monotonic())
            log.info("InfluxDB is back after %.0fs; %d points still spooled",
                     down, self.spool.committed)
        self._set_reachable(True)
        s.outage_since = None
        # A full batch means more may be waiting: keep going without the age wait.
        self._backlog = count >= self.batch_size and self.spool.committed > 0
        self._pending_since = None if not self.spool.committed else time.monotonic()

    async def _write(self, rows: list[tuple[int, str]],
                     removals: list[asyncio.Future[int]]) -> bool:
        """Write rows; False if InfluxDB is unavailable (nothing was removed).

        The deletes of written rows are queued on the spool thread and collected in removals.
        """
        outcome = await self.sink.write("\n".join(line for _, line in rows).encode())
        if outcome.result is Result.WRITTEN:
            removals.append(self.spool.remove_soon([i for i, _ in rows]))
            self.stats.written += len(rows)
            return True
        if outcome.result is Result.UNAVAILABLE:
            self._on_unavailable(outcome.reason)
            return False
        if len(rows) == 1:
            self.stats.rejected += 1
            n = self.stats.rejected
            if n <= 10 or n % 1000 == 0:  # a schema conflict can reject every point: stay readable
                log.error("InfluxDB rejected a point (%d so far); set aside in the dead-letter "
                          "table: %s -- %s", n, rows[0][1][:300], outcome.reason)
            await self.spool.dead_letter_async(rows, outcome.reason)
            return True
        half = len(rows) // 2
        return (await self._write(rows[:half], removals)
                and await self._write(rows[half:], removals))

    async def probe(self) -> None:
        """Ping InfluxDB while there is nothing to write, so health is known on a quiet station.

        A good ping counts only with an empty spool: it says nothing about a database or token
        that makes real writes fail.
        """
        reason = await self.sink.ping()
        if reason is not None:
            self._on_unavailable(reason)
        elif not self.spool.size:
            if self.stats.influx_ok is False:
                log.info("InfluxDB answers again (%s)", self.sink.description)
            self._set_reachable(True)
            self.stats.last_error = None

    def _on_unavailable(self, reason: str) -> None:
        s = self.stats
        if s.influx_ok is not False:
            log.warning("InfluxDB unavailable (%s at %s); keeping %d points in the spool",
                        reason, self.sink.description, self.spool.committed)
            s.outage_since = time.monotonic()
        self._set_reachable(False)
        s.last_error = reason

    def _set_reachable(self, ok: bool) -> None:
        if self.stats.influx_ok is not ok:
            self.stats.influx_ok = ok
            if self.on_reachability is not None:
                self.on_reachability()
