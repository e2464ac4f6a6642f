"""Pure mappings between the model's effects and OCPP 1.6 wire payloads (camelCase dicts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from voltbus_ocpp.model.events import (
    MeterSnapshot,
    SendMeterValues,
    SendStartTransaction,
    SendStatus,
    SendStopTransaction,
)

PHASES = ("L1", "L2", "L3")


def iso(ts: datetime) -> str:
    """OCPP dateTime: ISO 8601 UTC with a Z."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """An OCPP dateTime (Z or offset) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _value(number: float) -> str:
    return f"{number:.3f}".rstrip("0").rstrip(".") if number % 1 else str(int(number))


def sampled_values(reading: MeterSnapshot, measurands: list[str], context: str,
                   *, offered_a: float | None = None) -> list[dict[str, Any]]:
    """SampledValue entries for the measurands the meter has (the rest are left out)."""
    out: list[dict[str, Any]] = []

    def add(measurand: str, value: float, unit: str, phase: str | None = None) -> None:
        entry: dict[str, Any] = {"value": _value(value), "context": context,
                                 "measurand": measurand, "location": "Outlet", "unit": unit}
        if phase:
            entry["phase"] = phase
        out.append(entry)

    for measurand in measurands:
        if measurand == "Energy.Active.Import.Register":
            add(measurand, reading.energy_wh, "Wh")
        elif measurand == "Power.Active.Import":
            add(measurand, reading.power_w, "W")
        elif measurand == "Current.Import":
            for phase, amps in zip(PHASES, reading.current_a, strict=False):
                add(measurand, amps, "A", phase)
        elif measurand == "Voltage":
            for phase, volts in zip(PHASES, reading.voltage_v, strict=False):
                add(measurand, volts, "V", f"{phase}-N")
        elif measurand == "Current.Offered" and offered_a is not None:
            add(measurand, offered_a, "A")
    return out


def meter_values(effect: SendMeterValues, measurands: list[str],
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


def start_transaction(effect: SendStartTransaction) -> dict[str, Any]:
    """StartTransaction.req; meterStart in whole Wh as the schema wants an integer."""
    payload: dict[str, Any] = {"connectorId": effect.connector, "idTag": effect.id_tag,
                               "meterStart": round(effect.meter_start_wh),
                               "timestamp": iso(effect.ts)}
    if effect.reservation_id is not None:
        payload["reservationId"] = effect.reservation_id
    return payload


def stop_transaction(effect: SendStopTransaction, sampled: list[str] | None = None,
                     aligned: list[str] | None = None) -> dict[str, Any]:
    """StopTransaction.req; transactionId is filled in by the outbox when sent.

    transactionData (OCPP 1.6 9.1.36/37): the register at the start (Transaction.Begin), every
    periodic sample with the StopTxnSampledData measurands, every clock-aligned sample with the
    StopTxnAlignedData measurands, and the end values (Transaction.End). Begin/End use
    StopTxnSampledData, or StopTxnAlignedData when only that is set.
    """
    payload: dict[str, Any] = {"meterStop": round(effect.meter_stop_wh),
                               "timestamp": iso(effect.ts), "reason": effect.reason.value,
                               "transactionId": 0}
    if effect.id_tag:
        payload["idTag"] = effect.id_tag
    sampled, aligned = sampled or [], aligned or []
    edges = sampled or aligned
    if edges and effect.started_at is not None and effect.meter_start_wh is not None:
        data: list[dict[str, Any]] = []
        if "Energy.Active.Import.Register" in edges:
            data.append({"timestamp": iso(effect.started_at), "sampledValue": [
                {"value": _value(effect.meter_start_wh), "context": "Transaction.Begin",
                 "measurand": "Energy.Active.Import.Register", "location": "Outlet",
                 "unit": "Wh"}]})
        for sample in effect.samples:
            measurands = sampled if sample.context == "Sample.Periodic" else aligned
            values = sampled_values(sample.reading, measurands, sample.context)
            if values:
                data.append({"timestamp": iso(sample.ts), "sampledValue": values})
        if effect.reading is not None:
            end = sampled_values(effect.reading, edges, "Transaction.End")
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
