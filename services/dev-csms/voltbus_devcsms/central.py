# mypy: disable-error-code="misc,untyped-decorator"
# (the ocpp package is untyped: its ChargePoint and @on are Any to mypy)
"""A development central system: answers a charge point's CALLs, records them, sends commands.

Built on the `ocpp` package's central-system side, as its examples/v16/central_system.py, so the
gateway is tested against a real peer with the package's schema validation on. Every CALL a station
sends is recorded in order with its payload, so tests can assert the exact messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import ssl
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from typing import Any

from ocpp.charge_point import camel_to_snake_case, remove_nones, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import Server, ServerConnection, basic_auth, serve
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Recorded:
    """One CALL a station sent, as it arrived (camelCase payload)."""

    action: str
    payload: dict[str, Any]
    unique_id: str
    at: datetime


@dataclass
class CsmsBehaviour:
    """How the central system answers; tests change it on the fly."""

    boot_status: RegistrationStatus = RegistrationStatus.accepted
    heartbeat_interval_s: int = 60
    accepted_tags: set[str] | None = None  # None: every tag is Accepted
    start_status: dict[str, AuthorizationStatus] = field(default_factory=dict)
    fail_next: dict[str, int] = field(default_factory=dict)  # action -> CALLERRORs to answer
    answer_delay_s: dict[str, float] = field(default_factory=dict)  # action -> a slow answer

    def tag_status(self, id_tag: str) -> AuthorizationStatus:
        """The status this central system gives an idTag."""
        if self.accepted_tags is None or id_tag in self.accepted_tags:
            return AuthorizationStatus.accepted
        return AuthorizationStatus.invalid


class _QuietLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The ocpp package logs a peer's bad frames with logger.exception; they are not our errors."""

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.pop("exc_info", None)
        self.warning(msg, *args, **kwargs)


class StationSession(ChargePoint):
    """One connected charge point: answers its CALLs from the central system's behaviour."""

    def __init__(self, station: str, connection: ServerConnection, csms: CentralSystem) -> None:
        super().__init__(station, connection, response_timeout=csms.response_timeout_s,
                         logger=_QuietLogger(logging.getLogger("voltbus_devcsms.ocpp"), {}))
        self.csms = csms

    async def route_message(self, raw_msg: str) -> None:
        """Record a CALL before the ocpp package routes it (or fails it on purpose)."""
        with contextlib.suppress(ValueError, TypeError, IndexError, KeyError):
            msg = json.loads(raw_msg)
            if isinstance(msg, list) and msg and msg[0] == 2:
                self.csms.record(self.id, Recorded(msg[2], msg[3], msg[1], datetime.now(UTC)))
                failing = self.csms.behaviour.fail_next
                if failing.get(msg[2], 0) > 0:
                    failing[msg[2]] -= 1
                    await self._send(json.dumps([4, msg[1], "InternalError", "told to fail", {}]))
                    return
        await super().route_message(raw_msg)

    @on(Action.boot_notification)
    def on_boot(self, **_: Any) -> call_result.BootNotification:
        b = self.csms.behaviour
        return call_result.BootNotification(current_time=_now(), interval=b.heartbeat_interval_s,
                                            status=b.boot_status)

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=IdTagInfo(
            status=self.csms.behaviour.tag_status(id_tag)))

    @on(Action.start_transaction)
    def on_start(self, id_tag: str, **_: Any) -> call_result.StartTransaction:
        status = self.csms.behaviour.start_status.get(id_tag) or self.csms.behaviour.tag_status(
            id_tag)
        transaction_id = self.csms.next_transaction_id()
        self.csms.open_transactions.setdefault(self.id, []).append(transaction_id)
        return call_result.StartTransaction(transaction_id=transaction_id,
                                            id_tag_info=IdTagInfo(status=status))

    @on(Action.stop_transaction)
    def on_stop(self, transaction_id: int, **_: Any) -> call_result.StopTransaction:
        with contextlib.suppress(ValueError):
            self.csms.open_transactions.get(self.id, []).remove(transaction_id)
        return call_result.StopTransaction()

    @on(Action.meter_values)
    async def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        delay = self.csms.behaviour.answer_delay_s.get("MeterValues", 0.0)
        if delay > 0:  # a slow central system: a backlog drains slowly
            await asyncio.sleep(delay)
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="Accepted")

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, **_: Any) -> call_result.DiagnosticsStatusNotification:
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, **_: Any) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    async def raw_call(self, frame: str, unique_id: str) -> list[Any]:
        """Send any text frame (even a broken one) and return the answer with unique_id."""
        async with self._call_lock:
            await self._send(frame)
            answer = await self._get_specific_response(unique_id, self._response_timeout)
        return [answer.message_type_id, *json.loads(answer.to_json())[1:]]


def as_wire(result: Any) -> dict[str, Any]:
    """A call_result dataclass as its camelCase wire payload."""
    if result is None:
        return {}
    data = asdict(result) if is_dataclass(result) and not isinstance(result, type) else dict(
        result)
    return snake_to_camel_case(remove_nones(data))  # type: ignore[no-any-return]


class CentralSystem:
    """The development central system: a websockets server plus the per-station records."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 behaviour: CsmsBehaviour | None = None, response_timeout_s: float = 10,
                 ssl_context: ssl.SSLContext | None = None,
                 auth_keys: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        self.behaviour = behaviour or CsmsBehaviour()
        self.response_timeout_s = response_timeout_s
        self.ssl_context = ssl_context
        self.auth_keys = auth_keys
        self.sessions: dict[str, StationSession] = {}
        self.messages: dict[str, list[Recorded]] = {}
        self.connections: dict[str, int] = {}
        self.open_transactions: dict[str, list[int]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._server: Server | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen (port 0 picks a free port, kept across stop/start); return the port."""
        process_request = None
        if self.auth_keys is not None:
            keys = self.auth_keys
            process_request = basic_auth(
                realm="voltbus-devcsms",
                check_credentials=lambda user, password: keys.get(user) == password)
        self._server = await serve(self._on_connect, self.host, self.port,
                                   subprotocols=["ocpp1.6"], ssl=self.ssl_context,  # type: ignore[list-item]
                                   process_request=process_request)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("central system listening on %s://%s:%d/", self.scheme, self.host, self.port)
        return self.port

    @property
    def scheme(self) -> str:
        """ws or wss."""
        return "wss" if self.ssl_context else "ws"

    @property
    def url(self) -> str:
        """The URL a charge point appends its id to."""
        return f"{self.scheme}://{self.host}:{self.port}/ocpp"

    async def stop(self) -> None:
        """Close every connection and stop listening (start() again reuses the port)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.sessions.clear()

    # --- connections ---------------------------------------------------------------------------

    async def _on_connect(self, connection: ServerConnection) -> None:
        path = connection.request.path if connection.request else "/"
        station = path.rstrip("/").rsplit("/", 1)[-1] or "unknown"
        if connection.subprotocol != "ocpp1.6":
            log.warning("%s offered no ocpp1.6 subprotocol; closing", station)
            await connection.close(1002, "ocpp1.6 required")
            return
        session = StationSession(station, connection, self)
        self.sessions[station] = session
        self.connections[station] = self.connections.get(station, 0) + 1
        await self._notify()
        log.info("station %s connected", station)
        try:
            await session.start()
        except ConnectionClosed:
            log.info("station %s disconnected", station)
        finally:
            if self.sessions.get(station) is session:
                del self.sessions[station]
            await self._notify()

    def record(self, station: str, message: Recorded) -> None:
        """Keep a received CALL and wake waiters."""
        self.messages.setdefault(station, []).append(message)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def next_transaction_id(self) -> int:
        """Increasing transaction ids, unique for this central system's lifetime."""
        return next(self._ids)

    # --- inspection --------------------------------------------------------------------------

    def received(self, station: str, action: str | None = None) -> list[Recorded]:
        """The CALLs a station sent, in order (only `action` ones if given)."""
        return [m for m in self.messages.get(station, []) if action in (None, m.action)]

    async def wait_for(self, station: str, action: str, *, count: int = 1,
                       where: Callable[[dict[str, Any]], bool] | None = None,
                       timeout: float = 5.0) -> Recorded:  # noqa: ASYNC109
        """The count-th CALL `action` from station (matching `where`), waiting for it to arrive."""
        def found() -> Recorded | None:
            hits = [m for m in self.received(station, action) if where is None or where(m.payload)]
            return hits[count - 1] if len(hits) >= count else None

        async def wait() -> Recorded:
            async with self._changed:
                await self._changed.wait_for(lambda: found() is not None)
            result = found()
            assert result is not None
            return result

        return await asyncio.wait_for(wait(), timeout)

    async def wait_connected(self, station: str, *, timeout: float = 5.0) -> StationSession:  # noqa: ASYNC109
        """The station's session once it is connected."""
        async def wait() -> StationSession:
            async with self._changed:
                await self._changed.wait_for(lambda: station in self.sessions)
            return self.sessions[station]

        return await asyncio.wait_for(wait(), timeout)

    def connected(self) -> Iterable[str]:
        """Ids of the stations connected now."""
        return list(self.sessions)

    # --- commands to stations ------------------------------------------------------------------

    def session(self, station: str) -> StationSession:
        """The connected station's session; KeyError if it is not connected."""
        try:
            return self.sessions[station]
        except KeyError:
            raise KeyError(f"station {station!r} is not connected") from None

    async def send(self, station: str, payload: Any) -> dict[str, Any]:
        """Send a CALL (an ocpp.v16.call dataclass); the station's answer as a wire payload.

        A CALLERROR comes back as {"error": code, "description": ...}.
        """
        try:
            result = await self.session(station).call(payload, suppress=False)
        except OCPPError as exc:
            return {"error": type(exc).__name__.removesuffix("Error"), "code": exc.code,
                    "description": exc.description}
        return as_wire(result)

    async def send_raw(self, station: str, frame: str, unique_id: str) -> list[Any]:
        """Send a raw text frame; the answer frame (as a list) with unique_id."""
        return await self.session(station).raw_call(frame, unique_id)

    async def disconnect(self, station: str) -> None:
        """Close the station's websocket (it should reconnect)."""
        await self.session(station)._connection.close()


def snake(payload: dict[str, Any]) -> dict[str, Any]:
    """camelCase wire payload -> snake_case keyword arguments."""
    return camel_to_snake_case(payload)  # type: ignore[no-any-return]
