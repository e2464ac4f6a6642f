"""Pure mappings between the model's effects, messages and records and OCPP 2.0.1 payloads
(camelCase dicts), and the 2.0.1 spellings of the model's neutral enums."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voltbus_common.enums import ConnectorStatus, StopReason
from voltbus_ocpp.messages import MeterValuesNow
from voltbus_ocpp.model.events import MeterSnapshot, SendStatus
from voltbus_ocpp.model.results import (
    AuthStatus,
    ChargingState,
    Measurand,
    Outcome,
    ReadingContext,
    TransferEnd,
    TxStart,
    TxUpdate,
)
from voltbus_ocpp.model.tokens import IdToken, TokenType
from voltbus_ocpp.protocol.wire_time import iso
from voltbus_ocpp.records import (
    MeterValuesRecord,
    TransactionStarted,
    TransactionStopped,
    TransactionUpdated,
)

PHASES = ("L1", "L2", "L3")
MEASURANDS = {
    Measurand.ENERGY_IMPORT_WH: ("Energy.Active.Import.Register", "Wh"),
    Measurand.POWER_IMPORT_W: ("Power.Active.Import", "W"),
    Measurand.CURRENT_IMPORT_A: ("Current.Import", "A"),
    Measurand.VOLTAGE_V: ("Voltage", "V"),
    Measurand.CURRENT_OFFERED_A: ("Current.Offered", "A"),
}
CONTEXTS = {
    ReadingContext.PERIODIC: "Sample.Periodic", ReadingContext.CLOCK: "Sample.Clock",
    ReadingContext.TRIGGER: "Trigger", ReadingContext.BEGIN: "Transaction.Begin",
    ReadingContext.END: "Transaction.End",
}
CONNECTOR_STATUS = {
    ConnectorStatus.AVAILABLE: "Available", ConnectorStatus.RESERVED: "Reserved",
    ConnectorStatus.UNAVAILABLE: "Unavailable", ConnectorStatus.FAULTED: "Faulted",
}  # every other status: Occupied (2.0.1 moved the session phases into TransactionEvent)
STOPPED_REASON = {
    StopReason.DE_AUTHORIZED: "DeAuthorized", StopReason.EMERGENCY_STOP: "EmergencyStop",
    StopReason.EV_DISCONNECTED: "EVDisconnected", StopReason.HARD_RESET: "ImmediateReset",
    StopReason.SOFT_RESET: "ImmediateReset", StopReason.LOCAL: "Local",
    StopReason.OTHER: "Other", StopReason.POWER_LOSS: "PowerLoss", StopReason.REBOOT: "Reboot",
    StopReason.REMOTE: "Remote", StopReason.UNLOCK_COMMAND: "Other",
}
STOP_TRIGGER = {
    StopReason.EV_DISCONNECTED: "EVCommunicationLost", StopReason.REMOTE: "RemoteStop",
    StopReason.LOCAL: "StopAuthorized", StopReason.DE_AUTHORIZED: "Deauthorized",
    StopReason.HARD_RESET: "ResetCommand", StopReason.SOFT_RESET: "ResetCommand",
    StopReason.UNLOCK_COMMAND: "UnlockCommand",
}  # the rest: AbnormalCondition
UPDATE_TRIGGER = {  # why a running transaction is reported between its start and end
    TxUpdate.AUTHORIZED: "Authorized", TxUpdate.EV_CONNECTED: "CablePluggedIn",
    TxUpdate.CHARGING_RATE_CHANGED: "ChargingRateChanged",  # K11.FR.04, K13.FR.03
    TxUpdate.CHARGING_STATE_CHANGED: "ChargingStateChanged",  # E02, E06
    TxUpdate.TRIGGERED: "Trigger",  # F06: TriggerMessage TransactionEvent
}
METER_TRIGGER = {ReadingContext.CLOCK: "MeterValueClock", ReadingContext.TRIGGER: "Trigger"}
# the rest (periodic samples): MeterValuePeriodic
CHARGING_STATE = {  # ChargingStateEnumType
    ChargingState.CHARGING: "Charging", ChargingState.EV_CONNECTED: "EVConnected",
    ChargingState.SUSPENDED_EV: "SuspendedEV", ChargingState.SUSPENDED_EVSE: "SuspendedEVSE",
    ChargingState.IDLE: "Idle",
}
# E06.FR.07 (TxStopPoint EnergyTransfer): the end of the energy transfer ends the transaction,
# triggerReason ChargingStateChanged with the charging state it went to; an EV that stopped
# drawing is StoppedByEV
TRANSFER_END = {TransferEnd.EV_SUSPENDED: ("SuspendedEV", "StoppedByEV"),
                TransferEnd.EVSE_SUSPENDED: ("SuspendedEVSE", "Other"),
                TransferEnd.EV_DISCONNECTED: ("Idle", "EVDisconnected")}
AUTH_STATUS = {
    "Accepted": AuthStatus.ACCEPTED, "Blocked": AuthStatus.BLOCKED,
    "ConcurrentTx": AuthStatus.CONCURRENT_TX, "Expired": AuthStatus.EXPIRED,
}  # Invalid, NoCredit, NotAllowedTypeEVSE, NotAtThisLocation, NotAtThisTime, Unknown: invalid
OUTCOMES = {Outcome.ACCEPTED: "Accepted", Outcome.SCHEDULED: "Scheduled",
            Outcome.UNLOCKED: "Unlocked", Outcome.UNLOCK_FAILED: "UnlockFailed",
            Outcome.OCCUPIED: "Occupied",
            Outcome.FAULTED: "Faulted", Outcome.UNAVAILABLE: "Unavailable"}  # else Rejected


def outcome(value: Outcome) -> str:
    """A model answer as a 2.0.1 status (Rejected where 2.0.1 has no closer word)."""
    return OUTCOMES.get(value, "Rejected")


def auth_status(value: str) -> AuthStatus:
    """An idTokenInfo status (AuthorizationStatusEnumType) in the model's terms."""
    return AUTH_STATUS.get(value, AuthStatus.INVALID)


def id_token(tag: IdToken) -> dict[str, str]:
    """An id token as an IdTokenType: its value and the type it came with (a card's reader
    kind, a RequestStartTransaction's type; NoAuthorization with an empty value)."""
    return {"idToken": tag.value, "type": tag.type.value}


def token(value: dict[str, Any]) -> IdToken:
    """An IdTokenType (as the ocpp package passes it, snake_case keys) as the model's token
    (the schema allows only IdTokenEnumType values: TokenType has them all)."""
    return IdToken(value["id_token"], TokenType(value["type"]))


def _value(number: float) -> float:
    return round(number, 3)


def sampled_values(reading: MeterSnapshot, measurands: Sequence[Measurand],
                   context: ReadingContext) -> list[dict[str, Any]]:
    """SampledValueType entries for the measurands the meter has."""
    out: list[dict[str, Any]] = []

    def add(m: Measurand, value: float, phase: str | None = None) -> None:
        name, unit = MEASURANDS[m]
        entry: dict[str, Any] = {"value": _value(value), "context": CONTEXTS[context],
                                 "measurand": name, "location": "Outlet",
                                 "unitOfMeasure": {"unit": unit}}
        if phase:
            entry["phase"] = phase
        out.append(entry)

    for m in measurands:
        if m is Measurand.ENERGY_IMPORT_WH:
            add(m, reading.energy_wh)
        elif m is Measurand.POWER_IMPORT_W:
            add(m, reading.power_w)
        elif m is Measurand.CURRENT_IMPORT_A:
            for phase, amps in zip(PHASES, reading.current_a, strict=False):
                add(m, amps, phase)
        elif m is Measurand.VOLTAGE_V:
            for phase, volts in zip(PHASES, reading.voltage_v, strict=False):
                add(m, volts, f"{phase}-N")
    return out


def status_notification(effect: SendStatus) -> dict[str, Any]:
    """StatusNotificationRequest: one connector per EVSE, EVSE id = our connector number."""
    return {"timestamp": iso(effect.ts),
            "connectorStatus": CONNECTOR_STATUS.get(effect.status, "Occupied"),
            "evseId": effect.connector, "connectorId": 1}


def meter_values(message: MeterValuesNow) -> dict[str, Any]:
    """MeterValuesRequest (outside a transaction, or triggered)."""
    return {"evseId": message.connector, "meterValue": [
        {"timestamp": iso(message.ts), "sampledValue": sampled_values(
            message.reading, message.measurands, message.context)}]}


def transaction_event(record: TransactionStarted | MeterValuesRecord | TransactionUpdated
                      | TransactionStopped, transaction_id: str, seq_no: int) -> dict[str, Any]:
    """TransactionEventRequest Started, Updated or Ended.

    A start at plug-in before authorisation (E02) is Started with triggerReason CablePluggedIn
    and no idToken; its token follows in an Updated with triggerReason Authorized and the
    idToken. A start at authorisation before plug-in (E03) is Started Authorized with the
    idToken; the EV's arrival follows as an Updated with triggerReason CablePluggedIn; an EV
    that does not come in EVConnectionTimeOut ends it: triggerReason EVConnectTimeout,
    stoppedReason Timeout. A remote start's id (RequestStartTransaction remoteStartId) goes in
    the first event of its transaction (F02.FR.01), the Started or, for a transaction running
    already, the Updated giving it the token; that event's triggerReason is RemoteStart where it
    would be Authorized (a start at plug-in or at energy flow keeps its own). Every event the
    model knows the charging state of carries it; a change no other event carried is an Updated
    ChargingStateChanged of its own."""
    if isinstance(record, TransactionStarted):
        s = record.effect
        info: dict[str, Any] = {"transactionId": transaction_id}
        trigger = "Authorized" if s.id_tag is not None else "CablePluggedIn"
        if s.id_tag is None:
            info["chargingState"] = "EVConnected"  # plugged in, not authorised: no power yet
        if s.point is TxStart.ENERGY_TRANSFER:  # E01.FR.06: the EV began drawing
            info["chargingState"], trigger = "Charging", "ChargingStateChanged"
        if s.point is TxStart.PARKING_BAY:  # E01.FR.01: the bay detector saw the vehicle
            info["chargingState"], trigger = "Idle", "EVDetected"
        if s.charging_state is not None:  # the model's, derived with the connector status
            info["chargingState"] = CHARGING_STATE[s.charging_state]
        payload: dict[str, Any] = {
            "eventType": "Started", "timestamp": iso(s.ts),
            "triggerReason": trigger,
            "seqNo": seq_no, "transactionInfo": info,
            "evse": {"id": s.connector, "connectorId": 1},
            "meterValue": [{"timestamp": iso(s.ts), "sampledValue": [{
                "value": _value(s.meter_start_wh), "context": "Transaction.Begin",
                "measurand": "Energy.Active.Import.Register", "location": "Outlet",
                "unitOfMeasure": {"unit": "Wh"}}]}]}
        if s.id_tag is not None:
            payload["idToken"] = id_token(s.id_tag)
        if s.reservation_id is not None:
            payload["reservationId"] = s.reservation_id
        if s.remote_start_id is not None:  # F02.FR.01: the first event after the RequestStart
            info["remoteStartId"] = s.remote_start_id
            if trigger == "Authorized":  # the remote start is what started it, not the EV
                payload["triggerReason"] = "RemoteStart"
        return payload
    if isinstance(record, TransactionUpdated):
        u = record.effect
        payload = {"eventType": "Updated", "timestamp": iso(u.ts),
                   "triggerReason": UPDATE_TRIGGER[u.reason], "seqNo": seq_no,
                   "transactionInfo": {"transactionId": transaction_id}}
        if u.charging_state is not None:
            payload["transactionInfo"]["chargingState"] = CHARGING_STATE[u.charging_state]
        if u.id_tag is not None:
            payload["idToken"] = id_token(u.id_tag)
        if u.remote_start_id is not None:  # F02.FR.01: the token came by RequestStart
            payload["transactionInfo"]["remoteStartId"] = u.remote_start_id
            payload["triggerReason"] = "RemoteStart"
        return payload
    if isinstance(record, MeterValuesRecord):
        m = record.effect
        payload = {"eventType": "Updated", "timestamp": iso(m.ts),
                   "triggerReason": METER_TRIGGER.get(m.context, "MeterValuePeriodic"),
                   "seqNo": seq_no, "transactionInfo": {"transactionId": transaction_id},
                   "meterValue": [{"timestamp": iso(m.ts), "sampledValue": sampled_values(
                       m.reading, record.measurands, m.context)}]}
        if m.charging_state is not None:
            payload["transactionInfo"]["chargingState"] = CHARGING_STATE[m.charging_state]
        return payload
    e = record.effect
    edges = record.sampled or record.aligned or (Measurand.ENERGY_IMPORT_WH,)
    end = [{"timestamp": iso(e.ts), "sampledValue": [
        {**v, "value": _value(e.meter_stop_wh)} if v["measurand"] ==
        "Energy.Active.Import.Register" else v
        for v in sampled_values(e.reading, edges, ReadingContext.END)]}] if e.reading else []
    payload = {"eventType": "Ended", "timestamp": iso(e.ts),
               "triggerReason": "EVConnectTimeout" if e.timed_out
               else STOP_TRIGGER.get(e.reason, "AbnormalCondition"),
               "seqNo": seq_no, "transactionInfo": {
                   "transactionId": transaction_id,
                   "stoppedReason": "Timeout" if e.timed_out else STOPPED_REASON[e.reason]}}
    if e.charging_state is not None:
        payload["transactionInfo"]["chargingState"] = CHARGING_STATE[e.charging_state]
    if e.departed:  # E06.FR.01: the bay detector no longer sees the vehicle
        payload["triggerReason"] = "EVDeparted"
    if e.transfer_end is not None:
        state, stopped = TRANSFER_END[e.transfer_end]
        payload["triggerReason"] = "ChargingStateChanged"
        payload["transactionInfo"].update(chargingState=state, stoppedReason=stopped)
    if e.id_tag is not None:
        payload["idToken"] = id_token(e.id_tag)
    if end and end[0]["sampledValue"]:
        payload["meterValue"] = end
    return payload
