# mypy: disable-error-code="misc"
# (the ocpp package is untyped: its ChargePoint is Any to mypy)
"""What a station's session does whatever OCPP version it speaks.

Frames are read by one task and handled by another, so the session knows when each CALL
*arrived*: a CALL that arrives while the station's previous CALL is still unanswered breaks
OCPP-J's "one CALL in flight" rule (1.6 JSON spec 4.1.1, 2.0.1 part 4 4.1.1), which a single
read-handle loop (the ocpp package's start()) cannot see. Answers to the central system's own
CALLs are routed at once, never queued behind a slow handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import PropertyConstraintViolationError

from voltbus_devcsms import rules
from voltbus_devcsms.logs import ocpp_logger, redact
from voltbus_devcsms.records import Recorded, Violation

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from voltbus_devcsms.central import CentralSystem

log = logging.getLogger("voltbus_devcsms.ocpp")


class SessionBase:
    """Mixed into each version's ocpp ChargePoint subclass (put it first in the bases)."""

    ocpp_version: str = ""
    _connection: ServerConnection
    id: str

    def __init__(self, station: str, connection: ServerConnection, csms: CentralSystem) -> None:
        super().__init__(station, connection, response_timeout=csms.response_timeout_s,  # type: ignore[call-arg]
                         logger=ocpp_logger())
        self.csms = csms
        _freeze_signatures(self.route_map)  # type: ignore[attr-defined]
        self._unanswered: dict[str, tuple[str, float]] = {}  # CALL id -> (action, arrived at)
        self.current: Recorded | None = None  # the CALL being handled
        self._awaiting: str | None = None  # the id of our own CALL in flight
        self._closing = False  # told to drop the link (close_after_answer): read nothing more

    @property
    def rejected(self) -> bool:
        """The station's last BootNotification was Rejected (on this or an earlier connection):
        it must boot again before any other CALL (1.6 section 4.2, 2.0.1 B03)."""
        return self.id in self.csms.boot_rejected

    @rejected.setter
    def rejected(self, value: bool) -> None:
        if value:
            self.csms.boot_rejected.add(self.id)
        else:
            self.csms.boot_rejected.discard(self.id)

    def boot_answered(self, status: str, interval_s: int) -> None:
        """Keep what a BootNotification answer obliges the station to (1.6 4.2, 2.0.1 B03):
        after Rejected, silence until the retry interval has expired."""
        self.rejected = status == "Rejected"
        if self.rejected:
            self.csms.rejected_until[self.id] = time.monotonic() + (
                interval_s * self.csms.behaviour.time_scale)
        else:
            self.csms.rejected_until.pop(self.id, None)

    # --- frames in ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Read frames until the connection closes; CALLs are handled in order by a worker."""
        inbox: asyncio.Queue[tuple[str, Recorded | None]] = asyncio.Queue()
        worker = asyncio.create_task(self._work(inbox), name=f"devcsms-{self.id}")
        try:
            while True:
                raw = await self._connection.recv()
                if self._closing:
                    continue  # the link is dropping: what the station sends now is lost
                if isinstance(raw, bytes):
                    raw = raw.decode("utf-8", "replace")
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s: received %s", self.id, redact(raw))
                msg = _decode(raw)
                if msg is not None and msg[0] in (3, 4):
                    await self._answered(raw, msg)
                    continue
                inbox.put_nowait((raw, None if msg is None else self._arrived(msg, raw)))
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _answered(self, raw: str, msg: list[Any]) -> None:
        """Hand the answer to our CALL in flight to its caller; any other answer is dropped."""
        kind = "CALLRESULT" if msg[0] == 3 else "CALLERROR"
        if self.rejected:
            self.violation(rules.ANSWER_WHILE_REJECTED,
                           f"{kind} {msg[1]} after a Rejected BootNotification: a rejected "
                           f"station answers no central-system request until it is accepted",
                           action=kind, unique_id=str(msg[1]))
        if msg[1] != self._awaiting:
            self.violation(rules.UNEXPECTED_ANSWER,
                           f"{kind} {msg[1]} answers no CALL in flight (awaiting "
                           f"{self._awaiting or 'none'}): unknown or too late",
                           action=kind, unique_id=str(msg[1]))
            return
        self._awaiting = None
        await super().route_message(raw)

    def _arrived(self, msg: list[Any], raw: str) -> Recorded:
        """Record a CALL as it arrives and check it is the only one in flight."""
        action, unique_id = str(msg[2]), str(msg[1])
        now = time.monotonic()
        wait_s = self.csms.behaviour.station_call_timeout_s
        pending = [(a, i) for i, (a, t) in self._unanswered.items() if now - t < wait_s]
        self._unanswered[unique_id] = (action, now)
        record = Recorded(action, None, unique_id, datetime.now(UTC), raw=raw)
        self.csms.record(self.id, record)
        if pending:
            first_action, first_id = pending[0]
            self.violation(rules.CALL_IN_FLIGHT,
                           f"{action} arrived while {first_action} {first_id} was unanswered",
                           action=action, unique_id=unique_id)
        return record

    async def _work(self, inbox: asyncio.Queue[tuple[str, Recorded | None]]) -> None:
        while True:
            raw, self.current = await inbox.get()
            try:
                await self.route_message(raw)
            finally:
                if self.current is not None:
                    self._unanswered.pop(self.current.unique_id, None)
                self.current = None

    async def route_message(self, raw_msg: str) -> None:
        """Answer a CALL the behaviour says to fail with a CALLERROR; else let ocpp route it."""
        if self.current is not None:
            action, unique_id = self.current.action, self.current.unique_id
            if self.rejected and action != "BootNotification":
                self.violation(rules.CALL_WHILE_REJECTED,
                               f"{action} after a Rejected BootNotification, without booting "
                               f"again")
            early = self.csms.rejected_until.get(self.id, 0.0) - time.monotonic()
            if self.rejected and early > 0:
                self.violation(rules.CALL_BEFORE_RETRY_INTERVAL,
                               f"{action} {early / self.csms.behaviour.time_scale:.1f} s "
                               f"before the retry interval of the Rejected BootNotification "
                               f"expired")
            if action in self.csms.behaviour.not_implemented:  # a CSMS without that feature
                await self._send(json.dumps([4, unique_id, "NotImplemented",
                                             f"{action} is not implemented here", {}]))
                return
            failing = self.csms.behaviour.fail_next
            if failing.get(action, 0) > 0:
                failing[action] -= 1
                await self._send(json.dumps([4, unique_id, "InternalError", "told to fail", {}]))
                return
        await super().route_message(raw_msg)

    # --- frames out ----------------------------------------------------------------------------

    async def _send(self, message: str) -> None:
        """Send a frame; an answer marks its CALL answered before it leaves (no race)."""
        if message[:2] in ("[3", "[4"):
            with contextlib.suppress(ValueError, IndexError, TypeError):
                self._unanswered.pop(str(json.loads(message)[1]), None)
        elif message[:2] == "[2":
            with contextlib.suppress(ValueError, IndexError, TypeError, RecursionError):
                self._awaiting = str(json.loads(message)[1])
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: send %s", self.id, redact(message))
        drop = self.csms.behaviour.close_after_answer
        action = self.current.action if self.current is not None else None
        if message[:2] == "[3" and action is not None and drop.get(action, 0) > 0:
            drop[action] -= 1
            self._closing = True
            await self._connection.send(message)
            log.warning("%s: dropping the connection after answering %s (as told)", self.id,
                        action)
            await self._connection.close()
            return
        await self._connection.send(message)

    async def raw_call(self, frame: str, unique_id: str) -> list[Any]:
        """Send any text frame (even a broken one) and return the answer with unique_id."""
        async with self._call_lock:  # type: ignore[attr-defined]
            await self._send(frame)
            self._awaiting = unique_id  # even when the frame itself cannot be read
            answer = await self._get_specific_response(  # type: ignore[attr-defined]
                unique_id, self._response_timeout)  # type: ignore[attr-defined]
        return [answer.message_type_id, *json.loads(answer.to_json())[1:]]

    # --- checks --------------------------------------------------------------------------------

    def violation(self, rule: str, detail: str, *, action: str | None = None,
                  unique_id: str | None = None) -> None:
        """Record that the station broke a rule (the CALL being handled unless given)."""
        current = self.current
        found = Violation(self.id, rule, detail, action or (current.action if current else ""),
                          unique_id or (current.unique_id if current else ""),
                          datetime.now(UTC))
        self.csms.add_violation(found)

    def check(self, rule: str, problem: str | None) -> None:
        """Record a violation when problem is a reason; answer a CALLERROR if told to reject."""
        if problem is None:
            return
        self.violation(rule, problem)
        if self.csms.behaviour.reject_violations:
            raise PropertyConstraintViolationError(description=f"{rule}: {problem}")

    def check_time(self, *stamps: object) -> None:
        """Every given timestamp must not be in the future."""
        for stamp in stamps:
            self.check(rules.FUTURE_TIMESTAMP,
                       rules.in_future(stamp, self.csms.behaviour.clock()))


def _freeze_signatures(route_map: dict[str, dict[str, Any]]) -> None:
    """Give each handler a precomputed __signature__: the ocpp package calls inspect.signature
    on the handler for every CALL (about a tenth of the central system's CPU per message)."""
    for route in route_map.values():
        for key in ("_on_action", "_after_action"):
            func = getattr(route.get(key), "__func__", None)
            if func is not None and "__signature__" not in vars(func):
                func.__signature__ = inspect.signature(func)


def _decode(raw: str) -> list[Any] | None:
    """A frame as [type, id, ...] when it is a well-formed CALL/CALLRESULT/CALLERROR, else None."""
    try:
        msg = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if (not isinstance(msg, list) or len(msg) < 3 or msg[0] not in (2, 3, 4)
            or not isinstance(msg[1], str)):
        return None
    if msg[0] == 2 and (len(msg) < 4 or not isinstance(msg[2], str)):
        return None
    return msg
