"""The outbox stores version-neutral records and converts them when sending; rows a gateway from
before records queued (1.6 payloads) still go out after the upgrade, in order, with their ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.ocpp_gateway.conftest import Rig
from voltbus_common.enums import StopReason
from voltbus_ocpp.model.events import (
    MeterSnapshot,
    Sample,
    SendMeterValues,
    SendStartTransaction,
    SendStopTransaction,
    SendTransactionUpdate,
)
from voltbus_ocpp.model.results import (
    ChargingState,
    Measurand,
    ReadingContext,
    TransferEnd,
    TxStart,
    TxUpdate,
)
from voltbus_ocpp.offline_queue import OfflineQueue
from voltbus_ocpp.protocol.v16 import convert
from voltbus_ocpp.records import (
    MeterValuesRecord,
    Record,
    TransactionStarted,
    TransactionStopped,
    TransactionUpdated,
    WireRecord,
    decode,
    encode,
)
from voltbus_ocpp.store import Store

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
READING = MeterSnapshot(1234.5, 3680.0, (16.0, 15.9, 16.1), (230.0, 231.0, 229.0), T0)
ALL = tuple(Measurand)
START = SendStartTransaction(1, 7, "TAG", 1000.0, T0, reservation_id=3)
METER = SendMeterValues(1, 7, READING, T0 + timedelta(minutes=1), ReadingContext.CLOCK)
STOP = SendStopTransaction(1, 7, "TAG", 1234.5, T0 + timedelta(minutes=2),
                           StopReason.EV_DISCONNECTED, T0, 1000.0, READING,
                           (Sample(T0 + timedelta(minutes=1), READING, ReadingContext.PERIODIC),
                            Sample(T0 + timedelta(minutes=1), READING, ReadingContext.CLOCK)))


@pytest.mark.parametrize("record", [
    TransactionStarted(START), MeterValuesRecord(METER, ALL),
    TransactionStopped(STOP, (Measurand.ENERGY_IMPORT_WH,), (Measurand.POWER_IMPORT_W,)),
    TransactionStopped(SendStopTransaction(2, 9, None, 5.0, T0, StopReason.POWER_LOSS), (), ()),
    TransactionStarted(SendStartTransaction(1, 8, "TAG", 1.0, T0,
                                            point=TxStart.ENERGY_TRANSFER)),
    TransactionStopped(SendStopTransaction(1, 8, None, 9.0, T0, StopReason.OTHER,
                                           transfer_end=TransferEnd.EV_SUSPENDED), (), ()),
    TransactionStarted(SendStartTransaction(1, 8, None, 1.0, T0, plugged=False,
                                            point=TxStart.PARKING_BAY)),
    TransactionStopped(SendStopTransaction(1, 8, "TAG", 9.0, T0, StopReason.EV_DISCONNECTED,
                                           departed=True), (), ()),
    TransactionStarted(SendStartTransaction(1, 10, "TAG", 1.0, T0,
                                            charging_state=ChargingState.EV_CONNECTED)),
    TransactionUpdated(SendTransactionUpdate(1, 10, TxUpdate.CHARGING_STATE_CHANGED, T0,
                                             charging_state=ChargingState.SUSPENDED_EVSE), True),
    TransactionStopped(SendStopTransaction(1, 10, "TAG", 9.0, T0, StopReason.REMOTE,
                                           charging_state=ChargingState.IDLE), (), ()),
    MeterValuesRecord(SendMeterValues(1, 10, READING, T0, ReadingContext.TRIGGER,
                                      ChargingState.CHARGING), ALL),
], ids=lambda r: type(r).__name__)
def test_a_record_reads_back_as_it_was_stored(record: Record) -> None:
    store = Store(":memory:")
    queue = OfflineQueue(store)
    queue.put(record, 7)
    (row,) = queue.all()
    assert decode(row.kind, row.payload, row.local_id) == record
    assert row.kind in ("transaction_started", "meter_values", "transaction_stopped",
                        "transaction_updated")
    assert "connectorId" not in row.payload  # neutral, not a 1.6 payload


def test_converting_at_send_time_gives_what_converting_at_once_gave() -> None:
    sampled, aligned = (Measurand.ENERGY_IMPORT_WH,), (Measurand.POWER_IMPORT_W,)
    stored = [decode(*encode(r)) for r in (
        TransactionStarted(START), MeterValuesRecord(METER, ALL),
        TransactionStopped(STOP, sampled, aligned))]
    assert convert.record_call(stored[0], None) == ("StartTransaction",
                                                    convert.start_transaction(START))
    assert convert.record_call(stored[1], "42") == (
        "MeterValues", {**convert.meter_values(METER, ALL), "transactionId": 42})
    assert convert.record_call(stored[2], "42") == (
        "StopTransaction", {**convert.stop_transaction(STOP, sampled, aligned),
                            "transactionId": 42})


def test_a_16_row_from_before_records_is_sent_as_it_was_stored() -> None:
    payload = {"meterStop": 700, "timestamp": "2026-12-01T10:00:00.000Z", "reason": "Local",
               "transactionId": 0}
    record = decode("StopTransaction", payload, 7)
    assert record == WireRecord("ocpp1.6", "StopTransaction", payload, 7)
    assert convert.record_call(record, "4242") == ("StopTransaction",
                                                   {**payload, "transactionId": 4242})


async def test_messages_queued_before_the_upgrade_still_go_out(rig: Rig) -> None:
    """An outbox written by the previous gateway (1.6 payloads under their action names): one
    transaction whose start was answered before the upgrade, one whose start was not."""
    store = Store(rig.settings().station_dir(rig.id) / "state.sqlite")
    queue = OfflineQueue(store)
    queue.resolve(5, "4242")  # (the old gateway stored the int)
    queue.add("StopTransaction", {"meterStop": 500, "timestamp": "2026-12-01T09:00:00.000Z",
                                  "reason": "Local", "transactionId": 0, "idTag": "EARLY"}, 5)
    queue.add("StartTransaction", {"connectorId": 1, "idTag": "OLD", "meterStart": 600,
                                   "timestamp": "2026-12-01T10:00:00.000Z"}, 6)
    queue.add("MeterValues", {"connectorId": 1, "meterValue": [{
        "timestamp": "2026-12-01T10:01:00.000Z", "sampledValue": [{
            "value": "650", "context": "Sample.Periodic", "unit": "Wh",
            "measurand": "Energy.Active.Import.Register", "location": "Outlet"}]}]}, 6)
    queue.add("StopTransaction", {"meterStop": 700, "timestamp": "2026-12-01T10:02:00.000Z",
                                  "reason": "EVDisconnected", "transactionId": 0}, 6)
    store.set_meta("next_local_id", "7")
    store.close()

    gateway = await rig.start_gateway()
    second = await rig.csms.wait_for(rig.id, "StopTransaction", count=2, timeout=10)
    first = rig.csms.received(rig.id, "StopTransaction")[0].payload
    assert (first["transactionId"], first["timestamp"], first["idTag"]) == (
        4242, "2026-12-01T09:00:00.000Z", "EARLY")
    (start,) = [m.payload for m in rig.csms.received(rig.id, "StartTransaction")]
    (meter,) = [m.payload for m in rig.csms.received(rig.id, "MeterValues")]
    assert (start["idTag"], start["meterStart"]) == ("OLD", 600)
    assert meter["transactionId"] == second["transactionId"] != 0
    assert meter["meterValue"][0]["timestamp"] == "2026-12-01T10:01:00.000Z"
    assert (second["meterStop"], second["reason"]) == (700, "EVDisconnected")
    order = [a for a in rig.csms.actions(rig.id) if a in (
        "StartTransaction", "MeterValues", "StopTransaction")]
    assert order == ["StopTransaction", "StartTransaction", "MeterValues", "StopTransaction"]
    for _ in range(250):  # the last row goes once the gateway has read the answer
        if len(gateway.queue) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(gateway.queue) == 0
    # this central system never saw transaction 4242 start (it did, at the one before the upgrade)
    assert [v.rule for v in rig.csms.violations(rig.id)] == ["unknown-transaction"]
