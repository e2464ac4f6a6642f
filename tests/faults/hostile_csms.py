"""A hostile OCPP 1.6 or 2.0.1 central system on a real WebSocket, and the frames it throws
(issue 15; 2.0.1: issue 11).

`HostileCsms` accepts the station, answers its CALLs like a plain central system (boot Accepted,
every tag Accepted, transaction id 1) and lets a test send any frame, text or binary, whole or
dribbled, and read what the station answers. `corpus()` builds the malformed and hostile frames,
each with what OCPP-J 1.6 (4.2.3) or OCPP-J 2.0.1 (4.3) says the station must answer: a CALLERROR
code, a CALLRESULT, or nothing (a frame without a readable CALL id, a reply to no CALL).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

NONE = "no answer"
RESULT = "CALLRESULT"


@dataclass
class Frame:
    """One frame to send and the answer it must get (a CALLERROR code, RESULT or NONE)."""

    data: str | bytes
    expect: str
    unique_id: str | None = None  # the id the answer carries
    kind: str = ""


@dataclass
class Connection:
    """One accepted station connection."""

    ws: ServerConnection
    replies: dict[str, list[Any]] = field(default_factory=dict)  # answers to our CALLs, by id
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # the station's CALLs
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    got: asyncio.Event = field(default_factory=asyncio.Event)


def _answer(action: str, payload: dict[str, Any], version: str = "1.6") -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    accepted = {"status": "Accepted"}
    if version == "2.0.1":  # TransactionEvent, StatusNotification, ...: {} is a valid answer
        return {
            "BootNotification": {"status": "Accepted", "currentTime": now, "interval": 300},
            "Heartbeat": {"currentTime": now},
            "Authorize": {"idTokenInfo": accepted},
        }.get(action, {})
    return {
        "BootNotification": {"status": "Accepted", "currentTime": now, "interval": 300},
        "Heartbeat": {"currentTime": now},
        "Authorize": {"idTagInfo": accepted},
        "StartTransaction": {"transactionId": 1, "idTagInfo": accepted},
        "StopTransaction": {"idTagInfo": accepted},
        "DataTransfer": {"status": "UnknownVendorId"},
    }.get(action, {})


class HostileCsms:
    """The fake central system; `connections` in order, the last one is current."""

    def __init__(self, version: str = "1.6") -> None:
        self.version = version  # "1.6" or "2.0.1": the subprotocol and the answers
        self.server: Server | None = None
        self.port = 0
        self.connections: list[Connection] = []
        self.connected = asyncio.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    @property
    def current(self) -> Connection:
        return self.connections[-1]

    async def start(self) -> None:
        self.server = await serve(self._serve, "127.0.0.1", 0,
                                  subprotocols=[f"ocpp{self.version}"],  # type: ignore[list-item]
                                  max_size=None, ping_interval=None)
        self.port = next(iter(self.server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, ws: ServerConnection) -> None:
        conn = Connection(ws)
        self.connections.append(conn)
        self.connected.set()
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame[0] == 2:
                    conn.calls.append((frame[2], frame[3]))
                    await ws.send(json.dumps([3, frame[1], _answer(frame[2], frame[3],
                                                                      self.version)]))
                else:
                    conn.replies.setdefault(frame[1], []).append(frame)
                conn.got.set()
        except ConnectionClosed:
            pass
        finally:
            conn.close_code = ws.close_code
            conn.closed.set()

    async def wait_connection(self, count: int, timeout: float = 20.0) -> Connection:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while len(self.connections) < count:
                self.connected.clear()
                await self.connected.wait()
        return self.connections[count - 1]

    async def wait_call(self, action: str, *, after: int = 0,
                        timeout: float = 20.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The payload of the first `action` CALL of the current connection from index after."""
        conn = self.current
        async with asyncio.timeout(timeout):
            while True:
                for name, payload in conn.calls[after:]:
                    if name == action:
                        return payload
                conn.got.clear()
                await conn.got.wait()

    async def wait_reply(self, unique_id: str, timeout: float = 20.0) -> list[Any]:  # noqa: ASYNC109
        conn = self.current
        async with asyncio.timeout(timeout):
            while unique_id not in conn.replies:
                conn.got.clear()
                await conn.got.wait()
        return conn.replies[unique_id][0]

    async def call(self, action: str, payload: dict[str, Any], unique_id: str) -> list[Any]:
        await self.current.ws.send(json.dumps([2, unique_id, action, payload]))
        return await self.wait_reply(unique_id)

    async def dribble(self, text: str, pieces: int, pause_s: float) -> None:
        """Slow-loris: one text message in `pieces` WebSocket fragments, `pause_s` apart."""
        size = -(-len(text) // pieces)

        async def fragments() -> AsyncIterator[str]:
            for i in range(0, len(text), size):
                yield text[i:i + size]
                await asyncio.sleep(pause_s)
        await self.current.ws.send(fragments())


# Every action the 1.6 gateway handles, with a valid payload of only its required fields, its
# integer and string fields, and its enum fields. Valid payloads are never sent (they would act):
# only mutations that the schema refuses.
HANDLED: dict[str, tuple[dict[str, Any], set[str], set[str], set[str]]] = {
    "RemoteStartTransaction": ({"idTag": "FUZZ"}, set(), {"idTag"}, set()),
    "RemoteStopTransaction": ({"transactionId": 1}, {"transactionId"}, set(), set()),
    "ChangeConfiguration": ({"key": "HeartbeatInterval", "value": "300"}, set(),
                            {"key", "value"}, set()),
    "ChangeAvailability": ({"connectorId": 1, "type": "Inoperative"}, {"connectorId"}, set(),
                           {"type"}),
    "Reset": ({"type": "Hard"}, set(), set(), {"type"}),
    "UnlockConnector": ({"connectorId": 1}, {"connectorId"}, set(), set()),
    "DataTransfer": ({"vendorId": "fuzz"}, set(), {"vendorId"}, set()),
    "TriggerMessage": ({"requestedMessage": "StatusNotification"}, set(), set(),
                       {"requestedMessage"}),
    "SendLocalList": ({"listVersion": 5, "updateType": "Full"}, {"listVersion"}, set(),
                      {"updateType"}),
    "ReserveNow": ({"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "FUZZ",
                    "reservationId": 7}, {"connectorId", "reservationId"},
                   {"expiryDate", "idTag"}, set()),
    "CancelReservation": ({"reservationId": 7}, {"reservationId"}, set(), set()),
    "GetCompositeSchedule": ({"connectorId": 1, "duration": 60}, {"connectorId", "duration"},
                             set(), set()),
}
# Station-to-central-system actions of 1.6: known to the version, not served by a station.
NOT_IMPLEMENTED = ["BootNotification", "Heartbeat", "StatusNotification", "MeterValues",
                   "Authorize", "StartTransaction", "StopTransaction",
                   "DiagnosticsStatusNotification", "FirmwareStatusNotification"]

_TOKEN = {"idToken": "FUZZ", "type": "Central"}
# The same for 2.0.1 (fields that hold an object are among the "strings": any non-object is a
# type error for them too).
HANDLED_201: dict[str, tuple[dict[str, Any], set[str], set[str], set[str]]] = {
    "RequestStartTransaction": ({"idToken": _TOKEN, "remoteStartId": 1}, {"remoteStartId"},
                                set(), set()),
    "RequestStopTransaction": ({"transactionId": "fuzz"}, set(), {"transactionId"}, set()),
    "ChangeAvailability": ({"operationalStatus": "Inoperative"}, set(), set(),
                           {"operationalStatus"}),
    "Reset": ({"type": "Immediate"}, set(), set(), {"type"}),
    "UnlockConnector": ({"evseId": 1, "connectorId": 1}, {"evseId", "connectorId"}, set(),
                        set()),
    "DataTransfer": ({"vendorId": "fuzz"}, set(), {"vendorId"}, set()),
    "TriggerMessage": ({"requestedMessage": "StatusNotification"}, set(), set(),
                       {"requestedMessage"}),
    "SendLocalList": ({"versionNumber": 5, "updateType": "Full"}, {"versionNumber"}, set(),
                      {"updateType"}),
    "ReserveNow": ({"id": 7, "expiryDateTime": "2030-01-01T00:00:00Z", "idToken": _TOKEN},
                   {"id"}, {"expiryDateTime"}, set()),
    "CancelReservation": ({"reservationId": 7}, {"reservationId"}, set(), set()),
    "GetCompositeSchedule": ({"duration": 60, "evseId": 1}, {"duration", "evseId"}, set(),
                             set()),
    "SetMonitoringLevel": ({"severity": 5}, {"severity"}, set(), set()),
    "SetMonitoringBase": ({"monitoringBase": "All"}, set(), set(), {"monitoringBase"}),
    "GetMonitoringReport": ({"requestId": 3}, {"requestId"}, set(), set()),
    "SetVariables": ({"setVariableData": [{"attributeValue": "300", "component": {
        "name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}, set(), set(),
        set()),
}
# Station-to-CSMS actions of 2.0.1: known to the version, never served by a station.
NOT_IMPLEMENTED_201 = ["BootNotification", "Heartbeat", "StatusNotification", "MeterValues",
                       "Authorize", "TransactionEvent", "FirmwareStatusNotification",
                       "LogStatusNotification", "NotifyReport", "SecurityEventNotification",
                       "SignCertificate", "NotifyEvent", "ReservationStatusUpdate"]
JUNK: list[Any] = ["x", "", 5, -1, 2**70, True, None, [], {}, [1], {"a": 1}, 1e308]


@dataclass(frozen=True)
class Wire:
    """One version's actions and the CALLERROR codes it names for each kind of bad frame."""

    handled: dict[str, tuple[dict[str, Any], set[str], set[str], set[str]]]
    not_implemented: list[str]
    unknown: list[str]  # actions the version does not have
    occurrence: str  # a required field missing
    format: str  # an unknown field, a payload that is no object, nesting too deep
    rpc: str  # a CALL of the wrong shape
    message_type: str  # a message type other than 2, 3, 4
    start: tuple[str, dict[str, Any]]  # a CALL whose idToken/idTag may be too long
    reset: dict[str, Any]  # a valid Reset


WIRES = {
    "1.6": Wire(HANDLED, NOT_IMPLEMENTED, ["Nope", "reset", "RESET", "Reset ", "",
                                           "GetVariables", "RequestStartTransaction", "x" * 300,
                                           "../../etc"],
                "OccurenceConstraintViolation", "FormationViolation", "FormationViolation",
                "FormationViolation", ("RemoteStartTransaction", {"idTag": "T"}),
                {"type": "Hard"}),
    # OCPP-J 2.0.1 4.3: FormatViolation, OccurrenceConstraintViolation (spelt right),
    # RpcFrameworkError for a CALL that is no valid RPC frame, MessageTypeNotSupported
    "2.0.1": Wire(HANDLED_201, NOT_IMPLEMENTED_201, ["Nope", "reset", "RESET", "Reset ", "",
                                                     "RemoteStartTransaction", "GetConfiguration",
                                                     "x" * 300, "../../etc"],
                  "OccurrenceConstraintViolation", "FormatViolation", "RpcFrameworkError",
                  "MessageTypeNotSupported",
                  ("RequestStartTransaction", {"idToken": _TOKEN, "remoteStartId": 1}),
                  {"type": "Immediate"}),
}


def _long_token(action: str, base: dict[str, Any], n: int) -> dict[str, Any] | None:
    """The payload with its idTag (1.6, maxLength 20) or idToken.idToken (2.0.1, maxLength 36)
    n characters long, or None when it has neither."""
    if "idTag" in base:
        return {**base, "idTag": "T" * n}
    if "idToken" in base:
        return {**base, "idToken": {**base["idToken"], "idToken": "T" * n}}
    return None


def _mutations(rnd: random.Random, action: str, wire: Wire) -> list[tuple[Any, str]]:
    """Payloads the schema refuses, with the CALLERROR code for each."""
    base, ints, strs, enums = wire.handled[action]
    out: list[tuple[Any, str]] = []
    for name in base:
        out.append(({k: v for k, v in base.items() if k != name}, wire.occurrence))
    out.append(({**base, rnd.choice(["zz", "Extra", "idtag", "__proto__"]): rnd.choice(JUNK)},
                wire.format))
    for name in ints:
        bad = rnd.choice(["1", "x", [], {}, True, None])
        out.append(({**base, name: bad}, "TypeConstraintViolation"))
    for name in strs | enums | {k for k, v in base.items() if isinstance(v, dict | list)}:
        bad = rnd.choice([1, 2**70, True, None] + ([] if isinstance(base[name], list) else [[]])
                         + ([] if isinstance(base[name], dict) else [{}]))
        out.append(({**base, name: bad}, "TypeConstraintViolation"))
    for name in enums:
        out.append(({**base, name: rnd.choice(["Bogus", "", "hard", "ON"])},
                    "PropertyConstraintViolation"))
    if "connectorId" in ints and wire is WIRES["1.6"]:  # 1.6: minimum 0 (2.0.1 has none)
        out.append(({**base, "connectorId": -rnd.randrange(1, 2**31)},
                    "PropertyConstraintViolation"))
    longer = _long_token(action, base, rnd.choice([37, 500, 100_000]))
    if longer is not None:
        out.append((longer, "PropertyConstraintViolation"))
    out.append((rnd.choice([[], "payload", 5, None, [base]]), wire.format))
    return out


def corpus(seed: int, count: int, version: str = "1.6") -> list[Frame]:
    """At least `count` hostile frames, shuffled; the 1 MB ones included once each."""
    wire = WIRES[version]
    rnd = random.Random(seed)
    frames: list[Frame] = []
    n = 0

    def uid() -> str:
        nonlocal n
        n += 1
        return f"fz{seed}-{n}"

    def call(action: str, payload: Any, expect: str, kind: str) -> None:
        u = uid()
        frames.append(Frame(json.dumps([2, u, action, payload]), expect, u, kind))

    # 1 MB frames: a valid DataTransfer (answered), an idTag over maxLength, an unknown action,
    # deep nesting; each once.
    mb = 1_000_000
    call("DataTransfer", {"vendorId": "fuzz", "data": "D" * mb}, RESULT, "1MB")
    start, start_base = wire.start
    call(start, _long_token(start, start_base, mb), "PropertyConstraintViolation", "1MB")
    call("Nope" * 10, {"x": "N" * mb}, "NotSupported", "1MB")
    u = uid()
    frames.append(Frame(f'[2, "{u}", "Reset", {{"type": ' + "[" * (mb // 2) + "]" * (mb // 2)
                        + "}]", wire.format, u, "1MB"))
    frames.append(Frame("[" * mb, NONE, None, "1MB"))
    while len(frames) < count:
        kind = rnd.randrange(10)
        if kind == 0:  # not JSON, or truncated: no id to answer to
            good = json.dumps([2, "t", "Reset", wire.reset])
            data = rnd.choice([good[:rnd.randrange(1, len(good) - 1)],
                               "".join(chr(rnd.randrange(32, 0x2FF)) for _ in range(40)),
                               "", " ", "null", "{}", '{"a": 1}', "[]", "NaN", "\u0000"])
            frames.append(Frame(data, NONE, None, "bad JSON"))
        elif kind == 1:  # wrong message type id
            u = uid()
            mtype = rnd.choice([0, 1, 5, 6, 99, -1, "2", None, [2], {}, 2**70])
            frames.append(Frame(json.dumps([mtype, u, "Reset", wire.reset]),
                                wire.message_type, u, "message type"))
        elif kind == 2:  # a CALL of the wrong shape
            u = uid()
            data = rnd.choice([[2, u], [2, u, "Reset"], [2, u, 5, {}], [2, u, None, {}],
                               [2, u, "Reset", wire.reset, "extra"]])
            frames.append(Frame(json.dumps(data), wire.rpc, u, "CALL shape"))
        elif kind == 3:  # no readable id
            data = rnd.choice([[2], [2, 5, "Reset", {}], [2, None, "Reset", {}],
                               [2, ["id"], "Reset", {}], [2, {}, "Reset", {}]])
            frames.append(Frame(json.dumps(data), NONE, None, "no id"))
        elif kind == 4:  # an action the version does not have
            call(rnd.choice(wire.unknown), {}, "NotSupported", "unknown action")
        elif kind == 5:  # an action a station does not serve
            call(rnd.choice(wire.not_implemented), {}, "NotImplemented", "not implemented")
        elif kind in (6, 7):  # schema-invalid payloads of served actions
            action = rnd.choice(sorted(wire.handled))
            payload, code = rnd.choice(_mutations(rnd, action, wire))
            call(action, payload, code, "schema")
        elif kind == 8:  # replies to nothing, well-formed or not
            u = uid()
            data = rnd.choice([[3, u, {}], [3, u, {"status": "Accepted"}],
                               [4, u, "GenericError", "", {}],
                               [4, u, "InternalError", "x" * 1000, {"a": [1]}],
                               [3], [4, u], [3, u], [4, u, 5, 6, 7], [3, u, [], "extra"]])
            frames.append(Frame(json.dumps(data), NONE, None, "reply to nothing"))
        else:  # binary frames: the same content, handled like text
            u = uid()
            choice = rnd.randrange(3)
            if choice == 0:
                frames.append(Frame(json.dumps([2, u, "GetLocalListVersion", {}]).encode(),
                                    RESULT, u, "binary"))
            elif choice == 1:
                frames.append(Frame(bytes(rnd.randrange(256) for _ in range(64)), NONE, None,
                                    "binary"))
            else:
                frames.append(Frame(json.dumps([2, u, "Reset", {"type": 1}]).encode(),
                                    "TypeConstraintViolation", u, "binary"))
    rnd.shuffle(frames)
    return frames
