"""Every frame from the central system passes here before the ocpp package routes it.

A hostile or broken central system must not end the connection, the sessions or the process, nor
grow the station's memory or its log without bound (issue 15, docs/reliability.md "Bad input and
attackers"):

- a bad CALL gets its version's CALLERROR (`frames.check_frame`), a frame without a readable
  CALL id is dropped;
- a CALLRESULT or CALLERROR is handed on only when it answers a CALL the station has in flight;
  a reply to nothing (or to a CALL that already timed out) is dropped. The package queues every
  reply otherwise, without a bound, and logs each again when the next CALL wades through them;
- anything that still raises while a frame is routed (a defect) is answered InternalError when the
  CALL id is readable, and the connection stays up;
- drops are logged rate-limited (`RejectLog`: the first 5 per kind, then one summary a minute).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed

from voltbus_common.bus import RejectLog
from voltbus_ocpp.protocol.frames import _CALL_ID, call_error

log = logging.getLogger(__name__)

TRACEBACKS = 3  # defects logged with their traceback; later ones only counted


def reply_id(frame: Any) -> str | None:
    """The unique id of a well-formed CALLRESULT [3, id, {..}] or CALLERROR [4, id, code, text,
    {..}], else None."""
    if not isinstance(frame, list) or len(frame) < 2 or not isinstance(frame[1], str):
        return None
    if frame[0] == 3 and len(frame) == 3 and isinstance(frame[2], dict):
        return frame[1]
    if frame[0] == 4 and len(frame) == 5 and isinstance(frame[2], str) and isinstance(
            frame[3], str) and isinstance(frame[4], dict):
        return frame[1]
    return None


class FrameGuard:
    """Mixin for an `ocpp` ChargePoint: list it before ChargePoint in the bases and call
    `_guard_init` in `__init__`."""

    id: str
    check: Callable[[str | bytes, set[str]], str | None]  # the version's frames.check_frame
    route_map: dict[str, Any]

    def _guard_init(self, check: Callable[[str | bytes, set[str]], str | None]) -> None:
        self.check = check
        self.awaiting: set[str] = set()  # unique ids of our CALLs waiting for their reply
        self.dropped = RejectLog()
        self.defects = 0

    async def call(self, payload: Any, suppress: bool = True, unique_id: str | None = None,
                   skip_schema_validation: bool = False) -> Any:
        """The package's call(), with its unique id known while it waits for the reply."""
        unique_id = unique_id if unique_id is not None else str(
            self._unique_id_generator())  # type: ignore[attr-defined]
        self.awaiting.add(unique_id)
        try:
            return await super().call(  # type: ignore[misc]
                payload, suppress, unique_id, skip_schema_validation)
        finally:
            self.awaiting.discard(unique_id)

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Route a frame; never raise for what the frame holds (only for the connection)."""
        try:
            await self._route(raw_msg)
        except (ConnectionClosed, asyncio.CancelledError):
            raise
        except Exception as exc:  # a defect: the frame must not end the connection
            self.defects += 1
            if self.defects <= TRACEBACKS:
                log.warning("%s: frame from central system raised %s: %.200r", self.id,
                            type(exc).__name__, raw_msg, exc_info=True)
            else:
                self._drop(f"raised {type(exc).__name__}", raw_msg)
            text = raw_msg.decode("utf-8", "replace") if isinstance(raw_msg, bytes) else raw_msg
            found = _CALL_ID.match(text[:64])
            if found:
                await self._send(call_error(  # type: ignore[attr-defined]
                    found.group(1), "InternalError", f"station failed: {type(exc).__name__}"))

    async def _route(self, raw_msg: str | bytes) -> None:
        error = self.check(raw_msg, set(self.route_map))
        if error is not None:
            self._drop(json.loads(error)[2] if error else "no CALL id to answer", raw_msg)
            if error:
                await self._send(error)  # type: ignore[attr-defined]
            return
        frame = json.loads(raw_msg)  # check_frame parsed it: a non-empty list
        if frame[0] != 2:
            unique_id = reply_id(frame)
            if unique_id is None:
                self._drop("malformed CALLRESULT/CALLERROR", raw_msg)
                return
            if unique_id not in self.awaiting:
                self._drop("reply to no CALL in flight", raw_msg)
                return
        await super().route_message(raw_msg)  # type: ignore[misc]

    def _drop(self, reason: str, raw_msg: str | bytes) -> None:
        log.debug("%s: bad frame from central system (%s): %.200r", self.id, reason, raw_msg)
        self.dropped.note(f"{self.id} central system", reason)
