"""The recorder's health: spool fill, InfluxDB reachability, drops and dead letters."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from voltbus_common.bus import Bus
from voltbus_recorder.ingest import Ingest
from voltbus_recorder.spool import Spool
from voltbus_recorder.writer import Writer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    """A snapshot of how the recorder is doing."""

    target: str
    influx_reachable: bool | None
    spooled: int
    spool_max: int
    spool_near_full: bool
    dropped: int
    dead_letters: int
    written: int
    received: int
    last_write_at: datetime | None
    last_error: str | None

    @property
    def ok(self) -> bool:
        """Writing, and nothing dropped."""
        return bool(self.influx_reachable) and not self.dropped and not self.spool_near_full


class HealthReporter:
    """Builds Health snapshots and reports them every interval."""

    def __init__(self, spool: Spool, writer: Writer, ingest: Ingest, buses: list[Bus], *,
                 interval_s: float = 10.0) -> None:
        self.spool = spool
        self.writer = writer
        self.ingest = ingest
        self.buses = buses
        self.interval_s = interval_s

    def snapshot(self, target: str) -> Health:
        """Health now."""
        s = self.writer.stats
        return Health(target=target, influx_reachable=s.influx_ok, spooled=self.spool.size,
                      spool_max=self.spool.max_points, spool_near_full=self.spool.near_full,
                      dropped=self.spool.dropped, dead_letters=self.spool.dead_count,
                      written=s.written, received=self.ingest.received,
                      last_write_at=s.last_write_at, last_error=s.last_error)

    async def run(self, target: str) -> None:
        """Report every interval until cancelled."""
        while True:
            health = self.snapshot(target)
            self.publish(health)
            await asyncio.sleep(self.interval_s)

    def publish(self, health: Health) -> None:
        """Log a health snapshot (debug when fine, warning when not)."""
        level = logging.DEBUG if health.ok or health.influx_reachable is None else logging.WARNING
        log.log(level, "health: %s", asdict(health))
