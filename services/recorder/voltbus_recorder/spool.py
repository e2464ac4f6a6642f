"""On-disk spool (sqlite, WAL): a point is deleted only after InfluxDB acknowledged it.

Points are staged in memory by the bus handlers and committed in small transactions (every
`commit_interval_s`), so one fsync covers many readings. With `fsync=True` (synchronous=FULL)
a committed point survives power loss; with False (NORMAL) it survives a crash of the process
(SIGKILL) but the last commits may roll back on power loss. Points InfluxDB rejects move to the
`dead_letter` table with the reason, where they stay for a person to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from voltbus_common.private_files import private_sqlite

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL, reason TEXT NOT NULL,
    at TEXT NOT NULL);
"""


class Spool:
    """Durable FIFO of line-protocol points with a size cap and a dead-letter table."""

    def __init__(self, path: Path, *, max_points: int, dead_letter_max: int = 100_000,
                 fsync: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_points = max_points
        self.dead_letter_max = dead_letter_max
        # The readings of every session, kept while InfluxDB is away: the owner's only.
        self._db = sqlite3.connect(private_sqlite(path), isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._sync = "FULL" if fsync else "NORMAL"
        self._db.execute(f"PRAGMA synchronous={self._sync}")
        self._db.executescript(_SCHEMA)
        self._staged: list[str] = []
        self._committing = 0
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self.committed = int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
        self.dead_count = int(self._db.execute("SELECT COUNT(*) FROM dead_letter").fetchone()[0])
        self.dropped = 0
        self._warned_near_full = False
        # Called (on the event loop's thread) when near_full, dropped > 0 or dead_count changed:
        # the health report wakes on it instead of looking every half second.
        self.on_alarm: Callable[[], None] | None = None
        self._alarm = self.alarm_key
        if self.committed:
            log.info("spool %s holds %d points from before; they will be written first",
                     path, self.committed)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """One explicit transaction (the connection is in autocommit mode otherwise)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- ingest side ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Points waiting: committed, being committed, and staged."""
        return self.committed + self._committing + len(self._staged)

    @property
    def staged(self) -> int:
        """Points staged in memory, not yet committed."""
        return len(self._staged)

    @property
    def near_full(self) -> bool:
        """True above 80 % of the cap: time to look at InfluxDB."""
        return self.size >= 0.8 * self.max_points

    @property
    def alarm_key(self) -> tuple[bool, bool, int]:
        """What health reports at once when it changes: near full, dropping, dead letters."""
        return self.near_full, self.dropped > 0, self.dead_count

    def _check_alarm(self) -> None:
        key = self.alarm_key
        if key != self._alarm:
            self._alarm = key
            if self.on_alarm is not None:
                self.on_alarm()

    @property
    def disk_bytes(self) -> int:
        """Bytes the spool takes on disk (database and its write-ahead log)."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def stage(self, line: str) -> bool:
        """Keep a point for the next commit (always True: the spool makes room by dropping the
        oldest points at commit time, see _make_room)."""
        if len(self._staged) >= self.max_points:  # the disk refuses writes for long: memory cap
            cut = max(1, self.max_points // 10)
            del self._staged[:cut]
            self._count_dropped(cut)
        if self.near_full and not self._warned_near_full:
            self._warned_near_full = True
            log.warning("spool is %d%% full (%d of %d points); at the cap the oldest points are "
                        "dropped", 100 * self.size // self.max_points, self.size, self.max_points)
        self._staged.append(line)
        if not self._alarm[0] and self.near_full:
            self._check_alarm()
        return True

    def _count_dropped(self, n: int) -> None:
        before, self.dropped = self.dropped, self.dropped + n
        if before == 0 or before // 10_000 != self.dropped // 10_000:
            log.error("spool full (%d points, VOLTBUS_RECORDER_SPOOL_MAX_POINTS, %d bytes on "
                      "disk): dropped the oldest %d points so far; is InfluxDB reachable?",
                      self.max_points, self.disk_bytes, self.dropped)
        self._check_alarm()

    def _excess(self, incoming: int) -> int:
        """How many of the oldest committed points must go to take `incoming` more."""
        return max(0, min(self.committed, self.committed + incoming - self.max_points))

    # Each operation exists twice: a blocking one (tests, shutdown) and an async one that runs
    # the sqlite work on the spool's own thread, so an fsync on a slow SD card never stalls the
    # event loop that receives MQTT messages. Counters change only in the caller's thread.

    def commit(self) -> int:
        """Write staged points to disk in one transaction; the number committed."""
        staged, self._staged = self._staged, []
        self._after_insert(len(staged), self._insert(staged, self._excess(len(staged))))
        return len(staged)

    def _after_insert(self, inserted: int, dropped: int) -> None:
        self.committed += inserted - dropped
        if dropped:
            self._count_dropped(dropped)

    async def commit_async(self) -> int:
        """commit() without blocking the event loop."""
        staged, self._staged = self._staged, []
        if not staged:
            return 0
        self._committing += len(staged)
        insert = asyncio.ensure_future(self._run(self._insert, staged, self._excess(len(staged))))
        try:
            await asyncio.shield(insert)
        except asyncio.CancelledError:
            await asyncio.wait([insert])  # stopping: let the insert finish, the points are ours
            raise
        finally:
            self._committing -= len(staged)
            if insert.done() and not insert.cancelled() and insert.exception() is None:
                self._after_insert(len(staged), insert.result())
            else:
                self._staged[:0] = staged  # not on disk: keep them for the next try
        return len(staged)

    def take(self, limit: int, live_share: float = 0.0) -> list[tuple[int, str]]:
        """Up to `limit` committed points: the oldest, plus the newest `live_share` of the batch.

        While a backlog drains, reserving part of each batch for the newest points keeps live
        data flowing instead of waiting behind an hour of history.
        """
        return self._select(limit, int(limit * live_share) if self.committed > limit else 0, [])

    async def take_async(self, limit: int, live_share: float = 0.0, *,
                         exclude: list[int] | None = None) -> list[tuple[int, str]]:
        """take() without blocking the event loop; `exclude`: ids already on their way."""
        live = int(limit * live_share) if self.committed > limit + len(exclude or ()) else 0
        return await self._run(self._select, limit, live, _runs(exclude or []))

    def remove(self, ids: list[int]) -> None:
        """Forget points InfluxDB acknowledged."""
        self._after_delete(self._delete(ids), len(ids))

    async def remove_async(self, ids: list[int]) -> None:
        """remove() without blocking the event loop."""
        self._after_delete(await self._run(self._delete, ids), len(ids))

    def remove_soon(self, ids: list[int]) -> asyncio.Future[int]:
        """remove_async(), queued on the spool thread now (before any later take_async), for
        the caller to await later: the delete overlaps the next write to InfluxDB."""
        future = asyncio.get_running_loop().run_in_executor(self._io, self._delete, ids)

        def done(f: asyncio.Future[int]) -> None:
            if not f.cancelled() and f.exception() is None:
                self._after_delete(f.result(), len(ids))

        future.add_done_callback(done)
        return future

    def dead_letter(self, rows: list[tuple[int, str]], reason: str) -> None:
        """Move rejected points out of the spool, with InfluxDB's reason."""
        self._after_dead(len(rows), self._move_dead(rows, reason))

    async def dead_letter_async(self, rows: list[tuple[int, str]], reason: str) -> None:
        """dead_letter() without blocking the event loop."""
        self._after_dead(len(rows), await self._run(self._move_dead, rows, reason))

    def dead_letters(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """The newest rejected points as (line, reason, at)."""
        rows = self._db.execute("SELECT line, reason, at FROM dead_letter ORDER BY id DESC LIMIT ?",
                                (limit,)).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def close(self) -> None:
        """Commit what is staged and close the database."""
        self._io.shutdown(wait=True)
        self.commit()
        self._db.close()

    # --- sqlite work (runs on the spool thread when called through the async methods) --------

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    def _insert(self, lines: list[str], excess: int) -> int:
        """Insert lines; drop the `excess` oldest points in the same transaction (the count)."""
        if not lines:
            return 0
        with self._tx():
            self._db.executemany("INSERT INTO spool (line) VALUES (?)", ((s,) for s in lines))
            if not excess:
                return 0
            cur = self._db.execute("DELETE FROM spool WHERE id IN "
                                   "(SELECT id FROM spool ORDER BY id LIMIT ?)", (excess,))
        return int(cur.rowcount)

    def _select(self, limit: int, live: int, skip: list[tuple[int, int]]
                ) -> list[tuple[int, str]]:
        rows = self._range_rows(limit - live, skip, newest=False)
        if live:
            seen = {r[0] for r in rows}
            newest = self._range_rows(live, skip, newest=True)
            rows += [r for r in reversed(newest) if r[0] not in seen]
        return rows

    def _range_rows(self, limit: int, skip: list[tuple[int, int]], *, newest: bool
                    ) -> list[tuple[int, str]]:
        """Up to limit rows, oldest (or newest) first, outside the skipped id runs: one rowid
        range per gap between runs, so rows on their way are never read again."""
        gaps, low = [], 0
        for first, last in skip:
            if first > low:
                gaps.append((low, first - 1))
            low = last + 1
        gaps.append((low, 2**63 - 1))
        order = "DESC" if newest else "ASC"
        rows: list[tuple[int, str]] = []
        for first, last in reversed(gaps) if newest else gaps:
            if len(rows) >= limit:
                break
            rows += self._db.execute(
                f"SELECT id, line FROM spool WHERE id BETWEEN ? AND ? ORDER BY id {order} "
                "LIMIT ?", (first, last, limit - len(rows))).fetchall()
        return rows

    def _delete(self, ids: list[int]) -> int:
        if not ids:
            return 0
        removed = 0
        # No fsync for a delete: if power fails before it reaches the disk, the points are sent
        # again, and InfluxDB keeps one value per series and timestamp. The next insert's fsync
        # makes the delete durable too (WAL frames are synced in order).
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._tx():  # a batch is one or two runs of ids: delete ranges, not each id
                for low, high in _runs(ids):
                    cur = self._db.execute("DELETE FROM spool WHERE id BETWEEN ? AND ?",
                                           (low, high))
                    removed += cur.rowcount
        finally:
            self._db.execute(f"PRAGMA synchronous={self._sync}")
        return removed

    def _move_dead(self, rows: list[tuple[int, str]], reason: str) -> int:
        at = datetime.now(UTC).isoformat()
        with self._tx():
            self._db.executemany("INSERT INTO dead_letter (line, reason, at) VALUES (?, ?, ?)",
                                 ((s, reason[:1000], at) for _, s in rows))
            cur = self._db.execute("DELETE FROM spool WHERE id IN (SELECT value FROM json_each(?))",
                                   (json.dumps([i for i, _ in rows]),))
            self._db.execute("DELETE FROM dead_letter WHERE id <= (SELECT MAX(id) FROM dead_letter)"
                             " - ?", (self.dead_letter_max,))
        return int(cur.rowcount)

    def _after_delete(self, removed: int, expected: int) -> None:
        self.committed -= removed
        # Points the cap dropped while their batch was on its way were written after all.
        self.dropped = max(0, self.dropped - (expected - removed))
        if not self.near_full:
            self._warned_near_full = False
        self._check_alarm()

    def _after_dead(self, moved: int, removed: int) -> None:
        self.committed -= removed
        self.dead_count = min(self.dead_count + moved, self.dead_letter_max)
        self._check_alarm()


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted ids as (first, last) runs of consecutive numbers."""
    out: list[tuple[int, int]] = []
    for i in sorted(ids):
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out
