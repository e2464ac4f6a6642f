"""The station's display messages: stored on disk, shown on the bus (`ocpp/display`, retained).

Version-neutral: a protocol's request handlers set, find and clear messages here (2.0.1's
SetDisplayMessage ..., 1.6 has none, so its list stays empty). After every model step and at
each message's start and end time (the station's ticker asks `next_due`) the messages past their
end or bound to a transaction that ended are removed, and the list shown now is published when
it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import MessagePriority, MessageState
from voltbus_common.models import DisplayMessage, DisplayMessages
from voltbus_ocpp.model.display import DisplayBoard, Message, states_of
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.repositories import DisplayMessageTable
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)


class Display:
    """The display messages of one station."""

    def __init__(self, store: Store, bus: Bus, model: StationModel,
                 clock: Callable[[], datetime]) -> None:
        self.table = DisplayMessageTable(store)
        self.board = DisplayBoard(self.table.load())
        self.bus = bus
        self.model = model
        self.clock = clock
        self._shown: list[Message] | None = None  # what was published last

    def __len__(self) -> int:
        return len(self.board)

    def full_for(self, message_id: int) -> bool:
        """No room for another message with this id."""
        return self.board.full_for(message_id)

    def running(self) -> frozenset[int]:
        """The local ids of the transactions running now."""
        return frozenset(c.facts.tx.local_id for c in self.model.connectors.values()
                         if c.facts.tx is not None)

    def set(self, message: Message) -> None:
        """Store (or replace) a message and show it if it is due."""
        self.board.set(message)
        self.table.put(message)
        log.info("display message %d set (%s%s)", message.id, message.priority.value,
                 f", transaction {message.transaction_ref}" if message.transaction_ref else "")
        self.refresh()

    def clear(self, message_id: int) -> bool:
        """Remove a message; False when there is none with that id."""
        found = self.board.clear(message_id)
        if found:
            self.table.delete([message_id])
            self.refresh()
        return found

    def find(self, ids: Iterable[int] | None = None, priority: MessagePriority | None = None,
             state: MessageState | None = None) -> list[Message]:
        """The stored messages matching every criterion given, by id."""
        self.refresh()  # an expired one is not reported
        return self.board.find(ids, priority, state)

    def next_due(self, now: datetime) -> datetime | None:
        """When what is shown changes by itself next."""
        return self.board.next_due(now)

    def refresh(self) -> None:
        """Drop what has ended and publish what is shown now, if it changed."""
        if not self.board.messages and self._shown == []:
            return  # nothing stored, nothing shown: the usual case, after every meter reading
        now = self.clock()
        gone = self.board.gone(now, self.running())
        for message_id in gone:
            self.board.clear(message_id)
        if gone:
            self.table.delete(gone)
            log.info("display message(s) %s removed: ended, or their transaction did",
                     ", ".join(map(str, gone)))
        statuses = {n: c.status for n, c in self.model.connectors.items()}
        shown = self.board.current(now, lambda connector: states_of(
            statuses, self.model.station_operative, connector))
        if shown != self._shown:
            self._shown = shown
            self.bus.publish(ch.DISPLAY, DisplayMessages(
                messages=[_payload(m) for m in shown], ts=now))


def _payload(m: Message) -> DisplayMessage:
    return DisplayMessage(id=m.id, priority=m.priority, format=m.format, content=m.content,
                          language=m.language, state=m.state, starts_at=m.starts_at,
                          ends_at=m.ends_at, transaction_ref=m.transaction_ref,
                          connector=m.connector)
