"""Sends the station's CALLs over the current connection, one at a time, in order.

Live messages (StatusNotification, Authorize, Heartbeat, triggered ones) go in a memory queue that
is dropped when the link goes down; transaction messages come from the durable outbox and stay
there until answered. Heartbeat is sent when nothing else was sent for HeartbeatInterval.

An Authorize is a person waiting at the charger: it goes ahead of stored transaction messages (a
backlog of MeterValues after an outage can take minutes), behind only the CALL in flight and other
Authorizes. Everything else keeps its order, so StatusNotifications still follow the
StartTransaction they describe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ocpp.charge_point import camel_to_snake_case, remove_nones, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.v16 import ChargePoint, call

from voltbus_ocpp.model.config import StationConfig
from voltbus_ocpp.offline_queue import OfflineQueue

log = logging.getLogger(__name__)

Answer = Callable[[dict[str, Any] | None], None]

PRIORITY_ACTIONS = frozenset({"Authorize"})


@dataclass(frozen=True)
class Live:
    """A message that only makes sense now."""

    action: str
    payload: dict[str, Any]
    answer: Answer | None = None


class _Durable:
    """Marker: send the oldest outbox entry."""


DURABLE = _Durable()


async def send_call(cp: ChargePoint, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Send a CALL given as a camelCase payload; its camelCase answer (OCPPError on CALLERROR)."""
    request = getattr(call, action)(**camel_to_snake_case(payload))
    result = await cp.call(request, suppress=False)
    data = {k: getattr(result, k) for k in result.__dataclass_fields__}
    return snake_to_camel_case(remove_nones(data))  # type: ignore[no-any-return]


class Messenger:
    """The station's sender; `run(cp)` while registered, `stop()` when the link drops."""

    def __init__(self, station: str, queue: OfflineQueue, config: StationConfig, *,
                 on_durable_answer: Callable[[str, int | None, dict[str, Any]], None],
                 on_durable_dropped: Callable[[str, int | None], None]) -> None:
        self.station = station
        self.queue = queue
        self.config = config
        self.on_durable_answer = on_durable_answer
        self.on_durable_dropped = on_durable_dropped
        self.items: deque[Live | _Durable] = deque()
        self.wake = asyncio.Event()
        self.online = False
        self.last_sent = time.monotonic()

    def send(self, action: str, payload: dict[str, Any], answer: Answer | None = None) -> None:
        """Queue a live message; answer(None) at once when offline."""
        if not self.online:
            if answer is not None:
                answer(None)
            return
        item = Live(action, payload, answer)
        if action in PRIORITY_ACTIONS:
            self._insert_priority(item)
        else:
            self.items.append(item)
        self.wake.set()

    def _insert_priority(self, item: Live) -> None:
        """Before the first queued durable message; never before items[0], which may be the CALL
        in flight (run() removes it only once answered)."""
        for index in range(1, len(self.items)):
            if isinstance(self.items[index], _Durable):
                self.items.insert(index, item)
                return
        self.items.append(item)

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

    async def run(self, cp: ChargePoint) -> None:
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
                try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                    async with asyncio.timeout(wait):
                        await self.wake.wait()
                except TimeoutError:
                    self.items.append(Live("Heartbeat", {}))
                continue
            item = self.items[0]
            if isinstance(item, Live):
                await self._live(cp, item)
                self.items.popleft()
            elif await self._durable(cp):
                self.items.popleft()

    async def _live(self, cp: ChargePoint, item: Live) -> None:
        try:
            answer: dict[str, Any] | None = await send_call(cp, item.action, item.payload)
        except OCPPError as exc:
            log.warning("%s: %s answered with CALLERROR %s", self.station, item.action, exc)
            answer = None
        except TimeoutError:
            log.warning("%s: no answer to %s", self.station, item.action)
            answer = None
        self.last_sent = time.monotonic()
        if item.answer is not None:
            item.answer(answer)

    async def _durable(self, cp: ChargePoint) -> bool:
        """Send the oldest outbox entry; True when it is finished with (answered or given up)."""
        entry = self.queue.peek()
        if entry is None:
            return True
        payload = self.queue.ready(entry)
        if payload is None:
            log.warning("%s: dropping %s of transaction %s: it never got a transactionId",
                        self.station, entry.action, entry.local_id)
            self.queue.done(entry.seq)
            return True
        try:
            answer = await send_call(cp, entry.action, payload)
        except (OCPPError, TimeoutError) as exc:
            attempts = self.queue.failed(entry.seq)
            limit = self.config.message_attempts
            log.warning("%s: %s failed (%s), attempt %d of %d", self.station, entry.action,
                        exc or "timeout", attempts, limit)
            if attempts >= limit:
                self.queue.done(entry.seq)
                self.on_durable_dropped(entry.action, entry.local_id)
                return True
            await asyncio.sleep(self.config.message_retry_interval_s * attempts)
            return False
        self.last_sent = time.monotonic()
        self.queue.done(entry.seq)
        self.on_durable_answer(entry.action, entry.local_id, answer)
        return True
