"""Sends the station's messages over the current session, one at a time, in order.

Live messages (statuses, Authorize, heartbeats, triggered ones) go in a memory queue that is dropped
when the link goes down; transaction records come from the durable outbox and stay there until
answered. A heartbeat is sent when nothing else was sent for the heartbeat interval. Messages are
version-neutral: the session's protocol adapter converts each when it is sent.

An Authorize is a person waiting at the charger: it goes ahead of queued statuses and stored
transaction messages (a backlog of meter values after an outage can take minutes), behind only the
CALL in flight and other Authorizes. Everything else keeps its order, so statuses still follow the
transaction start they describe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from voltbus_common.aio import timeout
from voltbus_ocpp.adapter import CallFailed, Session
from voltbus_ocpp.messages import Heartbeat, Message
from voltbus_ocpp.model.config import StationConfig
from voltbus_ocpp.model.events import Event, SendAuthorize
from voltbus_ocpp.offline_queue import OfflineQueue
from voltbus_ocpp.records import Record, decode, starts_transaction

log = logging.getLogger(__name__)

Answer = Callable[[Event | None], None]

PRIORITY_MESSAGES: tuple[type, ...] = (SendAuthorize,)
"""Sent ahead of the stored backlog (was PRIORITY_ACTIONS = {"Authorize"})."""


def _is_priority(item: Live | _Durable) -> bool:
    return isinstance(item, Live) and isinstance(item.message, PRIORITY_MESSAGES)


def _name(message: Message | Record) -> str:
    return type(message).__name__


@dataclass(frozen=True)
class Live:
    """A message that only makes sense now; answer gets the model event its answer makes."""

    message: Message
    answer: Answer | None = None


class _Durable:
    """Marker: send the oldest outbox entry."""


DURABLE = _Durable()


class Messenger:
    """The station's sender; `run(session)` while registered, `go_offline()` when it drops."""

    def __init__(self, station: str, queue: OfflineQueue, config: StationConfig, *,
                 on_durable_answer: Callable[[Record, int | None, Event | None], None],
                 on_durable_dropped: Callable[[Record, int | None], None],
                 on_heartbeat: Callable[[], None] = lambda: None) -> None:
        self.station = station
        self.on_heartbeat = on_heartbeat  # a Heartbeat was answered
        self.queue = queue
        self.config = config
        self.on_durable_answer = on_durable_answer
        self.on_durable_dropped = on_durable_dropped
        self.items: deque[Live | _Durable] = deque()
        self.wake = asyncio.Event()
        self.online = False
        self.last_sent = time.monotonic()

    def send(self, message: Message, answer: Answer | None = None) -> None:
        """Queue a live message; answer(None) at once when offline."""
        if not self.online:
            if answer is not None:
                answer(None)
            return
        item = Live(message, answer)
        if isinstance(message, PRIORITY_MESSAGES):
            self._insert_priority(item)
        else:
            self.items.append(item)
        self.wake.set()
    def _insert_priority(self, item: Live) -> None:
        """Behind the CALL in flight (items[0]: run() removes it only once answered) and the
        Authorizes queued before it; ahead of queued statuses and other live messages too (a
        StatusNotification of another connector cost the driver one more round trip: issue 14),
        and of the stored backlog. Those keep their order among themselves."""
        index = 1
        while index < len(self.items) and _is_priority(self.items[index]):
            index += 1
        if index > len(self.items):
            self.items.append(item)
        else:
            self.items.insert(index, item)

    def reschedule(self) -> None:
        """The heartbeat interval changed: the wait for the next heartbeat starts over."""
        self.wake.set()

    def durable_added(self) -> None:
        """An outbox entry was stored: send it in its turn."""
        self.items.append(DURABLE)
        self.wake.set()

    def go_online(self, first: list[Live]) -> None:
        """Registered: the given messages first, then the whole stored backlog."""
        self.online = True
        self.items = deque([*first, *(DURABLE for _ in range(len(self.queue)))])
        self.wake.set()

    def go_offline(self) -> None:
        """The link dropped: live messages are answered None and forgotten."""
        self.online = False
        pending = [i for i in self.items if isinstance(i, Live)]
        self.items.clear()
        for item in pending:
            if item.answer is not None:
                item.answer(None)

    async def run(self, session: Session) -> None:
        """Send until the connection fails (the exception ends the session)."""
        task = asyncio.current_task()
        while True:
            if task is not None and task.cancelling():
                # Python 3.11's wait_for (used inside ocpp's call()) can swallow a cancel that
                # races with the answer; honour it here instead of looping on.
                raise asyncio.CancelledError
            if not self.items:
                self.wake.clear()
                interval = self.config.heartbeat_interval_s
                wait = None if interval <= 0 else max(0.0, self.last_sent + interval
                                                      - time.monotonic())
                try:  # a timeout, not wait_for: 3.11's wait_for can swallow a cancel
                    async with timeout(wait):
                        await self.wake.wait()
                except TimeoutError:
                    self.items.append(Live(Heartbeat()))
                continue
            item = self.items[0]
            if isinstance(item, Live):
                await self._live(session, item)
                self.items.popleft()
            elif await self._durable(session):
                self.items.popleft()

    async def _live(self, session: Session, item: Live) -> None:
        answer: Event | None
        try:
            answer = await session.send(item.message)
            if isinstance(item.message, Heartbeat):
                self.on_heartbeat()
        except CallFailed as exc:
            log.warning("%s: %s answered with CALLERROR %s", self.station, _name(item.message),
                        exc)
            answer = None
        except TimeoutError:
            log.warning("%s: no answer to %s", self.station, _name(item.message))
            answer = None
        self.last_sent = time.monotonic()
        if item.answer is not None:
            item.answer(answer)

    async def _committed(self) -> None:
        """Let the pending group commit go first: a record stored in this loop iteration (the
        StartTransaction an Authorize answer makes, handled in this very task) is on disk before
        it is on the wire, and the bus commands its commit released (the relay) go out before
        this task spends a CALL's encoding and validation on the loop (issue 14)."""
        store = self.queue.store
        if store.db.in_transaction:
            # 1st: the commit and the bus send loop it woke (both scheduled before we resume);
            # 2nd: the publish tasks that loop starts (they write the PUBLISH packets)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            store.flush()  # a group opened since then: commit it now

    async def _durable(self, session: Session) -> bool:
        """Send the oldest outbox entry; True when it is finished with (answered or given up)."""
        entry = self.queue.peek()
        if entry is None:
            return True
        try:
            record = decode(entry.kind, entry.payload, entry.local_id)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("%s: dropping unreadable outbox entry %d (%s): %s", self.station,
                      entry.seq, entry.kind, exc)
            self.queue.done(entry.seq)
            return True
        transaction_id = None
        if not starts_transaction(record) and entry.local_id is not None:
            transaction_id = self.queue.transaction_id(entry.local_id)
            if transaction_id is None:  # its start was given up
                log.warning("%s: dropping %s of transaction %s: it never got a transaction id",
                            self.station, entry.kind, entry.local_id)
                self.queue.done(entry.seq)
                return True
        await self._committed()
        try:
            answer = await session.send_record(record, transaction_id)
        except (CallFailed, TimeoutError) as exc:
            attempts = self.queue.failed(entry.seq)
            limit = self.config.message_attempts
            log.warning("%s: %s failed (%s), attempt %d of %d", self.station, entry.kind,
                        exc or "timeout", attempts, limit)
            if attempts >= limit:
                self.queue.done(entry.seq)
                self.on_durable_dropped(record, entry.local_id)
                return True
            await asyncio.sleep(self.config.message_retry_interval_s * attempts)
            return False
        self.last_sent = time.monotonic()
        self.queue.done(entry.seq)
        self.on_durable_answer(record, entry.local_id, answer)
        return True
