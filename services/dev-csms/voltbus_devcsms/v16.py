# mypy: disable-error-code="misc,untyped-decorator"
# (the ocpp package is untyped: its ChargePoint and @on are Any to mypy)
"""The OCPP 1.6 side: a station session answering 1.6 CALLs, and the 1.6 rules it checks."""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action

from voltbus_devcsms import rules
from voltbus_devcsms.security16 import SecurityMixin16
from voltbus_devcsms.session import SessionBase


def now_iso() -> str:
    """This machine's time as an OCPP dateTime (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Transaction16:
    """A 1.6 transaction this central system gave an id to."""

    station: str
    transaction_id: int
    connector_id: int
    id_tag: str
    meter_start: int
    started: str
    meter_stop: int | None = None
    stopped: str | None = None
    reason: str | None = None
    register_wh: float | None = None  # highest energy register in its MeterValues

    def read(self, wh: float | None) -> str | None:
        """Take a register reading of this transaction; why it is wrong, or None."""
        if wh is None:
            return None
        floor = max(self.meter_start, self.register_wh or self.meter_start)
        self.register_wh = max(wh, self.register_wh or wh)
        if wh < floor:
            return (f"energy register {_wh(wh)} Wh below the {_wh(floor)} Wh this transaction "
                    f"{self.transaction_id} already had (meterStart or a MeterValues)")
        return None


def _wh(value: float) -> str:
    """Wh to the milliwatt-hour, without trailing zeros (1688824.001, 1400)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def register_wh(meter_value: list[dict[str, Any]] | None) -> float | None:
    """The last Energy.Active.Import.Register (not per phase) among 1.6 meter values, in Wh."""
    found: float | None = None
    for mv in meter_value or []:
        for sv in mv.get("sampled_value", []):
            if (sv.get("measurand", "Energy.Active.Import.Register")
                    != "Energy.Active.Import.Register" or sv.get("phase")
                    or sv.get("format") == "SignedData"):
                continue
            scale = {"Wh": 1.0, "kWh": 1000.0}.get(sv.get("unit", "Wh"))
            try:
                found = float(sv["value"]) * scale if scale else found
            except (KeyError, ValueError):
                continue
    return found


class StationSession(SessionBase, SecurityMixin16, ChargePoint):
    """One connected OCPP 1.6 charge point: answers its CALLs from the behaviour, checks them."""

    ocpp_version = "1.6"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statuses: dict[int, str] = {}  # last status per connector on this connection

    @on(Action.boot_notification)
    def on_boot(self, **_: Any) -> call_result.BootNotification:
        b = self.csms.behaviour
        self.statuses.clear()  # a rebooted station reports every connector afresh
        self.boot_answered(str(b.boot_status), b.boot_interval())
        return call_result.BootNotification(current_time=now_iso(), interval=b.boot_interval(),
                                            status=b.boot_status)

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    def on_status(self, connector_id: int, status: str, timestamp: str | None = None,
                  **_: Any) -> call_result.StatusNotification:
        self.check_time(timestamp)
        if connector_id == 0:
            self.check(rules.STATUS_CONNECTOR_0, None if status in rules.CONNECTOR_0_16 else
                       f"connector 0 reported {status} (only Available, Unavailable, Faulted)")
        else:
            self.check(rules.STATUS_TRANSITION,
                       rules.status_transition_16(self.statuses.get(connector_id), status))
        self.statuses[connector_id] = status
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> call_result.Authorize:
        self.csms.remote_unauthorized16.get(self.id, set()).discard(id_tag)
        b = self.csms.behaviour
        return call_result.Authorize(id_tag_info=IdTagInfo(
            status=b.tag_status(id_tag), parent_id_tag=b.parent_tags.get(id_tag)))

    def _check_reservation(self, id_tag: str, reservation_id: int | None) -> None:
        """A transaction started on a reservation this central system made carries its idTag
        or a tag of its parent (5.13)."""
        reservation = self.csms.reservations16.get((self.id, reservation_id or -1))
        if reservation is None:
            return
        owner, parent = reservation
        tags_parent = self.csms.parent_of16(self.id, id_tag)
        ok = id_tag == owner or (parent is not None and tags_parent == parent)
        self.check(rules.RESERVATION_TAG, None if ok else
                   f"idTag {id_tag} started on reservation {reservation_id} of {owner} "
                   f"(parent {parent}), but its parent is {tags_parent}")

    @on(Action.start_transaction)
    def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str,
                 reservation_id: int | None = None,
                 **_: Any) -> call_result.StartTransaction:
        self.check_time(timestamp)
        self._check_reservation(id_tag, reservation_id)
        waiting = self.csms.remote_unauthorized16.get(self.id, set())
        self.check(rules.REMOTE_START_UNAUTHORIZED, None if id_tag not in waiting else
                   f"remote-started idTag {id_tag} started without an Authorize.req, though "
                   f"AuthorizeRemoteTxRequests is true (5.11)")
        waiting.discard(id_tag)
        mine = [t for t in self.csms.transactions16.values() if t.station == self.id]
        twice = next((t for t in mine if (t.connector_id, t.meter_start, rules.parse_time(
            t.started)) == (connector_id, meter_start, rules.parse_time(timestamp))), None)
        self.check(rules.STARTED_TWICE, None if twice is None else
                   f"same connector, meterStart and timestamp as transaction "
                   f"{twice.transaction_id}")
        busy = next((t for t in mine if t.connector_id == connector_id and t.stopped is None
                     and t is not twice), None)
        self.check(rules.CONNECTOR_BUSY, None if busy is None else
                   f"connector {connector_id} still has transaction {busy.transaction_id} open")
        b = self.csms.behaviour
        status = b.start_status.get(id_tag) or b.tag_status(id_tag)
        if twice is not None and twice.stopped is None and twice.id_tag == id_tag:
            # The same start again while its transaction is open: the station did not get (or
            # did not keep) the answer, e.g. killed in between, and re-sends its outbox. Answer
            # with the same id, as SteVe does (insertIgnoreTransaction), so no transaction is
            # left open for ever; the violation above still counts the re-send.
            return call_result.StartTransaction(transaction_id=twice.transaction_id,
                                                id_tag_info=IdTagInfo(status=status))
        transaction_id = self.csms.next_transaction_id()
        self.csms.transactions16[transaction_id] = Transaction16(
            self.id, transaction_id, connector_id, id_tag, meter_start, timestamp)
        self.csms.open_transactions.setdefault(self.id, []).append(transaction_id)
        return call_result.StartTransaction(transaction_id=transaction_id,
                                            id_tag_info=IdTagInfo(
                                                status=status,
                                                parent_id_tag=b.parent_tags.get(id_tag)))

    @on(Action.stop_transaction)
    def on_stop(self, transaction_id: int, meter_stop: int, timestamp: str,
                reason: str | None = None, transaction_data: list[dict[str, Any]] | None = None,
                id_tag: str | None = None, **_: Any) -> call_result.StopTransaction:
        self.check_time(timestamp, *(v.get("timestamp") for v in transaction_data or []))
        tx = self.csms.transactions16.get(transaction_id)
        if tx is None or tx.station != self.id:
            self.check(rules.UNKNOWN_TRANSACTION,
                       f"StopTransaction for {transaction_id}, which this central system "
                       f"never started for {self.id}")
        else:
            self._check_stop(tx, meter_stop, timestamp)
            tx.meter_stop, tx.stopped, tx.reason = meter_stop, timestamp, reason
        with contextlib.suppress(ValueError):
            self.csms.open_transactions.get(self.id, []).remove(transaction_id)
        status = self.csms.behaviour.stop_status.get(id_tag or "")
        return call_result.StopTransaction(
            id_tag_info=None if status is None else IdTagInfo(status=status))

    def _check_stop(self, tx: Transaction16, meter_stop: int, timestamp: str) -> None:
        self.check(rules.TRANSACTION_ENDED, None if tx.stopped is None else
                   f"transaction {tx.transaction_id} was already stopped at {tx.stopped}")
        self.check(rules.METER_STOP_BELOW_START, None if meter_stop >= tx.meter_start else
                   f"meterStop {meter_stop} < meterStart {tx.meter_start} "
                   f"(transaction {tx.transaction_id})")
        seen = tx.register_wh
        # meterStop is an integer (Wh) by the schema: the register's whole Wh below a decimal
        # MeterValues reading (1000 after "1000.4") is the same register, not a decrease.
        self.check(rules.METER_DECREASED, None if seen is None or meter_stop >= math.floor(seen)
                   else
                   f"meterStop {meter_stop} below the {_wh(seen)} Wh its MeterValues reported "
                   f"(transaction {tx.transaction_id})")
        start, stop = rules.parse_time(tx.started), rules.parse_time(timestamp)
        self.check(rules.STOP_BEFORE_START, None if not (start and stop and stop < start) else
                   f"stopped at {timestamp}, before its start at {tx.started}")

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id: int, meter_value: list[dict[str, Any]],
                              transaction_id: int | None = None,
                              **_: Any) -> call_result.MeterValues:
        self.check_time(*(v.get("timestamp") for v in meter_value))
        if transaction_id is not None:
            tx = self.csms.transactions16.get(transaction_id)
            self.check(rules.UNKNOWN_TRANSACTION, None if tx and tx.station == self.id else
                       f"MeterValues for transaction {transaction_id}, which this central "
                       f"system never started for {self.id}")
            if tx is not None and tx.station == self.id:
                self.check(rules.TRANSACTION_ENDED, None if tx.stopped is None else
                           f"MeterValues for transaction {transaction_id} after its "
                           f"StopTransaction")
                self.check(rules.METER_DECREASED, tx.read(register_wh(meter_value)))
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
    def on_firmware_status(self, status: str,
                           **_: Any) -> call_result.FirmwareStatusNotification:
        csms = self.csms
        triggered = self.id in csms.firmware_triggered16
        csms.firmware_triggered16.discard(self.id)
        self.check(rules.FIRMWARE_STATUS, rules.firmware_status_16(
            csms.firmware16.get(self.id), status, triggered=triggered))
        if status != "Idle":
            csms.firmware16[self.id] = status
        return call_result.FirmwareStatusNotification()
