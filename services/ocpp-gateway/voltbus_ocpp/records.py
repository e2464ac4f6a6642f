"""What the durable outbox stores: version-neutral transaction records, as JSON, and back.

A record is the model's effect plus what was configured when it happened (which measurands to
report), so converting it to a protocol's message at send time gives exactly what converting it
at once would have. Rows written before records existed hold an OCPP 1.6 payload under its action
name; they come back as `WireRecord`s, which only the 1.6 adapter sends (as it always did).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voltbus_common.enums import StopReason
from voltbus_ocpp.model.events import (
    MeterSnapshot,
    Sample,
    SendMeterValues,
    SendStartTransaction,
    SendStopTransaction,
    SendTransactionUpdate,
)
from voltbus_ocpp.model.external_limits import LimitSource
from voltbus_ocpp.model.results import (
    ChargingState,
    Measurand,
    ReadingContext,
    TransferEnd,
    TxStart,
    TxUpdate,
)
from voltbus_ocpp.model.tokens import IdToken, stored_type

STARTED, METER_VALUES, STOPPED = "transaction_started", "meter_values", "transaction_stopped"
UPDATED = "transaction_updated"
SECURITY_EVENT = "security_event"
FIRMWARE_STATUS = "firmware_status"
EXTERNAL_LIMIT = "external_limit"
MONITOR_EVENT = "monitor_event"
LEGACY_V16 = frozenset({"StartTransaction", "MeterValues", "StopTransaction"})
"""Kinds of rows queued by gateways before records: 1.6 actions with 1.6 payloads."""


@dataclass(frozen=True)
class TransactionStarted:
    """A transaction began."""

    effect: SendStartTransaction
    offline: bool = False  # it happened while the central system could not be reached


@dataclass(frozen=True)
class MeterValuesRecord:
    """Meter values during a transaction, with the measurands configured when taken."""

    effect: SendMeterValues
    measurands: tuple[Measurand, ...]
    offline: bool = False


@dataclass(frozen=True)
class TransactionUpdated:
    """A running transaction got its id token or its EV after it started, an external limit
    moved its charging rate, or its charging state changed (2.0.1 only: OCPP 1.6 starts
    transactions once both are there and reports the rest by the connector status)."""

    effect: SendTransactionUpdate
    offline: bool = False


@dataclass(frozen=True)
class TransactionStopped:
    """A transaction ended, with the measurands configured for its samples."""

    effect: SendStopTransaction
    sampled: tuple[Measurand, ...]
    aligned: tuple[Measurand, ...]
    offline: bool = False


@dataclass(frozen=True)
class WireRecord:
    """A message stored already converted, by a gateway from before records."""

    subprotocol: str
    action: str
    payload: dict[str, Any]
    local_id: int | None = None


@dataclass(frozen=True)
class SecurityEventRecord:
    """A security event (security.py), sent as SecurityEventNotification; kept like a
    transaction message so none is lost offline (1.6 security whitepaper A04.FR.02)."""

    kind: str
    ts: datetime
    tech_info: str | None = None


@dataclass(frozen=True)
class FirmwareStatusRecord:
    """A firmware job's status that must not be lost (Installed after the restart, a final
    failure): FirmwareStatusNotification, or SignedFirmwareStatusNotification with the request
    id when signed. Kept in the outbox like a transaction message, so a link that drops (or a
    process that dies) between the boot and the send does not lose it."""

    status: str
    request_id: int | None = None
    signed: bool = False


@dataclass(frozen=True)
class ExternalLimitRecord:
    """An external limit started or moved (amps) or ended (None) on a connector (0: the
    station), model/external_limits.py; queued like a transaction message so a report made
    while the central system is away reaches it once it is back (2.0.1 K11-K13)."""

    connector: int
    source: LimitSource
    amps: float | None
    ts: datetime


@dataclass(frozen=True)
class MonitorEventData:
    """One event of a variable monitor (monitoring.py): its id, time, trigger (Alerting, Delta),
    the value read, whether a threshold cleared, the monitor (id, origin, severity) and the
    variable it watches (model.monitoring.Ref)."""

    event_id: int
    ts: datetime
    trigger: str
    actual: str
    cleared: bool
    monitor_id: int
    origin: str
    ref: tuple[str, int | None, int | None, str, str | None]
    severity: int


@dataclass(frozen=True)
class MonitorEventRecord:
    """Events raised at once, sent as one NotifyEvent (2.0.1); kept in the outbox so none is
    lost offline (N07.FR.04)."""

    events: tuple[MonitorEventData, ...]


Record = TransactionStarted | MeterValuesRecord | TransactionStopped | WireRecord | (
    SecurityEventRecord | FirmwareStatusRecord | TransactionUpdated | ExternalLimitRecord
    | MonitorEventRecord)
TxRecord = TransactionStarted | MeterValuesRecord | TransactionUpdated | TransactionStopped


def starts_transaction(record: Record) -> bool:
    """The record that gets the transaction its central-system id (sent without one)."""
    if isinstance(record, WireRecord):
        return record.action == "StartTransaction"
    return isinstance(record, TransactionStarted)


# --- encoding ----------------------------------------------------------------------------------


def _reading(r: MeterSnapshot) -> dict[str, Any]:
    return {"energy_wh": r.energy_wh, "power_w": r.power_w, "current_a": list(r.current_a),
            "voltage_v": list(r.voltage_v), "ts": r.ts.isoformat()}


def _snapshot(d: dict[str, Any]) -> MeterSnapshot:
    return MeterSnapshot(d["energy_wh"], d["power_w"], tuple(d["current_a"]),
                         tuple(d["voltage_v"]), datetime.fromisoformat(d["ts"]))


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def encode(record: Record) -> tuple[str, dict[str, Any]]:
    """The row's kind and JSON body."""
    kind, body = _encode(record)
    if isinstance(record, TxRecord) and record.offline:
        body["offline"] = True
    return kind, body


def _encode(record: Record) -> tuple[str, dict[str, Any]]:
    if isinstance(record, TransactionStarted):
        s = record.effect
        body: dict[str, Any] = {"connector": s.connector, "local_id": s.local_id,
                                **_tag(s.id_tag), "meter_start_wh": s.meter_start_wh,
                                "ts": s.ts.isoformat(), "reservation_id": s.reservation_id}
        if not s.plugged:
            body["plugged"] = False
        if s.point is not None:
            body["point"] = s.point.value
        if s.charging_state is not None:
            body["charging_state"] = s.charging_state.value
        if s.remote_start_id is not None:
            body["remote_start_id"] = s.remote_start_id
        return STARTED, body
    if isinstance(record, TransactionUpdated):
        u = record.effect
        return UPDATED, {"connector": u.connector, "local_id": u.local_id,
                         "reason": u.reason.value, "ts": u.ts.isoformat(), **_tag(u.id_tag),
                         **({"charging_state": u.charging_state.value}
                            if u.charging_state else {}),
                         **({"remote_start_id": u.remote_start_id}
                            if u.remote_start_id is not None else {})}
    if isinstance(record, MeterValuesRecord):
        m = record.effect
        return METER_VALUES, {"connector": m.connector, "local_id": m.local_id,
                              "reading": _reading(m.reading), "ts": m.ts.isoformat(),
                              "context": m.context.value,
                              "measurands": [x.value for x in record.measurands],
                              **({"charging_state": m.charging_state.value}
                                 if m.charging_state else {})}
    if isinstance(record, TransactionStopped):
        e = record.effect
        return STOPPED, {
            "connector": e.connector, "local_id": e.local_id, **_tag(e.id_tag),
            "meter_stop_wh": e.meter_stop_wh, "ts": e.ts.isoformat(), "reason": e.reason.value,
            "started_at": e.started_at.isoformat() if e.started_at else None,
            "meter_start_wh": e.meter_start_wh,
            "reading": _reading(e.reading) if e.reading else None,
            "samples": [{"ts": x.ts.isoformat(), "context": x.context.value,
                         "reading": _reading(x.reading)} for x in e.samples],
            "sampled": [x.value for x in record.sampled],
            "aligned": [x.value for x in record.aligned],
            **({"timed_out": True} if e.timed_out else {}),
            **({"transfer_end": e.transfer_end.value} if e.transfer_end else {}),
            **({"departed": True} if e.departed else {}),
            **({"charging_state": e.charging_state.value} if e.charging_state else {})}
    if isinstance(record, SecurityEventRecord):
        return SECURITY_EVENT, {"type": record.kind, "ts": record.ts.isoformat(),
                                "tech_info": record.tech_info}
    if isinstance(record, FirmwareStatusRecord):
        return FIRMWARE_STATUS, {"status": record.status, "request_id": record.request_id,
                                 "signed": record.signed}
    if isinstance(record, ExternalLimitRecord):
        return EXTERNAL_LIMIT, {"connector": record.connector, "source": record.source.value,
                                "amps": record.amps, "ts": record.ts.isoformat()}
    if isinstance(record, MonitorEventRecord):
        return MONITOR_EVENT, {"events": [{
            "event_id": e.event_id, "ts": e.ts.isoformat(), "trigger": e.trigger,
            "actual": e.actual, "cleared": e.cleared, "monitor_id": e.monitor_id,
            "origin": e.origin, "ref": list(e.ref), "severity": e.severity}
            for e in record.events]}
    return record.action, record.payload


def _tag(tag: IdToken | None) -> dict[str, Any]:
    """A record's id token: its value as id_tag, its type beside it."""
    return {"id_tag": None if tag is None else tag.value,
            **({} if tag is None else {"id_type": tag.type.value})}


def _token(body: dict[str, Any]) -> IdToken | None:
    """A record's id token; a row from before types were kept has no id_type: ISO14443, what was
    sent for it then (`tokens.stored_type`)."""
    value = body.get("id_tag")
    if value is None:
        return None
    return IdToken(value, stored_type(body.get("id_type")))


def _state(body: dict[str, Any]) -> ChargingState | None:
    """A record's charging state (absent in rows from before it was kept, and under 1.6)."""
    value = body.get("charging_state")
    return ChargingState(value) if value else None


def decode(kind: str, body: dict[str, Any], local_id: int | None = None) -> Record:
    """A stored row as a record (ValueError/KeyError if it is not one)."""
    if kind in LEGACY_V16:
        return WireRecord("ocpp1.6", kind, body, local_id)
    b = body
    offline = bool(b.get("offline", False))
    if kind == STARTED:
        return TransactionStarted(SendStartTransaction(
            b["connector"], b["local_id"], _token(b), b["meter_start_wh"],
            datetime.fromisoformat(b["ts"]), b["reservation_id"], b.get("plugged", True),
            TxStart(b["point"]) if b.get("point") else None, _state(b),
            b.get("remote_start_id")), offline)
    if kind == UPDATED:
        return TransactionUpdated(SendTransactionUpdate(
            b["connector"], b["local_id"], TxUpdate(b["reason"]),
            datetime.fromisoformat(b["ts"]), _token(b), _state(b),
            b.get("remote_start_id")), offline)
    if kind == METER_VALUES:
        return MeterValuesRecord(SendMeterValues(
            b["connector"], b["local_id"], _snapshot(b["reading"]),
            datetime.fromisoformat(b["ts"]), ReadingContext(b["context"]), _state(b)),
            tuple(Measurand(x) for x in b["measurands"]), offline)
    if kind == STOPPED:
        return TransactionStopped(SendStopTransaction(
            b["connector"], b["local_id"], _token(b), b["meter_stop_wh"],
            datetime.fromisoformat(b["ts"]), StopReason(b["reason"]), _time(b["started_at"]),
            b["meter_start_wh"], _snapshot(b["reading"]) if b["reading"] else None,
            tuple(Sample(datetime.fromisoformat(x["ts"]), _snapshot(x["reading"]),
                         ReadingContext(x["context"])) for x in b["samples"]),
            bool(b.get("timed_out", False)),
            TransferEnd(b["transfer_end"]) if b.get("transfer_end") else None,
            bool(b.get("departed", False)), _state(b)),
            tuple(Measurand(x) for x in b["sampled"]), tuple(Measurand(x) for x in b["aligned"]),
            offline)
    if kind == SECURITY_EVENT:
        return SecurityEventRecord(str(b["type"]), datetime.fromisoformat(b["ts"]),
                                   b.get("tech_info"))
    if kind == FIRMWARE_STATUS:
        request_id = b.get("request_id")
        return FirmwareStatusRecord(str(b["status"]), None if request_id is None
                                    else int(request_id), bool(b.get("signed", False)))
    if kind == EXTERNAL_LIMIT:
        amps = b["amps"]
        return ExternalLimitRecord(int(b["connector"]), LimitSource(b["source"]),
                                   None if amps is None else float(amps),
                                   datetime.fromisoformat(b["ts"]))
    if kind == MONITOR_EVENT:
        return MonitorEventRecord(tuple(MonitorEventData(
            int(e["event_id"]), datetime.fromisoformat(e["ts"]), str(e["trigger"]),
            str(e["actual"]), bool(e["cleared"]), int(e["monitor_id"]), str(e["origin"]),
            (str(e["ref"][0]), e["ref"][1], e["ref"][2], str(e["ref"][3]), e["ref"][4]),
            int(e["severity"])) for e in b["events"]))
    raise ValueError(f"unknown outbox record kind {kind!r}")
