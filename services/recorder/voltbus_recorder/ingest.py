"""Received messages -> points in the spool. Handlers only convert and stage; a task commits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from voltbus_common import channels as ch
from voltbus_common.bus import Received
from voltbus_common.channels import PayloadError
from voltbus_common.enums import ServiceState
from voltbus_common.models import (
    OcppConnection,
    SessionCost,
    SessionSummary,
    SiteState,
    utcnow,
)
from voltbus_recorder import points
from voltbus_recorder.inbox import Message
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


Ack = Callable[[list[int]], None]


@dataclass(frozen=True, slots=True)
class _Route:
    """What a topic is: its channel, handler and placeholders (cached per topic)."""

    channel: ch.Channel[Any]
    handler: Callable[[Received[Any]], None]
    args: dict[str, str]
    meter: bool


class Ingest:
    """Turns received messages into points staged in the spool, and commits them."""

    def __init__(self, spool: Spool, on_commit: Callable[[], None], *, root: str = ch.DEFAULT_ROOT,
                 on_reject: Callable[[str, str, str], None] | None = None,
                 zone: tzinfo = UTC, commit_interval_s: float = 0.1,
                 commit_max: int = 2000, stage_max: int = 50_000,
                 link_sample_s: float = 300.0) -> None:
        self.spool = spool
        self.on_commit = on_commit
        self.root = root
        self.on_reject = on_reject
        self.zone = zone
        self.commit_interval_s = commit_interval_s
        self.commit_max = commit_max
        self.stage_max = stage_max
        self.link_sample_s = link_sample_s
        self.received = 0
        self.rejected = 0
        self._links: dict[str, OcppConnection] = {}
        self._gateway_online: dict[str, bool] = {}
        self._seen_service: dict[tuple[str, str], ServiceState] = {}
        self._urgent = asyncio.Event()
        self._pending = asyncio.Event()  # something staged or waiting for an ack
        self._committed = asyncio.Event()
        self._acks: list[tuple[Ack, list[int]]] = []
        self._channels: list[tuple[ch.Channel[Any], Callable[[Received[Any]], None]]] = [
            *((c, self._handler(f)) for c, f in _PER_CONNECTOR),
            (ch.SESSION, self._session), (ch.OCPP_CONNECTION, self._connection),
            (ch.SERVICE_STATUS, self._service), (ch.ENERGY_SITE, self._site),
            (ch.ENERGY_COST, self._cost)]
        self._routes: dict[str, _Route | None] = {}

    def filters(self, station: str, *, site: str | None = None) -> list[tuple[str, int]]:
        """The (topic filter, QoS) pairs to subscribe for station (`+`: every station, and
        every site); with site, also that site's `energy/site` (the energy manager's id)."""
        found = [(c.filter(self.root, station=station), c.qos) for c, _ in self._channels
                 if c is not ch.ENERGY_SITE or station == "+"]
        if site is not None and station != "+":
            found.append((ch.ENERGY_SITE.filter(self.root, station=site), ch.ENERGY_SITE.qos))
        return found

    # --- receiving ---------------------------------------------------------------------------

    async def feed(self, batch: list[Message], ack: Ack) -> None:
        """Stage the points of a batch; ack its QoS 1 packet ids once they are committed."""
        for msg in batch:
            route = (self._routes[msg.topic] if msg.topic in self._routes
                     else self._route(msg.topic))
            if route is None:
                continue
            try:
                if route.meter and (line := points.meter_json(
                        route.args["station"], int(route.args["connector"]), msg.payload)):
                    self._add(line)
                    continue
                try:
                    payload = route.channel.decode(msg.payload)
                except PayloadError as exc:
                    self._reject(msg.topic, route.args["station"], str(exc))
                    continue
                route.handler(Received(msg.topic, route.args, payload, msg.retain))
            except Exception:  # a handler bug must not take the recorder down
                log.exception("cannot record the message on %s", msg.topic)
        ids = [m.packet_id for m in batch if m.packet_id]
        if ids:
            self._acks.append((ack, ids))
            self._urgent.set()  # the broker holds back QoS 1 deliveries until we answer
            self._pending.set()
        while self.spool.staged >= self.stage_max:  # the disk is slower than the broker: wait
            self._urgent.set()
            await self._committed.wait()

    def _route(self, topic: str) -> _Route | None:
        """The route of a topic not seen before (None: not ours, or rejected)."""
        if len(self._routes) >= 50_000:
            self._routes.clear()
        route: _Route | None = None
        for channel, handler in self._channels:
            args = channel.match(self.root, topic)
            if args is None:
                continue
            connector = args.get("connector")
            if connector is not None and not (connector.isdigit() and int(connector) <= 10_000):
                # not cached: each such message is rejected (and announced) as the Bus would
                self._reject(topic, args["station"],
                             f"connector {connector!r} is not a connector number")
                return None
            route = _Route(channel, handler, args, channel is ch.METER)
            break
        self._routes[topic] = route
        return route

    def _reject(self, topic: str, station: str, reason: str) -> None:
        self.rejected += 1
        if self.on_reject is not None:
            self.on_reject(topic, station, reason)
        else:
            log.warning("dropped message on %s: %s", topic, reason)

    def _handler(self, to_point: Callable[[str, int, Any], str]
                 ) -> Callable[[Received[Any]], None]:
        def handle(msg: Received[Any]) -> None:
            self._add(to_point(msg.station, msg.connector, msg.payload))
        return handle

    def _session(self, msg: Received[SessionSummary]) -> None:
        if msg.payload is not None:
            self._add(points.session(msg.station, msg.connector, msg.payload, self.zone))

    def _site(self, msg: Received[SiteState]) -> None:
        if msg.payload is not None:
            self._add(points.site(msg.station, msg.payload))

    def _cost(self, msg: Received[SessionCost]) -> None:
        if msg.payload is not None and (point := points.session_cost(
                msg.station, msg.connector, msg.payload)) is not None:
            self._add(point)

    def _connection(self, msg: Received[OcppConnection]) -> None:
        if msg.payload is not None:
            self._links[msg.station] = msg.payload
            self._add(points.connection(msg.station, msg.payload))

    def _service(self, msg: Received[ServiceState]) -> None:
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
        self.spool.stage(line)
        self._pending.set()
        if self.spool.staged >= self.commit_max:
            self._urgent.set()

    async def run(self) -> None:
        """Commit staged points every commit_interval_s (sooner when many wait or a QoS 1
        message waits for its acknowledgement), until cancelled.

        What is still staged when cancelled is committed by Spool.close().
        """
        failures = 0
        while True:
            if not (self.spool.staged or self._acks):  # idle: sleep until a message comes
                self._pending.clear()
                await self._pending.wait()
            if not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.commit_interval_s):  # not wait_for: 3.11
                        await self._urgent.wait()
            self._urgent.clear()
            acks, self._acks = self._acks, []  # these ids' points are all staged now
            try:
                committed = await self.spool.commit_async()
            except sqlite3.Error as exc:  # disk full, I/O error: keep the points staged, retry
                self._acks[:0] = acks
                failures += 1
                if failures in (1, 10) or failures % 60 == 0:
                    log.error("cannot write to the spool %s (%d times): %s; %d points wait in "
                              "memory", self.spool.path, failures, exc, self.spool.staged)
                await asyncio.sleep(1.0)
                continue
            if failures:
                log.info("the spool %s takes writes again", self.spool.path)
                failures = 0
            for ack, ids in acks:
                ack(ids)
            self._committed.set()
            self._committed = asyncio.Event()
            if committed:
                self.on_commit()


def _floor(ts: datetime, step_s: float) -> datetime:
    """ts rounded down to a multiple of step_s since the epoch (so a repeat is the same point)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    step = timedelta(seconds=step_s)
    return epoch + (ts - epoch) // step * step
