"""Bus messages -> points in the spool. Handlers only convert and stage; a task commits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import ServiceState
from voltbus_common.models import OcppConnection, SessionSummary, utcnow
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
                 commit_max: int = 2000, link_sample_s: float = 300.0) -> None:
        self.spool = spool
        self.on_commit = on_commit
        self.zone = zone
        self.commit_interval_s = commit_interval_s
        self.commit_max = commit_max
        self.link_sample_s = link_sample_s
        self.received = 0
        self._links: dict[str, OcppConnection] = {}
        self._gateway_online: dict[str, bool] = {}
        self._seen_service: dict[tuple[str, str], ServiceState] = {}
        self._urgent = asyncio.Event()

    def attach(self, bus: Bus, *, all_stations: bool = False) -> None:
        """Register handlers on bus (for its station, or every station with all_stations)."""
        args: dict[str, str | int] = {"station": "+"} if all_stations else {}
        for channel, to_point in _PER_CONNECTOR:
            bus.on(channel, self._handler(to_point), **args)
        bus.on(ch.SESSION, self._session, **args)
        bus.on(ch.OCPP_CONNECTION, self._connection, **args)
        bus.on(ch.SERVICE_STATUS, self._service, service="+", **args)

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
            self._links[msg.station] = msg.payload
            self._add(points.connection(msg.station, msg.payload))

    async def _service(self, msg: Received[ServiceState]) -> None:
        if msg.payload is None:
            return
        service = msg.args["service"]
        if service == "gateway":
            self._gateway_online[msg.station] = msg.payload is ServiceState.ONLINE
        if msg.retain and self._seen_service.get((msg.station, service)) is msg.payload:
            return  # the same retained state again after a reconnect: nothing new
        self._seen_service[(msg.station, service)] = msg.payload
        self._add(points.service_status(msg.station, service, msg.payload, utcnow()))

    def sample_links(self) -> None:
        """Re-record every known OCPP link state now (see points.connection_sample)."""
        at = _floor(utcnow(), self.link_sample_s)
        for station, link in self._links.items():
            self._add(points.connection_sample(station, link, at,
                                               gateway_online=self._gateway_online.get(station)))

    async def run_link_sampler(self) -> None:
        """sample_links() every link_sample_s, until cancelled."""
        while True:
            await asyncio.sleep(self.link_sample_s - time.time() % self.link_sample_s)
            self.sample_links()

    def _add(self, line: str) -> None:
        self.received += 1
        if self.spool.stage(line) and self.spool.staged >= self.commit_max:
            self._urgent.set()

    async def run(self) -> None:
        """Commit staged points every commit_interval_s (sooner when many wait), until cancelled.

        What is still staged when cancelled is committed by Spool.close().
        """
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), self.commit_interval_s)
            self._urgent.clear()
            try:
                committed = await self.spool.commit_async()
            except sqlite3.Error as exc:  # disk full, I/O error: keep the points staged, retry
                log.error("cannot write to the spool %s: %s; %d points wait in memory",
                          self.spool.path, exc, self.spool.staged)
                await asyncio.sleep(1.0)
                continue
            if committed:
                self.on_commit()



def _floor(ts: datetime, step_s: float) -> datetime:
    """ts rounded down to a multiple of step_s since the epoch (so a repeat is the same point)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=step_s)
    return epoch + (ts - epoch) // step * step
