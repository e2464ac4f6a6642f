"""Display messages the central system sets, version-neutral: which are stored, which are shown
now and in what order, and when that changes next (a start or an end time).

A message may be bound to a state of the station (or of its connector's EVSE, when it is for
that connector's display) and to a running transaction (by the model's local id: it goes when
that transaction ends, also when a restart ends it). OCPP 2.0.1 part 2 O01-O06 give the rules;
`protocol/v201/` maps its SetDisplayMessage/GetDisplayMessages/ClearDisplayMessage onto this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from voltbus_common.enums import (
    ConnectorStatus,
    MessageFormat,
    MessagePriority,
    MessageState,
)

MAX_MESSAGES = 50  # messages kept at once (2.0.1 DisplayMessageCtrlr.DisplayMessages maxLimit)
SUPPORTED_FORMATS = (MessageFormat.ASCII, MessageFormat.UTF8, MessageFormat.URI)  # no HTML
SUPPORTED_PRIORITIES = tuple(MessagePriority)
SUPPORTED_STATES = tuple(MessageState)
_ORDER = {MessagePriority.ALWAYS_FRONT: 0, MessagePriority.IN_FRONT: 1,
          MessagePriority.NORMAL_CYCLE: 2}
_CHARGING = frozenset({ConnectorStatus.CHARGING, ConnectorStatus.SUSPENDED_EV,
                       ConnectorStatus.SUSPENDED_EVSE})


@dataclass(frozen=True)
class Message:
    """One stored display message.

    transaction_ref: the protocol's id of the transaction it is bound to (reported back as
    given); local_id: that transaction's local id, which the binding follows. connector: the
    display of that connector only (None: the station's); display: the display component's name
    as the central system gave it. set_at: when it was set (the newest AlwaysFront one wins)."""

    id: int
    priority: MessagePriority
    format: MessageFormat
    content: str
    set_at: datetime
    language: str | None = None
    state: MessageState | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    transaction_ref: str | None = None
    local_id: int | None = None
    connector: int | None = None
    display: str | None = None


StatesOf = Callable[[int | None], frozenset[MessageState]]


def states_of(statuses: dict[int, ConnectorStatus | None], station_operative: bool,
              connector: int | None) -> frozenset[MessageState]:
    """The states a message condition can match: one connector's (Charging while charging or
    suspended, Faulted, Unavailable, otherwise Idle), or the station's (None): Charging if any
    connector charges, else Idle; Faulted if any is faulted; Unavailable when the station is
    inoperative or every connector is."""
    if connector is not None:
        status = statuses.get(connector)
        if status in _CHARGING:
            return frozenset({MessageState.CHARGING})
        if status is ConnectorStatus.FAULTED:
            return frozenset({MessageState.FAULTED})
        if status is ConnectorStatus.UNAVAILABLE:
            return frozenset({MessageState.UNAVAILABLE})
        return frozenset({MessageState.IDLE})
    found = {MessageState.CHARGING if any(s in _CHARGING for s in statuses.values())
             else MessageState.IDLE}
    if any(s is ConnectorStatus.FAULTED for s in statuses.values()):
        found.add(MessageState.FAULTED)
    if not station_operative or (statuses and all(
            s is ConnectorStatus.UNAVAILABLE for s in statuses.values())):
        found.add(MessageState.UNAVAILABLE)
    return frozenset(found)


class DisplayBoard:
    """The stored messages by id; what is shown now is `current`."""

    def __init__(self, messages: Iterable[Message] = ()) -> None:
        self.messages: dict[int, Message] = {m.id: m for m in messages}

    def __len__(self) -> int:
        return len(self.messages)

    def full_for(self, message_id: int) -> bool:
        """Storing a new message with this id would exceed MAX_MESSAGES (replacing one does not,
        O06)."""
        return message_id not in self.messages and len(self.messages) >= MAX_MESSAGES

    def set(self, message: Message) -> None:
        """Store a message; one with the same id is replaced (O06)."""
        self.messages[message.id] = message

    def clear(self, message_id: int) -> bool:
        """Remove a message (O05); False when there was none with that id."""
        return self.messages.pop(message_id, None) is not None

    def find(self, ids: Iterable[int] | None = None, priority: MessagePriority | None = None,
             state: MessageState | None = None) -> list[Message]:
        """The stored messages matching every criterion given (O03/O04), by id."""
        wanted = None if ids is None else set(ids)
        return [m for _, m in sorted(self.messages.items())
                if (wanted is None or m.id in wanted)
                and (priority is None or m.priority is priority)
                and (state is None or m.state is state)]

    def gone(self, now: datetime, running: frozenset[int]) -> list[int]:
        """The messages to remove: past their end time (O01), or bound to a transaction that
        is no longer running (O02)."""
        return [m.id for m in self.messages.values()
                if (m.ends_at is not None and m.ends_at <= now)
                or (m.local_id is not None and m.local_id not in running)]

    def current(self, now: datetime, states: StatesOf) -> list[Message]:
        """What the station shows now, in display order: the newest AlwaysFront message (a newer
        one replaces it on the display), then InFront and NormalCycle ones, each oldest first.
        A message shows from its start time until its end time, in its state (if it has one)."""
        shown = [m for m in self.messages.values()
                 if (m.starts_at is None or m.starts_at <= now)
                 and (m.ends_at is None or m.ends_at > now)
                 and (m.state is None or m.state in states(m.connector))]
        front = [m for m in shown if m.priority is MessagePriority.ALWAYS_FRONT]
        newest = max(front, key=lambda m: (m.set_at, m.id), default=None)
        rest = sorted((m for m in shown if m.priority is not MessagePriority.ALWAYS_FRONT),
                      key=lambda m: (_ORDER[m.priority], m.set_at, m.id))
        return ([newest] if newest is not None else []) + rest

    def next_due(self, now: datetime) -> datetime | None:
        """The next start or end time after now (what is shown changes then)."""
        times = [t for m in self.messages.values() for t in (m.starts_at, m.ends_at)
                 if t is not None and t > now]
        return min(times, default=None)
