"""The recorder's health report sleeps between reports and wakes on a change (issue 14: no
short polling loops at idle)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from tests.fixtures.mosquitto import Broker, running
from tests.recorder.helpers import wait_for
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.devbroker import free_port
from voltbus_common.models import RecorderHealth
from voltbus_recorder.health import HealthReporter
from voltbus_recorder.ingest import Ingest
from voltbus_recorder.sinks import InfluxV1Sink
from voltbus_recorder.spool import Spool
from voltbus_recorder.writer import Writer


async def test_health_sleeps_until_due_or_a_change(mosquitto: Broker, station: str,
                                                   tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_points=100)
    sink = InfluxV1Sink(f"http://127.0.0.1:{free_port()}", "voltbus")  # nobody listens there
    writer = Writer(spool, sink)
    ingest = Ingest(spool, writer.notify, root=mosquitto.root)
    bus = Bus(mosquitto.settings("recorder", stations=[station]), station=station,
              service="recorder")
    watcher = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                  service=None)
    health = HealthReporter(spool, writer, ingest, [bus], target=sink.description,
                            interval_s=30.0)
    snapshots: list[float] = []
    snapshot = health.snapshot

    def counted() -> RecorderHealth:
        snapshots.append(asyncio.get_running_loop().time())
        return snapshot()

    health.snapshot = counted  # type: ignore[method-assign]
    seen: list[RecorderHealth] = []

    async def keep(msg: Received[RecorderHealth]) -> None:
        assert msg.payload is not None
        seen.append(msg.payload)

    watcher.on(ch.RECORDER_HEALTH, keep)
    try:
        async with running(bus, watcher):
            task = asyncio.create_task(health.run())
            try:
                await wait_for(lambda: seen and seen[-1].influx_reachable, lambda r: r is False,
                               what="health: InfluxDB unreachable")
                await asyncio.sleep(0.3)  # the probe's own change may cost one more look
                before = len(snapshots)
                await asyncio.sleep(1.5)
                assert len(snapshots) == before, "health looked again with nothing changed"

                for i in range(85):  # past 80 % of the cap: reported at once, not in 30 s
                    spool.stage(f"m v={i} {i}")
                near = await wait_for(lambda: seen[-1], lambda h: h.spool_near_full,
                                      limit_s=2.0, what="health: spool near full")
                assert (near.ok, near.spooled) == (False, 85)
                assert len(snapshots) <= before + 2
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        spool.close()
        await sink.aclose()
