"""The spool on its own (a real sqlite file): reading past batches on their way, the cap dropping
the oldest points, and drop counts corrected when a dropped batch was written after all."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from tests.recorder.helpers import reading
from voltbus_common import channels as ch
from voltbus_recorder.inbox import Message
from voltbus_recorder.ingest import Ingest
from voltbus_recorder.spool import Spool


def _filled(tmp_path: Path, n: int, *, max_points: int = 10_000) -> Spool:
    spool = Spool(tmp_path / "spool.db", max_points=max_points, fsync=False)
    for i in range(n):
        spool.stage(f"m v={i}i {i}")
    spool.commit()
    return spool


async def test_the_next_batch_skips_the_one_on_its_way(tmp_path: Path) -> None:
    spool = _filled(tmp_path, 100)
    first = await spool.take_async(20, 0.25)  # 15 oldest + 5 newest
    assert [i for i, _ in first] == [*range(1, 16), *range(96, 101)]
    second = await spool.take_async(20, 0.25, exclude=[i for i, _ in first])
    assert [i for i, _ in second] == [*range(16, 31), *range(91, 96)]
    await spool.remove_soon([i for i, _ in first])
    assert spool.committed == 80
    third = await spool.take_async(20, 0.25, exclude=[i for i, _ in second])
    assert [i for i, _ in third] == [*range(31, 46), *range(86, 91)]
    spool.close()


@pytest.mark.expected_errors  # "spool full"
async def test_the_cap_drops_the_oldest_at_commit(tmp_path: Path) -> None:
    spool = _filled(tmp_path, 100, max_points=100)
    for i in range(100, 130):
        assert spool.stage(f"m v={i}i {i}")
    assert await spool.commit_async() == 30
    assert (spool.committed, spool.dropped) == (100, 30)
    rows = spool.take(200)
    assert [line for _, line in rows] == [f"m v={i}i {i}" for i in range(30, 130)]
    assert spool.disk_bytes > 0
    spool.close()


@pytest.mark.expected_errors  # "spool full"
async def test_a_dropped_batch_that_was_written_anyway_is_not_counted_as_lost(
        tmp_path: Path) -> None:
    spool = _filled(tmp_path, 100, max_points=100)
    in_flight = await spool.take_async(10)  # ids 1..10 on their way to InfluxDB
    for i in range(100, 110):
        spool.stage(f"m v={i}i {i}")
    await spool.commit_async()  # the cap drops ids 1..10 meanwhile
    assert spool.dropped == 10
    await spool.remove_async([i for i, _ in in_flight])  # InfluxDB took them after all
    assert (spool.dropped, spool.committed) == (0, 100)
    spool.close()


async def test_an_idle_recorder_does_not_wake_up_to_commit(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_points=1000, fsync=False)
    commits = 0
    commit = spool.commit_async

    async def counted() -> int:
        nonlocal commits
        commits += 1
        return await commit()

    spool.commit_async = counted  # type: ignore[method-assign]
    ingest = Ingest(spool, lambda: None, commit_interval_s=0.05)
    task = asyncio.create_task(ingest.run())
    try:
        await asyncio.sleep(0.5)
        assert commits == 0  # was one wake-up per commit interval: 10 here, 10/s in service
        topic = ch.METER.topic(ch.DEFAULT_ROOT, station="CP1", connector=1)
        await ingest.feed([Message(topic, reading(0).model_dump_json().encode(), False, 0)],
                          lambda ids: None)
        for _ in range(50):
            if spool.committed:
                break
            await asyncio.sleep(0.02)
        assert (spool.committed, commits) == (1, 1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        spool.close()


def test_the_spool_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """Issue 15: the data sqlite files were 0644; the spool holds every session's readings."""
    old = os.umask(0o022)
    try:
        spool = Spool(tmp_path / "spool.sqlite", max_points=100)
        spool.close()
    finally:
        os.umask(old)
    for file in tmp_path.glob("spool.sqlite*"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
