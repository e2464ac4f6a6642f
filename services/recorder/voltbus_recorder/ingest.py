"""Bus messages -> points in the spool. Handlers only convert and stage; a task commits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, tzinfo
from typing import Any

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.models import OcppConnection, SessionSummary
from voltbus_recorder import points
from voltbus_recorder.spool import Spool

log = logging.getLogger(__name__)

# channel -> how its payload becomes a point (station, connector, payload)
_PER_CONNECTOR: tuple[tuple[ch.Channel[Any], Callable[[str, int, Any], str]], ...] = (
    (ch.METER, points.meter),
    (ch.OCPP_STATUS, points.status),
    (ch.PILOT, points.pilot),
    (ch.RELAY, points.relay),
    (ch.HW_ERROR, points.hw_error),
    (ch.CHARGING, points.charging),
)


class Ingest:
    """Subscribes a bus to everything worth recording and stages each point in the spool."""

    def __init__(self, spool: Spool, on_commit: Callable[[], None], *,
                 zone: tzinfo = UTC, commit_interval_s: float = 0.1,
                 commit_max: int = 2000) -> None:
        self.spool = spool
        self.on_commit = on_commit
        self.zone = zone
        self.commit_interval_s = commit_interval_s
        self.commit_max = commit_max
        self.received = 0
        self._urgent = asyncio.Event()

    def attach(self, bus: Bus, *, all_stations: bool = False) -> None:
        """Register handlers on bus (for its station, or every station with all_stations)."""
        args: dict[str, str | int] = {"station": "+"} if all_stations else {}
        for channel, to_point in _PER_CONNECTOR:
            bus.on(channel, self._handler(to_point), **args)
        bus.on(ch.SESSION, self._session, **args)
        bus.on(ch.OCPP_CONNECTION, self._connection, **args)

    def _handler(self, to_point: Callable[[str, int, Any], str]
                 ) -> Callable[[Received[Any]], Awaitable[None]]:
        async def handle(msg: Received[Any]) -> None:
            self._add(to_point(msg.station, msg.connector, msg.payload))
        return handle

    async def _session(self, msg: Received[SessionSummary]) -> None:
        if msg.payload is not None:
            self._add(points.session(msg.station, msg.connector, msg.payload, self.zone))

    async def _connection(self, msg: Received[OcppConnection]) -> None:
        if msg.payload is not None:
            self._add(points.connection(msg.station, msg.payload))

    def _add(self, line: str) -> None:
        self.received += 1
        if self.spool.stage(line) and self.spool.staged >= self.commit_max:
            self._urgent.set()

    async def run(self) -> None:
        """Commit staged points every commit_interval_s (sooner when many wait), until cancelled."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), self.commit_interval_s)
                self._urgent.clear()
                if self.spool.commit():
                    self.on_commit()
        finally:
            self.spool.commit()

