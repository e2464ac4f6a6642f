"""The writer against real InfluxDB 1.6: batches by size and age, live points during a backlog,
idempotent replays, rejected points isolated into the dead-letter table, the spool cap."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fixtures.influxdb import InfluxServer
from tests.fixtures.mosquitto import Broker, running
from tests.recorder.helpers import T0, ns, reading, recorder, settings, wait_for
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.devbroker import free_port
from voltbus_common.models import RecorderHealth
from voltbus_recorder import points
from voltbus_recorder.sinks import InfluxV1Sink, Outcome
from voltbus_recorder.spool import Spool
from voltbus_recorder.writer import Writer


class Observed:
    """The real 1.x sink, remembering the batches it was given (to check batching)."""

    def __init__(self, sink: InfluxV1Sink) -> None:
        self.sink = sink
        self.description = sink.description
        self.batches: list[list[str]] = []

    async def write(self, body: bytes) -> Outcome:
        self.batches.append(body.decode().splitlines())
        return await self.sink.write(body)

    async def aclose(self) -> None:
        await self.sink.aclose()


def lines(n: int, *, start: int = 0, station: str = "W") -> list[str]:
    return [points.line("meter", {"station": station, "connector": "1"},
                        {"energy_wh": float(i), "power_w": 1.5}, T0 + timedelta(seconds=i))
            for i in range(start, start + n)]


@contextlib.asynccontextmanager
async def writing(writer: Writer) -> AsyncIterator[None]:
    task = asyncio.create_task(writer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await writer.sink.aclose()


async def add(spool: Spool, writer: Writer, new: list[str]) -> None:
    """Stage and commit on the spool's thread (as the recorder does), then wake the writer."""
    for line in new:
        assert spool.stage(line)
    await spool.commit_async()
    writer.notify()


async def test_batches_by_size_then_by_age(influxdb: InfluxServer, tmp_path: Path) -> None:
    db = influxdb.create_database()
    spool = Spool(tmp_path / "spool.db", max_points=10_000)
    sink = Observed(InfluxV1Sink(influxdb.url, db))
    writer = Writer(spool, sink, batch_size=50, max_age_s=0.5, live_share=0.0)
    async with writing(writer):
        await add(spool, writer, lines(120))
        await wait_for(lambda: spool.committed, lambda n: n == 0, what="120 written")
        assert [len(b) for b in sink.batches] == [50, 50, 20]
        await add(spool, writer, lines(1, start=500))
        await asyncio.sleep(0.1)
        assert len(sink.batches) == 3, "a lone point waits for the batch age"
        await wait_for(lambda: spool.committed, lambda n: n == 0, what="lone point written")
    assert len(sink.batches) == 4
    assert len(influxdb.rows("SELECT * FROM meter", db=db)) == 121


async def test_backlog_drains_with_room_for_live_points(influxdb: InfluxServer,
                                                       tmp_path: Path) -> None:
    db = influxdb.create_database()
    spool = Spool(tmp_path / "spool.db", max_points=10_000)
    backlog, live = lines(2000), lines(1, start=9000)
    for line in backlog + live:
        spool.stage(line)
    spool.commit()
    sink = Observed(InfluxV1Sink(influxdb.url, db))
    writer = Writer(spool, sink, batch_size=200, max_age_s=5.0, live_share=0.25)
    async with writing(writer):
        await wait_for(lambda: spool.committed, lambda n: n == 0, what="backlog drained")
    assert live[0] in sink.batches[0], "the newest point went out with the first batch"
    assert sink.batches[0][0] == backlog[0], "and the oldest first of all"
    assert all(len(b) <= 200 for b in sink.batches)
    assert sum(len(b) for b in sink.batches) == 2001
    assert len(influxdb.rows("SELECT * FROM meter", db=db)) == 2001


async def test_replaying_written_points_is_idempotent(influxdb: InfluxServer,
                                                      tmp_path: Path) -> None:
    """A crash between InfluxDB's ack and the spool delete replays points: they collapse."""
    db = influxdb.create_database()
    batch = lines(100)
    assert influxdb.write(db, "\n".join(batch)).status_code == 204
    spool = Spool(tmp_path / "spool.db", max_points=10_000)
    writer = Writer(spool, InfluxV1Sink(influxdb.url, db), batch_size=1000, max_age_s=0.1)
    async with writing(writer):
        await add(spool, writer, batch)
        await wait_for(lambda: spool.committed, lambda n: n == 0, what="replay written")
    rows = influxdb.rows("SELECT * FROM meter", db=db)
    assert len(rows) == 100
    assert [r["energy_wh"] for r in rows] == [float(i) for i in range(100)]


@pytest.mark.expected_errors
async def test_rejected_points_go_to_dead_letters_and_the_rest_is_written(
        influxdb: InfluxServer, tmp_path: Path) -> None:
    db = influxdb.create_database()
    good = lines(98)
    too_late = points.line("meter", {"station": "W", "connector": "1"}, {"energy_wh": 1.0},
                           T0.replace(year=2300))
    wrong_type = points.line("meter", {"station": "W", "connector": "2"}, {"energy_wh": "lots"},
                             T0)
    spool = Spool(tmp_path / "spool.db", max_points=10_000)
    sink = Observed(InfluxV1Sink(influxdb.url, db))
    writer = Writer(spool, sink, batch_size=1000, max_age_s=0.1)
    async with writing(writer):
        await add(spool, writer, [*good[:40], too_late, *good[40:], wrong_type])
        await wait_for(lambda: spool.committed, lambda n: n == 0, what="batch settled")
    dead = {line: reason for line, reason, _ in spool.dead_letters()}
    assert set(dead) == {too_late, wrong_type}
    assert "out of range" in dead[too_late]
    assert "field type conflict" in dead[wrong_type]
    assert spool.dead_count == 2
    assert len(influxdb.rows("SELECT * FROM meter", db=db)) == 98
    assert writer.stats.rejected == 2
    assert len(sink.batches) < 30, "bisection, not one request per point"


@pytest.mark.expected_errors
async def test_full_spool_says_so_in_log_and_on_the_bus(
        mosquitto: Broker, station: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    cfg = settings(mosquitto, station, tmp_path, influx_url=nowhere,
                   recorder_spool_max_points=100, recorder_health_interval_s=0.3)
    hw = Bus(mosquitto.settings("hardware"), station=station, service="hardware")
    watcher = Bus(mosquitto.settings("operator"), station=station, service=None)
    health: list[RecorderHealth] = []

    async def keep(msg: Received[RecorderHealth]) -> None:
        assert msg.payload is not None
        health.append(msg.payload)

    watcher.on(ch.RECORDER_HEALTH, keep)
    async with recorder(cfg) as task, running(hw, watcher):
        await wait_for(lambda: len(health), lambda n: n > 0, what="first health")
        for i in range(130):
            hw.publish(ch.METER, reading(i), connector=1)
        last = await wait_for(lambda: health[-1],
                              lambda h: h.dropped >= 30 and h.influx_reachable is False,
                              what="health reports drops, InfluxDB unreachable")
        assert not task.done()
    assert (last.ok, last.influx_reachable, last.spool_near_full, last.spooled) == (
        False, False, True, 100)
    assert 0 < last.spool_bytes < 5_000_000
    assert "spool full (100 points" in caplog.text
    assert "spool is 80% full" in caplog.text
    # Oldest first: the newest readings are kept, the oldest went (the 100 points also hold a
    # service_status point or two).
    with contextlib.closing(sqlite3.connect(cfg.spool_path)) as db:
        kept = [int(line.rsplit(" ", 1)[1]) for (line,) in db.execute(
            "SELECT line FROM spool WHERE line LIKE 'meter,%' ORDER BY id")]
    assert len(kept) >= 97
    assert kept == [ns(reading(i).ts) for i in range(130 - len(kept), 130)]
