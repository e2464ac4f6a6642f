"""A development central system: answers a charge point's CALLs, records them, sends commands.

Built on the `ocpp` package's central-system side, as its examples/v16/central_system.py, so the
gateway is tested against a real peer with the package's schema validation on. It speaks OCPP 1.6
(v16.py) and 2.0.1 (v201.py), choosing by the subprotocols the station offers. Every CALL a station
sends is recorded in order with its payload, so tests can assert the exact messages, and every
rule of the spec a station breaks is recorded as a Violation (rules.py).
"""

from __future__ import annotations

import itertools
import logging
import ssl
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from typing import Any

from ocpp import v16, v201
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, validate_payload
from ocpp.v16.enums import AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import Server, ServerConnection, basic_auth, serve
from websockets.exceptions import ConnectionClosed, NegotiationError

from voltbus_devcsms.logs import redact, websockets_logger
from voltbus_devcsms.records import History, Recorded, Violation
from voltbus_devcsms.session import SessionBase
from voltbus_devcsms.v16 import StationSession, Transaction16
from voltbus_devcsms.v201 import Report, StationSession201, Transaction201

__all__ = ["CentralSystem", "CsmsBehaviour", "Recorded", "StationSession", "StationSession201",
           "Violation", "as_wire", "snake"]

log = logging.getLogger(__name__)

OCPP16, OCPP201 = "ocpp1.6", "ocpp2.0.1"
SUBPROTOCOLS = (OCPP201, OCPP16)
_SESSIONS: dict[str, type[SessionBase]] = {OCPP16: StationSession, OCPP201: StationSession201}
_CALLS = {"1.6": v16.call, "2.0.1": v201.call}


@dataclass
class CsmsBehaviour:
    """How the central system answers; tests change it on the fly."""

    boot_status: RegistrationStatus = RegistrationStatus.accepted  # 2.0.1: the same words
    heartbeat_interval_s: int = 60
    boot_interval_s: int | None = None  # BootNotification interval; None: heartbeat_interval_s
    accepted_tags: set[str] | None = None  # None: every tag is Accepted
    parent_tags: dict[str, str] = field(default_factory=dict)  # idTag -> its parentIdTag
    accepted_token_types: set[str] | None = None  # 2.0.1 idToken types; None: every type
    start_status: dict[str, AuthorizationStatus] = field(default_factory=dict)
    # idTag -> the idTagInfo status StopTransaction.conf gives when the req carries that idTag
    # (none for other tags, as before)
    stop_status: dict[str, AuthorizationStatus] = field(default_factory=dict)
    fail_next: dict[str, int] = field(default_factory=dict)  # action -> CALLERRORs to answer
    not_implemented: set[str] = field(default_factory=set)  # actions answered NotImplemented
    answer_delay_s: dict[str, float] = field(default_factory=dict)  # action -> a slow answer
    # action -> how many times to close the connection right after answering it (the link
    # drops between that answer and the station's next CALL; frames after it are not read)
    close_after_answer: dict[str, int] = field(default_factory=dict)
    sign_certificate_status: str = "Accepted"
    # 1.6 security: (CA certificate PEM, CA key PEM) that signs an accepted SignCertificate's
    # CSR and sends it back as CertificateSigned (security16.py); None: the test does it
    certificate_authority: tuple[bytes, bytes] | None = None
    # A CALL arriving this long after the previous unanswered one is not a violation: the
    # station may have given up waiting (OCPP-J: "responded to or timed out").
    station_call_timeout_s: float = 5.0
    reject_violations: bool = False  # answer a violating CALL with a CALLERROR too
    # One second of the stations' OCPP time in real seconds, for the retry-interval check
    # after a Rejected boot (tests run stations at a time_scale of 0.01).
    time_scale: float = 1.0
    # This central system's clock for the timestamp checks (a test whose station runs on a
    # shifted clock gives the same clock here).
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def tag_status(self, id_tag: str) -> AuthorizationStatus:
        """The status this central system gives an idTag."""
        if self.accepted_tags is None or id_tag in self.accepted_tags:
            return AuthorizationStatus.accepted
        return AuthorizationStatus.invalid

    def token_status(self, id_token: str, token_type: str) -> str:
        """The 2.0.1 status for an idToken of a type (NoAuthorization needs no token)."""
        if self.accepted_token_types is not None and token_type not in self.accepted_token_types:
            return "Invalid"
        if token_type == "NoAuthorization":
            return "Accepted"
        return str(self.start_status.get(id_token) or self.tag_status(id_token))

    def boot_interval(self) -> int:
        """The interval a BootNotification answer gives (heartbeat, or retry when not Accepted)."""
        return self.heartbeat_interval_s if self.boot_interval_s is None else self.boot_interval_s


def request_job16(payload: Any) -> tuple[str, int] | None:
    """The job a 1.6 GetLog / SignedUpdateFirmware starts, as (kind, requestId)."""
    if isinstance(payload, v16.call.GetLog):
        return "log", int(payload.request_id)
    if isinstance(payload, v16.call.SignedUpdateFirmware):
        return "firmware", int(payload.request_id)
    # 2.0.1 N01 GetLog and L01 UpdateFirmware: the same jobs, checked the same way
    if isinstance(payload, v201.call.GetLog):
        return "log", int(payload.request_id)
    if isinstance(payload, v201.call.UpdateFirmware):
        return "firmware", int(payload.request_id)
    return None


def as_wire(result: Any) -> dict[str, Any]:
    """A call_result dataclass as its camelCase wire payload."""
    if result is None:
        return {}
    data = asdict(result) if is_dataclass(result) and not isinstance(result, type) else dict(
        result)
    return snake_to_camel_case(remove_nones(data))  # type: ignore[no-any-return]


def snake(payload: dict[str, Any]) -> dict[str, Any]:
    """camelCase wire payload -> snake_case keyword arguments."""
    return camel_to_snake_case(payload)  # type: ignore[no-any-return]


class CentralSystem:
    """The development central system: a websockets server plus the per-station records."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 behaviour: CsmsBehaviour | None = None, response_timeout_s: float = 10,
                 ssl_context: ssl.SSLContext | None = None,
                 auth_keys: dict[str, str] | None = None,
                 subprotocols: Sequence[str] = SUBPROTOCOLS,
                 history_limit: int | None = None) -> None:
        unknown = set(subprotocols) - set(_SESSIONS)
        if unknown or not subprotocols:
            raise ValueError(f"subprotocols must be among {SUBPROTOCOLS}, got {subprotocols}")
        self.host = host
        self.port = port
        self.behaviour = behaviour or CsmsBehaviour()
        self.response_timeout_s = response_timeout_s
        self.ssl_context = ssl_context
        self.auth_keys = auth_keys
        self.subprotocols = tuple(subprotocols)
        self.sessions: dict[str, SessionBase] = {}
        self.messages = History(history_limit)
        self.violations: deque[Violation] = deque(maxlen=10_000)
        self.connections: dict[str, int] = {}
        self.open_transactions: dict[str, list[Any]] = {}  # 1.6 int ids, 2.0.1 str ids
        self.transactions16: dict[int, Transaction16] = {}
        self.transactions201: dict[str, dict[str, Transaction201]] = {}
        # the (idToken, type) of each RequestStartTransaction by remoteStartId, per station
        # (rule remote-start-idtoken-type-changed); kept while the station is known
        self.remote_tokens201: dict[str, dict[int, tuple[str, str]]] = {}
        # station -> evseId (None: the request named none, any EVSE) -> the remoteStartId of
        # the RequestStartTransaction whose first TransactionEvent is still to come (rule
        # remote-start-id-missing); marked before the CALL, unmarked unless Accepted
        self.remote_starts201: dict[str, dict[int | None, int]] = {}
        # TxCtrlr.TxStartPoint per station as this central system set or read it (rule
        # tx-start-trigger); unknown until then
        self.tx_start_points: dict[str, frozenset[str]] = {}
        self.reports: dict[tuple[str, str, int], Report] = {}
        # (station, report action, requestId) -> the request's answer status (None: not yet)
        self.report_requests: dict[tuple[str, str, int], str | None] = {}
        self.report_criteria: dict[tuple[str, str, int], dict[str, Any]] = {}  # the requests
        # K11-K13: the external limits each station notified and has not cleared yet,
        # as (chargingLimitSource, evseId or 0)
        self.charging_limits: dict[str, set[tuple[str, int]]] = {}
        # N04/N06: per station the ids of the custom monitors it accepted and has not cleared;
        # N07: the NotifyEvent part expected next (seqNo) per station
        self.monitors201: dict[str, set[int]] = {}
        self.event_parts201: dict[str, int] = {}
        self.boot_rejected: set[str] = set()  # stations whose last boot was Rejected
        # (station, reservationId) -> (idTag, parentIdTag) of each 1.6 ReserveNow Accepted
        self.reservations16: dict[tuple[str, int], tuple[str, str | None]] = {}
        # station -> the last 1.6 FirmwareStatusNotification status (None: new UpdateFirmware)
        self.firmware16: dict[str, str | None] = {}
        self.firmware_triggered16: set[str] = set()  # a triggered notification is due
        # station -> the configuration keys this central system changed (Accepted)
        self.config16: dict[str, dict[str, str]] = {}
        # station -> idTags remote-started that must be Authorized before their start (5.11)
        self.remote_unauthorized16: dict[str, set[str]] = {}
        # (station, requestId) -> the last SignedFirmwareStatusNotification status of that job
        self.signed_firmware16: dict[tuple[str, int], str] = {}
        # station -> idTag -> parentIdTag, from the 1.6 SendLocalLists it accepted
        self.list_parents16: dict[str, dict[str, str | None]] = {}
        # station -> time.monotonic() before which a Rejected station may send nothing
        self.rejected_until: dict[str, float] = {}
        # station -> ("log" | "firmware", requestId) of the GetLog / SignedUpdateFirmware it took
        self.requests16: dict[str, set[tuple[str, int]]] = {}
        self.certificates_signed: dict[str, list[dict[str, Any]]] = {}  # CertificateSigned answers
        self.background: set[Any] = set()  # tasks the sessions started (CertificateSigned)
        self._ids = itertools.count(1)
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
                                   subprotocols=list(self.subprotocols),  # type: ignore[arg-type]
                                   select_subprotocol=self._select_subprotocol,  # type: ignore[arg-type]
                                   ssl=self.ssl_context, process_request=process_request,
                                   logger=websockets_logger())
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("central system listening on %s://%s:%d/ (%s)", self.scheme, self.host,
                 self.port, ", ".join(self.subprotocols))
        return self.port

    def _select_subprotocol(self, connection: ServerConnection,
                            offered: Sequence[str]) -> str | None:
        """The station's most preferred subprotocol among those this central system speaks."""
        choice = next((p for p in offered if p in self.subprotocols), None)
        if choice is None:
            path = connection.request.path if connection.request else "/"
            log.warning("%s offered %s; this central system speaks %s", path,
                        ", ".join(offered) or "no subprotocol", ", ".join(self.subprotocols))
            raise NegotiationError(f"no subprotocol among {', '.join(self.subprotocols)}")
        return choice

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
        session_type = _SESSIONS.get(str(connection.subprotocol))
        if session_type is None:  # only when select_subprotocol was bypassed
            await connection.close(1002, "ocpp2.0.1 or ocpp1.6 required")
            return
        session = session_type(station, connection, self)
        self.sessions[station] = session
        self.connections[station] = self.connections.get(station, 0) + 1
        self.history_changed()
        log.info("station %s connected (%s)", station, connection.subprotocol)
        try:
            await session.start()
        except ConnectionClosed:
            log.info("station %s disconnected", station)
        finally:
            if self.sessions.get(station) is session:
                del self.sessions[station]
            self.history_changed()

    def record(self, station: str, message: Recorded) -> None:
        """Keep a received CALL and wake waiters."""
        self.messages.add(station, message)

    def add_violation(self, violation: Violation) -> None:
        """Keep a rule a station broke (and say so in the log)."""
        self.violations.append(violation)
        log.warning("station %s broke %s: %s (%s %s)", violation.station, violation.rule,
                    redact(violation.detail), violation.action, violation.unique_id)
        self.history_changed()

    def history_changed(self) -> None:
        """Wake every waiter to look again."""
        self.messages.wake()

    def next_transaction_id(self) -> int:
        """Increasing transaction ids, unique for this central system's lifetime."""
        return next(self._ids)

    # --- inspection --------------------------------------------------------------------------

    def received(self, station: str, action: str | None = None) -> list[Recorded]:
        """The CALLs a station sent, in order (only `action` ones if given)."""
        return self.messages.received(station, action)

    def violations_of(self, station: str | None = None,
                      rule: str | None = None) -> list[Violation]:
        """The violations found (of one station, of one rule), in order."""
        return [v for v in self.violations
                if station in (None, v.station) and rule in (None, v.rule)]

    def version(self, station: str) -> str:
        """The OCPP version the connected station speaks ("1.6" or "2.0.1")."""
        version: str = self.session(station).ocpp_version
        return version

    async def wait_for(self, station: str, action: str, *, count: int = 1,
                       where: Callable[[dict[str, Any]], bool] | None = None,
                       timeout: float = 5.0) -> Recorded:  # noqa: ASYNC109
        """The count-th CALL `action` from station (matching `where`), waiting for it to arrive."""
        def found() -> Recorded | None:
            hits = [m for m in self.received(station, action) if where is None or where(m.payload)]
            return hits[count - 1] if len(hits) >= count else None

        result: Recorded = await self.messages.wait_until(found, timeout)
        return result

    async def wait_connected(self, station: str, *, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """The station's session once it is connected."""
        await self.messages.wait_until(lambda: station in self.sessions, timeout)
        return self.sessions[station]

    async def wait_report(self, station: str, request_id: int, *, action: str = "NotifyReport",
                          timeout: float = 5.0) -> Report:  # noqa: ASYNC109
        """A paged report once its last page (tbc false) arrived."""
        def done() -> Report | None:
            report = self.reports.get((station, action, request_id))
            return report if report is not None and report.complete else None

        report: Report = await self.messages.wait_until(done, timeout)
        return report

    async def wait_violation(self, station: str, rule: str, *,
                             timeout: float = 5.0) -> Violation:  # noqa: ASYNC109
        """The first violation of rule by station, waiting for it."""
        found: Violation = await self.messages.wait_until(
            lambda: next(iter(self.violations_of(station, rule)), None), timeout)
        return found

    def connected(self) -> Iterable[str]:
        """Ids of the stations connected now."""
        return list(self.sessions)

    # --- commands to stations ------------------------------------------------------------------

    def session(self, station: str) -> Any:
        """The connected station's session; KeyError if it is not connected."""
        try:
            return self.sessions[station]
        except KeyError:
            raise KeyError(f"station {station!r} is not connected") from None

    async def send(self, station: str, payload: Any) -> dict[str, Any]:
        """Send a CALL (an ocpp.v16.call or ocpp.v201.call dataclass, as the station speaks);
        the station's answer as a wire payload.

        A CALLERROR comes back as {"error": code, "description": ...}.
        """
        session = self.session(station)
        expected = _CALLS[session.ocpp_version].__name__
        if type(payload).__module__ != expected:
            raise TypeError(f"{station} speaks OCPP {session.ocpp_version}: send an {expected} "
                            f"payload, not {type(payload).__module__}.{type(payload).__name__}")
        # Marked before the CALL: the station's notifications that follow its answer can be
        # handled before this coroutine resumes with the answer (then unmarked if refused).
        job = request_job16(payload)
        if job is not None:
            self.requests16.setdefault(station, set()).add(job)
        remote = self._remote_start_to_authorize(station, payload)
        remote201 = None
        if isinstance(payload, v201.call.RequestStartTransaction):  # before: Authorize may come
            token = as_wire(payload)["idToken"]
            remote201 = int(payload.remote_start_id)
            self.remote_tokens201.setdefault(station, {})[remote201] = (
                str(token["idToken"]), str(token["type"]))
            self.remote_starts201.setdefault(station, {})[payload.evse_id] = remote201
        if remote is not None:
            self.remote_unauthorized16.setdefault(station, set()).add(remote)
        triggered = isinstance(payload, v16.call.TriggerMessage) and str(
            payload.requested_message) == "FirmwareStatusNotification"
        if triggered:
            self.firmware_triggered16.add(station)
        try:
            result = await session.call(payload, suppress=False)
        except OCPPError as exc:
            self.firmware_triggered16.discard(station)
            self.remote_unauthorized16.get(station, set()).discard(remote)
            self.requests16.get(station, set()).discard(job)
            if remote201 is not None:
                self._forget_remote_start(station, remote201)
            return {"error": type(exc).__name__.removesuffix("Error"), "code": exc.code,
                    "description": exc.description}
        except TimeoutError:  # the ocpp package puts the whole frame (secrets too) in the text
            raise TimeoutError(f"{station} did not answer {type(payload).__name__} within "
                               f"{self.response_timeout_s} s") from None
        answer = as_wire(result)
        if remote is not None and answer.get("status") != "Accepted":
            self.remote_unauthorized16.get(station, set()).discard(remote)
        if remote201 is not None and answer.get("status") != "Accepted":
            self._forget_remote_start(station, remote201)
        if isinstance(payload, v16.call.ChangeConfiguration) and answer.get("status") in (
                "Accepted", "RebootRequired"):
            self.config16.setdefault(station, {})[str(payload.key)] = str(payload.value)
        if isinstance(payload, v16.call.ReserveNow) and answer.get("status") == "Accepted":
            self.reservations16[(station, payload.reservation_id)] = (payload.id_tag,
                                                                      payload.parent_id_tag)
        if isinstance(payload, v16.call.UpdateFirmware):
            self.firmware16[station] = None
        if triggered and answer.get("status") != "Accepted":
            self.firmware_triggered16.discard(station)
        if job is not None and answer.get("status") not in ("Accepted", "AcceptedCanceled"):
            self.requests16.get(station, set()).discard(job)
        if isinstance(payload, v16.call.SendLocalList) and answer.get("status") == "Accepted":
            self._listed16(station, payload)
        return answer

    def _forget_remote_start(self, station: str, remote_start_id: int) -> None:
        """A RequestStartTransaction refused (or unanswered): nothing is to carry its id."""
        self.remote_tokens201.get(station, {}).pop(remote_start_id, None)
        awaited = self.remote_starts201.get(station, {})
        for evse in [k for k, v in awaited.items() if v == remote_start_id]:
            del awaited[evse]

    def _remote_start_to_authorize(self, station: str, payload: Any) -> str | None:
        """The idTag of a RemoteStartTransaction the station must Authorize before starting
        (5.11: AuthorizeRemoteTxRequests true, set here, and LocalPreAuthorize not), or None.
        Marked before the CALL: the station's Authorize can come before the answer resumes."""
        if not isinstance(payload, v16.call.RemoteStartTransaction):
            return None
        config = self.config16.get(station, {})
        if config.get("AuthorizeRemoteTxRequests", "").lower() != "true" or config.get(
                "LocalPreAuthorize", "").lower() == "true":
            return None
        return str(payload.id_tag)

    def _listed16(self, station: str, request: Any) -> None:
        """The parents a station's local list now gives its tags."""
        listed = self.list_parents16.setdefault(station, {})
        if str(request.update_type) == "Full":
            listed.clear()
        for entry in as_wire(request).get("localAuthorizationList", []):
            info = entry.get("idTagInfo")
            listed[entry["idTag"]] = None if info is None else info.get("parentIdTag")
            if info is None:
                del listed[entry["idTag"]]

    def parent_of16(self, station: str, id_tag: str) -> str | None:
        """A tag's parentIdTag as this central system gave it (its local list first)."""
        listed = self.list_parents16.get(station, {})
        if id_tag in listed:
            return listed[id_tag]
        return self.behaviour.parent_tags.get(id_tag)

    async def send_action(self, station: str, action: str,
                          payload: dict[str, Any]) -> dict[str, Any]:
        """Send a CALL named by its action with a camelCase payload, in the station's version.

        LookupError for an action the version lacks; OCPPError (schema) or TypeError (fields)
        for a request that is not valid, before anything is sent.
        """
        version = self.version(station)
        cls = getattr(_CALLS[version], action, None)
        if cls is None or not isinstance(cls, type):
            raise LookupError(f"OCPP {version} has no CSMS-initiated {action}")
        request = cls(**snake(payload))
        # Checked here first, so a bad request is told apart from the station's CALLERROR.
        wire = Call(unique_id="check", action=action,
                    payload=remove_nones(snake_to_camel_case(serialize_as_dict(request))))
        await validate_payload(wire, version)
        return await self.send(station, request)

    async def send_raw(self, station: str, frame: str, unique_id: str) -> list[Any]:
        """Send a raw text frame; the answer frame (as a list) with unique_id."""
        answer: list[Any] = await self.session(station).raw_call(frame, unique_id)
        return answer

    async def disconnect(self, station: str) -> None:
        """Close the station's websocket (it should reconnect)."""
        await self.session(station)._connection.close()

