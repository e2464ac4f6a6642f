"""O Display messages in OCPP 2.0.1: SetDisplayMessage (O01, O02, O06), GetDisplayMessages with
NotifyDisplayMessages (O03, O04) and ClearDisplayMessage (O05), mapped onto the station's
version-neutral display messages (`voltbus_ocpp.display`, `model/display.py`).

SetDisplayMessage's checks, in order: DisplayMessageCtrlr.Enabled false: Rejected; a format not
in SupportedFormats (HTML): NotSupportedMessageFormat; a priority or state not supported:
NotSupportedPriority / NotSupportedState (all are); a transactionId that is not running here:
UnknownTransaction; a display on an EVSE or connector the station does not have, an end time
already past or before the start: Rejected; no room for another (DisplayMessages maxLimit):
Rejected. A message with the id of a stored one replaces it (O06).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from voltbus_common.enums import MessageFormat, MessagePriority, MessageState
from voltbus_ocpp.adapter import StationCore
from voltbus_ocpp.model.display import (
    SUPPORTED_FORMATS,
    SUPPORTED_PRIORITIES,
    SUPPORTED_STATES,
    Message,
)
from voltbus_ocpp.protocol.wire_time import iso, parse_time

PAGE = 10  # messageInfo entries per NotifyDisplayMessages


def running_transaction(core: StationCore, transaction_id: str,
                        id_of: Callable[[int, datetime], str]) -> int | None:
    """The local id of the running transaction with this 2.0.1 id (ours from its start)."""
    for c in core.model.connectors.values():
        tx = c.facts.tx
        if tx is not None and transaction_id in (tx.transaction_id,
                                                 id_of(tx.local_id, tx.started_at)):
            return tx.local_id
    return None


def to_message(info: dict[str, Any], core: StationCore, enabled: bool,
               id_of: Callable[[int, datetime], str]) -> tuple[str, Message | None]:
    """A SetDisplayMessage's MessageInfoType (snake_case) as a stored message, or the status
    it is refused with."""
    content = info["message"]
    if not enabled:
        return "Rejected", None
    if content["format"] not in {f.value for f in SUPPORTED_FORMATS}:
        return "NotSupportedMessageFormat", None
    if info["priority"] not in {p.value for p in SUPPORTED_PRIORITIES}:
        return "NotSupportedPriority", None
    state = info.get("state")
    if state is not None and state not in {s.value for s in SUPPORTED_STATES}:
        return "NotSupportedState", None
    local_id = None
    tx_ref = info.get("transaction_id")
    if tx_ref is not None:
        local_id = running_transaction(core, tx_ref, id_of)
        if local_id is None:
            return "UnknownTransaction", None  # O02: not a transaction running here
    display = info.get("display")
    evse = (display or {}).get("evse")
    connector = None
    if evse is not None:
        connector = evse["id"]
        if connector not in core.model.connectors or evse.get("connector_id") not in (None, 1):
            return "Rejected", None
    now = core.clock()
    starts = parse_time(info["start_date_time"]) if info.get("start_date_time") else None
    ends = parse_time(info["end_date_time"]) if info.get("end_date_time") else None
    if ends is not None and (ends <= now or (starts is not None and ends <= starts)):
        return "Rejected", None
    if core.display.full_for(info["id"]):
        return "Rejected", None
    return "Accepted", Message(
        id=info["id"], priority=MessagePriority(info["priority"]),
        format=MessageFormat(content["format"]), content=content["content"], set_at=now,
        language=content.get("language"), state=MessageState(state) if state else None,
        starts_at=starts, ends_at=ends, transaction_ref=tx_ref, local_id=local_id,
        connector=connector, display=display["name"] if display else None)


def message_info(m: Message) -> dict[str, Any]:
    """MessageInfoType (camelCase) for NotifyDisplayMessages: the message as it was set."""
    content: dict[str, Any] = {"format": m.format.value, "content": m.content}
    if m.language is not None:
        content["language"] = m.language
    out: dict[str, Any] = {"id": m.id, "priority": m.priority.value, "message": content}
    if m.state is not None:
        out["state"] = m.state.value
    if m.starts_at is not None:
        out["startDateTime"] = iso(m.starts_at)
    if m.ends_at is not None:
        out["endDateTime"] = iso(m.ends_at)
    if m.transaction_ref is not None:
        out["transactionId"] = m.transaction_ref
    if m.display is not None:
        out["display"] = {"name": m.display, **(
            {"evse": {"id": m.connector}} if m.connector is not None else {})}
    return out


def find(core: StationCore, ids: list[int] | None, priority: str | None,
         state: str | None) -> list[Message]:
    """GetDisplayMessages' matches: every criterion given must hold (O03/O04)."""
    return core.display.find(ids, MessagePriority(priority) if priority else None,
                             MessageState(state) if state else None)


def notify_pages(request_id: int, found: list[Message]) -> list[dict[str, Any]]:
    """NotifyDisplayMessages payloads (tbc is added by the sender), PAGE messages each."""
    infos = [message_info(m) for m in found]
    return [{"requestId": request_id, "messageInfo": infos[i:i + PAGE]}
            for i in range(0, len(infos), PAGE)]
