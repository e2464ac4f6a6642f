"""The recorder's health on the bus (retained `service/recorder/health`) and in the log.

Published every interval, and at once when something a person should know changes: InfluxDB
became unreachable or came back, the spool passed 80 %, points started being dropped. The spool
and the writer say when that happens (on_alarm, on_reachability): between two reports the task
sleeps, it does not look every half second (issue 14).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from voltbus_common.bus import Bus
from voltbus_common.channels import RECORDER_HEALTH
from voltbus_common.models import RecorderHealth, utcnow
from voltbus_recorder.ingest import Ingest
from voltbus_recorder.spool import Spool
from voltbus_recorder.writer import Writer

log = logging.getLogger(__name__)


class HealthReporter:
    """Builds RecorderHealth snapshots and publishes them on every station's bus."""

    def __init__(self, spool: Spool, writer: Writer, ingest: Ingest, buses: list[Bus], *,
                 target: str, interval_s: float = 10.0) -> None:
        self.spool = spool
        self.writer = writer
        self.ingest = ingest
        self.buses = buses
        self.target = target
        self.interval_s = interval_s
        self._changed = asyncio.Event()
        spool.on_alarm = writer.on_reachability = self._changed.set

    def snapshot(self) -> RecorderHealth:
        """Health now."""
        s, spool = self.writer.stats, self.spool
        reachable = s.influx_ok
        return RecorderHealth(
            ok=bool(reachable) and not spool.dropped and not spool.near_full,
            influx_reachable=reachable, target=self.target[:300], spooled=spool.size,
            spool_max=spool.max_points, spool_near_full=spool.near_full, dropped=spool.dropped,
            spool_bytes=spool.disk_bytes,
            dead_letters=spool.dead_count, written=s.written, last_write_at=s.last_write_at,
            last_error=s.last_error[:600] if s.last_error else None, ts=utcnow())

    async def run(self) -> None:
        """Publish every interval, and whenever the alarm state changes; until cancelled."""
        loop = asyncio.get_running_loop()
        last_key: tuple[object, ...] | None = None
        next_due = 0.0
        while True:
            self._changed.clear()  # a change from here on wakes the next wait
            if loop.time() >= next_due and not self.spool.size:
                await self.writer.probe()
            health = self.snapshot()
            key = (health.ok, health.influx_reachable, health.spool_near_full,
                   health.dropped > 0, health.dead_letters)
            if key != last_key or loop.time() >= next_due:
                self.publish(health)
                last_key, next_due = key, loop.time() + self.interval_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(next_due):
                    await self._changed.wait()

    def publish(self, health: RecorderHealth) -> None:
        """Send health on every bus and log it (warning when not ok)."""
        for bus in self.buses:
            bus.publish(RECORDER_HEALTH, health)
        level = logging.DEBUG if health.ok or health.influx_reachable is None else logging.WARNING
        log.log(level, "health: ok=%s influx_reachable=%s spooled=%d/%d (%d bytes) dropped=%d "
                "dead_letters=%d written=%d last_error=%s", health.ok, health.influx_reachable,
                health.spooled, health.spool_max, health.spool_bytes, health.dropped,
                health.dead_letters, health.written, health.last_error)
