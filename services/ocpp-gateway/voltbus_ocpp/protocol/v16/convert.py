"""Pure mappings between the model's effects, messages and records and OCPP 1.6 wire payloads
(camelCase dicts), and the 1.6 spellings of the model's neutral enums."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voltbus_ocpp.messages import (
    Boot,
    Heartbeat,
    LogStatus,
    Message,
    MeterValuesNow,
    SignCertificateRequest,
    SignedFirmwareStatus,
    StationStatus,
)
from voltbus_ocpp.model.events import (
    AuthorizeAnswered,
    MeterSnapshot,
    SendAuthorize,
    SendMeterValues,
    SendStartTransaction,
    SendStatus,
    SendStopTransaction,
    StartAnswered,
)
from voltbus_ocpp.model.results import AuthStatus, Measurand, Outcome, ReadingContext
from voltbus_ocpp.model.tokens import IdToken
from voltbus_ocpp.protocol.security_event import security_event
from voltbus_ocpp.protocol.wire_time import iso as iso  # re-exported: convert.iso
from voltbus_ocpp.protocol.wire_time import parse_time as parse_time
from voltbus_ocpp.records import (
    ExternalLimitRecord,
    FirmwareStatusRecord,
    MeterValuesRecord,
    MonitorEventRecord,
    Record,
    SecurityEventRecord,
    TransactionStarted,
    TransactionStopped,
    TransactionUpdated,
)

PHASES = ("L1", "L2", "L3")

MEASURANDS: dict[Measurand, str] = {
    Measurand.ENERGY_IMPORT_WH: "Energy.Active.Import.Register",
    Measurand.POWER_IMPORT_W: "Power.Active.Import",
    Measurand.CURRENT_IMPORT_A: "Current.Import",
    Measurand.VOLTAGE_V: "Voltage",
    Measurand.CURRENT_OFFERED_A: "Current.Offered",
}
MEASURAND_OF: dict[str, Measurand] = {name: m for m, name in MEASURANDS.items()}

CONTEXTS: dict[ReadingContext, str] = {
    ReadingContext.PERIODIC: "Sample.Periodic", ReadingContext.CLOCK: "Sample.Clock",
    ReadingContext.TRIGGER: "Trigger", ReadingContext.BEGIN: "Transaction.Begin",
    ReadingContext.END: "Transaction.End",
}

OUTCOMES: dict[Outcome, str] = {
    Outcome.ACCEPTED: "Accepted", Outcome.REJECTED: "Rejected", Outcome.SCHEDULED: "Scheduled",
    Outcome.NOT_SUPPORTED: "NotSupported", Outcome.UNLOCKED: "Unlocked",
    Outcome.OCCUPIED: "Occupied", Outcome.FAULTED: "Faulted",
    Outcome.UNAVAILABLE: "Unavailable", Outcome.UNLOCK_FAILED: "UnlockFailed",
}
"""The model's answers in 1.6 spelling (each request's status enum uses a subset)."""

AUTH_STATUSES: dict[AuthStatus, str] = {
    AuthStatus.ACCEPTED: "Accepted", AuthStatus.BLOCKED: "Blocked",
    AuthStatus.EXPIRED: "Expired", AuthStatus.INVALID: "Invalid",
    AuthStatus.CONCURRENT_TX: "ConcurrentTx",
}
AUTH_STATUS_OF: dict[str, AuthStatus] = {name: s for s, name in AUTH_STATUSES.items()}


def outcome(value: Outcome) -> str:
    """A model answer as the 1.6 status."""
    return OUTCOMES[value]


def auth_status(value: str) -> AuthStatus:
    """An IdTagInfo status (AuthorizationStatus) in the model's terms."""
    return AUTH_STATUS_OF[value]


def transaction_id(value: str | None) -> int | None:
    """The model's transaction id as 1.6's integer transactionId."""
    return None if value is None else int(value)


def _value(number: float) -> str:
    return f"{number:.3f}".rstrip("0").rstrip(".") if number % 1 else str(int(number))


def sampled_values(reading: MeterSnapshot, measurands: Sequence[Measurand],
                   context: ReadingContext, *, offered_a: float | None = None
                   ) -> list[dict[str, Any]]:
    """SampledValue entries for the measurands the meter has (the rest are left out)."""
    out: list[dict[str, Any]] = []

    def add(measurand: Measurand, value: float, unit: str, phase: str | None = None) -> None:
        entry: dict[str, Any] = {"value": _value(value), "context": CONTEXTS[context],
                                 "measurand": MEASURANDS[measurand], "location": "Outlet",
                                 "unit": unit}
        if phase:
            entry["phase"] = phase
        out.append(entry)

    for measurand in measurands:
        if measurand is Measurand.ENERGY_IMPORT_WH:
            add(measurand, reading.energy_wh, "Wh")
        elif measurand is Measurand.POWER_IMPORT_W:
            add(measurand, reading.power_w, "W")
        elif measurand is Measurand.CURRENT_IMPORT_A:
            for phase, amps in zip(PHASES, reading.current_a, strict=False):
                add(measurand, amps, "A", phase)
        elif measurand is Measurand.VOLTAGE_V:
            for phase, volts in zip(PHASES, reading.voltage_v, strict=False):
                add(measurand, volts, "V", f"{phase}-N")
        elif measurand is Measurand.CURRENT_OFFERED_A and offered_a is not None:
            add(measurand, offered_a, "A")
    return out


def meter_values(effect: SendMeterValues, measurands: Sequence[Measurand],
                 transaction_id: int | None = None) -> dict[str, Any]:
    """MeterValues.req (transactionId filled in by the outbox when known)."""
    payload: dict[str, Any] = {
        "connectorId": effect.connector,
        "meterValue": [{"timestamp": iso(effect.ts),
                        "sampledValue": sampled_values(effect.reading, measurands,
                                                       effect.context)}]}
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return payload


def _id_tag(tag: IdToken | None) -> str:
    """A token as a 1.6 idTag: its value (1.6 has no types; a 1.6 transaction always has one)."""
    return "" if tag is None else tag.value


def start_transaction(effect: SendStartTransaction) -> dict[str, Any]:
    """StartTransaction.req; meterStart in whole Wh as the schema wants an integer."""
    payload: dict[str, Any] = {"connectorId": effect.connector, "idTag": _id_tag(effect.id_tag),
                               "meterStart": round(effect.meter_start_wh),
                               "timestamp": iso(effect.ts)}
    if effect.reservation_id is not None:
        payload["reservationId"] = effect.reservation_id
    return payload


def stop_transaction(effect: SendStopTransaction, sampled: Sequence[Measurand] | None = None,
                     aligned: Sequence[Measurand] | None = None) -> dict[str, Any]:
    """StopTransaction.req; transactionId is filled in by the outbox when sent.

    transactionData (OCPP 1.6 9.1.36/37): the register at the start (Transaction.Begin), every
    periodic sample with the StopTxnSampledData measurands, every clock-aligned sample with the
    StopTxnAlignedData measurands, and the end values (Transaction.End). Begin/End use
    StopTxnSampledData, or StopTxnAlignedData when only that is set.
    """
    payload: dict[str, Any] = {"meterStop": round(effect.meter_stop_wh),
                               "timestamp": iso(effect.ts), "reason": effect.reason.value,
                               "transactionId": 0}
    if effect.id_tag is not None and not effect.id_tag.free:
        payload["idTag"] = effect.id_tag.value
    sampled, aligned = sampled or (), aligned or ()
    edges = sampled or aligned
    if edges and effect.started_at is not None and effect.meter_start_wh is not None:
        data: list[dict[str, Any]] = []
        if Measurand.ENERGY_IMPORT_WH in edges:
            data.append({"timestamp": iso(effect.started_at), "sampledValue": [
                {"value": _value(effect.meter_start_wh), "context": "Transaction.Begin",
                 "measurand": "Energy.Active.Import.Register", "location": "Outlet",
                 "unit": "Wh"}]})
        for sample in effect.samples:
            measurands = sampled if sample.context is ReadingContext.PERIODIC else aligned
            values = sampled_values(sample.reading, measurands, sample.context)
            if values:
                data.append({"timestamp": iso(sample.ts), "sampledValue": values})
        if effect.reading is not None:
            end = sampled_values(effect.reading, edges, ReadingContext.END)
            for value in end:
                if value["measurand"] == "Energy.Active.Import.Register":
                    value["value"] = _value(effect.meter_stop_wh)
            if end:
                data.append({"timestamp": iso(effect.ts), "sampledValue": end})
        if data:
            payload["transactionData"] = data
    return payload


def status_notification(effect: SendStatus) -> dict[str, Any]:
    """StatusNotification.req."""
    payload: dict[str, Any] = {"connectorId": effect.connector, "status": effect.status.value,
                               "errorCode": effect.error_code.value, "timestamp": iso(effect.ts)}
    if effect.info:
        payload["info"] = effect.info[:50]
    return payload


# --- the station's messages and outbox records as CALLs, and their answers ----------------------


def station_status(message: StationStatus) -> dict[str, Any]:
    """StatusNotification.req for connector 0 (the station as a whole)."""
    payload: dict[str, Any] = {"connectorId": 0,
                               "status": "Available" if message.available else "Unavailable",
                               "errorCode": "NoError"}
    if message.ts is not None:
        payload["timestamp"] = iso(message.ts)
    return payload


def live_meter_values(message: MeterValuesNow) -> dict[str, Any]:
    """MeterValues.req sent live (outside a transaction, or triggered)."""
    payload: dict[str, Any] = {"connectorId": message.connector, "meterValue": [
        {"timestamp": iso(message.ts), "sampledValue": sampled_values(
            message.reading, message.measurands, message.context)}]}
    if message.transaction_id is not None:
        payload["transactionId"] = transaction_id(message.transaction_id)
    return payload


MAINTENANCE_ACTIONS = {"firmware": "FirmwareStatusNotification",
                       "diagnostics": "DiagnosticsStatusNotification"}


def message_call(message: Message, boot: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A live message as (action, payload); boot is the BootNotification payload."""
    if isinstance(message, SendStatus):
        return "StatusNotification", status_notification(message)
    if isinstance(message, SendAuthorize):
        return "Authorize", {"idTag": message.id_tag.value}
    if isinstance(message, Heartbeat):
        return "Heartbeat", {}
    if isinstance(message, Boot):
        return "BootNotification", boot
    if isinstance(message, StationStatus):
        return "StatusNotification", station_status(message)
    if isinstance(message, MeterValuesNow):
        return "MeterValues", live_meter_values(message)
    if isinstance(message, SignCertificateRequest):
        return "SignCertificate", {"csr": message.csr}
    if isinstance(message, LogStatus | SignedFirmwareStatus):
        # requestId stays None when Idle: left out of the frame (the ocpp package's dataclasses
        # require the argument although the schemas make it optional)
        payload: dict[str, Any] = {"status": message.status, "requestId": message.request_id}
        return ("LogStatusNotification" if isinstance(message, LogStatus)
                else "SignedFirmwareStatusNotification"), payload
    return MAINTENANCE_ACTIONS[message.kind], {"status": message.status}


def record_call(record: Record, tx_id: str | None) -> tuple[str, dict[str, Any]]:
    """An outbox record as (action, payload), with the transaction's id once known."""
    if isinstance(record, TransactionStarted):
        return "StartTransaction", start_transaction(record.effect)
    if isinstance(record, MeterValuesRecord):
        return "MeterValues", meter_values(record.effect, record.measurands,
                                           transaction_id(tx_id))
    if isinstance(record, TransactionStopped):
        payload = stop_transaction(record.effect, record.sampled, record.aligned)
        return "StopTransaction", {**payload, "transactionId": transaction_id(tx_id)}
    if isinstance(record, SecurityEventRecord):
        return "SecurityEventNotification", security_event(record)
    if isinstance(record, FirmwareStatusRecord):
        if record.signed:
            return "SignedFirmwareStatusNotification", {"status": record.status,
                                                        "requestId": record.request_id}
        return "FirmwareStatusNotification", {"status": record.status}
    if isinstance(record, MonitorEventRecord):
        raise ValueError("2.0.1 monitor events cannot be sent over OCPP 1.6")
    if isinstance(record, TransactionUpdated):
        raise ValueError("a 2.0.1 transaction update cannot be sent over OCPP 1.6")
    if isinstance(record, ExternalLimitRecord):
        raise ValueError("OCPP 1.6 has no message reporting an external limit")
    if record.subprotocol != "ocpp1.6":
        raise ValueError(f"a {record.subprotocol} message cannot be sent over OCPP 1.6")
    if record.action == "StartTransaction" or tx_id is None:
        return record.action, record.payload
    return record.action, {**record.payload, "transactionId": transaction_id(tx_id)}


def authorize_answered(id_tag: IdToken, answer: dict[str, Any]) -> AuthorizeAnswered:
    """Authorize.conf as the model's event."""
    info = answer.get("idTagInfo", {})
    expiry = info.get("expiryDate")
    return AuthorizeAnswered(id_tag, auth_status(info.get("status", "Invalid")),
                             parse_time(expiry) if expiry else None, info.get("parentIdTag"))


def start_answered(local_id: int, answer: dict[str, Any]) -> StartAnswered:
    """StartTransaction.conf as the model's event."""
    status = answer.get("idTagInfo", {}).get("status", "Accepted")
    return StartAnswered(local_id, str(int(answer["transactionId"])), auth_status(status))
