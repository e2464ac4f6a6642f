# mypy: disable-error-code="misc,untyped-decorator"
# (the ocpp package is untyped: its ChargePoint and @on are Any to mypy)
"""The OCPP 2.0.1 side: a station session answering 2.0.1 CALLs with the package's v201 module.

Schema validation stays on for every frame in and out, as for 1.6. TransactionEvents are kept per
transaction id with their seqNo, offline flag and timestamps; paged reports (NotifyReport and the
other tbc-paged messages) are kept per requestId until their last page.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import Action

from voltbus_devcsms import rules
from voltbus_devcsms.security201 import SecurityMixin201
from voltbus_devcsms.session import SessionBase
from voltbus_devcsms.v16 import now_iso


@dataclass(frozen=True)
class TxEvent:
    """One TransactionEvent as the station sent it (snake_case keys in `payload`)."""

    seq_no: int
    event_type: str
    trigger_reason: str
    timestamp: str
    offline: bool
    received_at: datetime
    energy_wh: float | None
    payload: dict[str, Any]

    @property
    def charging_state(self) -> str | None:
        """Its transactionInfo.chargingState (None: not given)."""
        value = self.payload["transaction_info"].get("charging_state")
        return None if value is None else str(value)


@dataclass
class Transaction201:
    """A 2.0.1 transaction (the station chose its id): every event received for it, in order."""

    station: str
    transaction_id: str
    evse_id: int | None
    events: list[TxEvent] = field(default_factory=list)
    started: bool = False  # a Started event was received
    ended: bool = False

    @property
    def seq_nos(self) -> list[int]:
        """The seqNos in arrival order."""
        return [e.seq_no for e in self.events]

    @property
    def charging_state(self) -> str | None:
        """The chargingState last reported by one of its events (None: none yet)."""
        return next((e.charging_state for e in reversed(self.events)
                     if e.charging_state is not None), None)

    @property
    def stopped_reason(self) -> str | None:
        """The Ended event's stoppedReason."""
        ended = [e for e in self.events if e.event_type == "Ended"]
        return ended[-1].payload["transaction_info"].get("stopped_reason") if ended else None


@dataclass
class Report:
    """A paged report (NotifyReport, NotifyMonitoringReport, ...) for one requestId."""

    action: str
    request_id: int
    pages: list[dict[str, Any]] = field(default_factory=list)  # camelCase payloads
    complete: bool = False

    def items(self, key: str) -> list[Any]:
        """The entries of every page under key (reportData, monitor, ...), in seqNo order."""
        pages = sorted(self.pages, key=lambda p: p.get("seqNo", 0))
        return [item for page in pages for item in page.get(key, [])]


_MULTIPLIER = {"Wh": 1.0, "kWh": 1000.0}


def energy_wh(meter_value: list[dict[str, Any]] | None) -> float | None:
    """The last Energy.Active.Import.Register reading among meter values, in Wh."""
    found: float | None = None
    for mv in meter_value or []:
        for sv in mv.get("sampled_value", []):
            if sv.get("measurand", "Energy.Active.Import.Register") != (
                    "Energy.Active.Import.Register") or sv.get("phase"):
                continue
            unit = sv.get("unit_of_measure") or {}
            scale = _MULTIPLIER.get(unit.get("unit", "Wh"))
            if scale is not None:
                found = float(sv["value"]) * scale * 10 ** unit.get("multiplier", 0)
    return found


# The paged answers a request asks for (B07/B08 NotifyReport, K09 ReportChargingProfiles) and
# the answer status under which they follow.
REPORTS = {"GetBaseReport": ("NotifyReport", "Accepted"), "GetReport": ("NotifyReport", "Accepted"),
           "GetChargingProfiles": ("ReportChargingProfiles", "Accepted"),
           "GetDisplayMessages": ("NotifyDisplayMessages", "Accepted"),
           "GetMonitoringReport": ("NotifyMonitoringReport", "Accepted")}


class StationSession201(SessionBase, SecurityMixin201, ChargePoint):
    """One connected OCPP 2.0.1 charging station: answers its CALLs, keeps what it reported."""

    ocpp_version = "2.0.1"

    async def call(self, payload: Any, suppress: bool = True, unique_id: str | None = None,
                   skip_schema_validation: bool = False) -> Any:
        """Our CALL; a report request is noted before it goes out (its pages may arrive before
        its answer is read), and the answers to reports and Get/SetVariables are checked."""
        action = type(payload).__name__
        report = REPORTS.get(action)
        key = (self.id, report[0], payload.request_id) if report else None
        if key is not None:
            self.csms.report_requests[key] = None  # requested, not answered yet
            self.csms.report_criteria[key] = snake_to_camel_case(serialize_as_dict(payload))
        result = await super().call(payload, suppress, unique_id, skip_schema_validation)
        if action == "GetCompositeSchedule" and result is not None:
            problem = rules.composite_problem(
                remove_nones(snake_to_camel_case(serialize_as_dict(payload))),
                remove_nones(snake_to_camel_case(serialize_as_dict(result))))
            if problem is not None:
                self.violation(rules.COMPOSITE_SCHEDULE, problem, action=action)
        if key is not None and report is not None:
            status = getattr(result, "status", None)
            self.csms.report_requests[key] = str(status)
            pages = self.csms.reports.get(key)
            if status != report[1] and pages is not None and pages.pages:
                self.violation(rules.REPORT_UNREQUESTED, f"{report[0]} {key[2]} pages sent for "
                               f"a {action} answered {status}", action=report[0])
        if result is not None and action in ("SetVariableMonitoring", "ClearVariableMonitoring",
                                             "SetMonitoringBase"):
            self._monitors_changed(action, serialize_as_dict(payload), serialize_as_dict(result))
        if action in ("GetVariables", "SetVariables") and result is not None:
            data = snake_to_camel_case(serialize_as_dict(payload))
            answer = snake_to_camel_case(serialize_as_dict(result))
            item = "getVariableData" if action == "GetVariables" else "setVariableData"
            got = "getVariableResult" if action == "GetVariables" else "setVariableResult"
            problem = rules.variable_results_problem(
                action, [{"component": d["component"], "variable": d["variable"]}
                         for d in data[item]], remove_nones(answer)[got])
            if problem is not None:
                self.violation(rules.VARIABLE_RESULTS, problem, action=action)
            self._note_start_point(data[item], remove_nones(answer)[got])
        return result

    def _note_start_point(self, requested: list[dict[str, Any]],
                          results: list[dict[str, Any]]) -> None:
        """Keep TxCtrlr.TxStartPoint as set (Accepted) or read, for TX_START_TRIGGER."""

        def start_point(item: dict[str, Any]) -> bool:
            return bool(item.get("component", {}).get("name") == "TxCtrlr"
                        and item.get("variable", {}).get("name") == "TxStartPoint"
                        and item.get("attributeType", "Actual") == "Actual")

        asked = next((d for d in requested if start_point(d)), None)
        r = next((d for d in results if start_point(d)), None)
        if asked is None or r is None or r.get("attributeStatus") != "Accepted":
            return
        value = asked.get("attributeValue", r.get("attributeValue"))
        if isinstance(value, str):
            self.csms.tx_start_points[self.id] = frozenset(
                v.strip() for v in value.split(",") if v.strip())

    def _monitors_changed(self, action: str, request: dict[str, Any],
                          answer: dict[str, Any]) -> None:
        """Keep the custom monitors the station accepted (N04) and has not cleared (N06)."""
        known = self.csms.monitors201.setdefault(self.id, set())
        if action == "SetVariableMonitoring":
            known.update(r["id"] for r in answer.get("set_monitoring_result", [])
                         if r.get("status") == "Accepted" and r.get("id") is not None)
        elif action == "ClearVariableMonitoring":
            known.difference_update(r["id"] for r in answer.get("clear_monitoring_result", [])
                                    if r.get("status") == "Accepted")
        elif answer.get("status") == "Accepted" and request.get("monitoring_base") in (
                "FactoryDefault", "HardWiredOnly"):
            known.clear()  # N03.FR.04/05: the custom monitors are gone

    # --- B provisioning, G availability ------------------------------------------------------

    @on(Action.boot_notification)
    def on_boot(self, charging_station: dict[str, Any], reason: str,
                **_: Any) -> call_result.BootNotification:
        b = self.csms.behaviour
        self.boot_answered(str(b.boot_status), b.boot_interval())
        return call_result.BootNotification(current_time=now_iso(), interval=b.boot_interval(),
                                            status=str(b.boot_status))

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    def on_status(self, timestamp: str, evse_id: int, **_: Any) -> call_result.StatusNotification:
        self.check_time(timestamp)
        self.check(rules.EVSE_ZERO, None if evse_id > 0 else
                   "StatusNotification is per connector of an EVSE: evseId 0 is not one")
        return call_result.StatusNotification()

    @on(Action.notify_report)
    def on_notify_report(self, request_id: int, generated_at: str, seq_no: int,
                         tbc: bool = False, **_: Any) -> call_result.NotifyReport:
        self._page("NotifyReport", request_id, seq_no, tbc, generated_at)
        for data in (self.current.payload.get("reportData", []) if self.current else []):
            self.check(rules.REPORT_ATTRIBUTE_VALUE, rules.attribute_value_problem(data))
        return call_result.NotifyReport()

    # --- C authorization ---------------------------------------------------------------------

    @on(Action.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> call_result.Authorize:
        self._check_token(id_token, None)
        return call_result.Authorize(id_token_info=self._token_info(id_token))

    def _check_token(self, id_token: dict[str, Any] | None, remote_start_id: int | None,
                     *, by_value: bool = True) -> None:
        for rule, problem in rules.id_token_problems(
                id_token, remote_start_id, self.csms.remote_tokens201.get(self.id, {}),
                by_value=by_value):
            self.check(rule, problem)

    def _check_remote_start_id(self, tx: Transaction201, got: int | None,
                               id_token: dict[str, Any] | None) -> None:
        """The first TransactionEvent with an idToken (or a remoteStartId) on the EVSE of an
        Accepted RequestStartTransaction (any EVSE if it named none) carries its remoteStartId
        (rule REMOTE_START_ID). Events without either do not count: the remote start gives the
        token, so the event it causes has one; one without (a meter value, a Started at plug-in)
        may have been on its way when the request went out."""
        awaited = self.csms.remote_starts201.get(self.id, {})
        evse = tx.evse_id if tx.evse_id in awaited else None
        if evse not in awaited or (got is None and not id_token):
            return
        expected = awaited.pop(evse)
        self.check(rules.REMOTE_START_ID, rules.remote_start_id_problem(expected, got))

    def _token_info(self, id_token: dict[str, Any]) -> dict[str, Any]:
        status = self.csms.behaviour.token_status(id_token["id_token"], id_token["type"])
        return {"status": status}

    # --- E transactions, J meter values -------------------------------------------------------

    @on(Action.transaction_event)
    async def on_transaction_event(self, event_type: str, timestamp: str, trigger_reason: str,
                                   seq_no: int, transaction_info: dict[str, Any],
                                   **kw: Any) -> call_result.TransactionEvent:
        self.check_time(timestamp, *(mv.get("timestamp") for mv in kw.get("meter_value", [])))
        tx = self._transaction(event_type, transaction_info["transaction_id"], kw.get("evse"))
        event = TxEvent(seq_no, event_type, trigger_reason, timestamp, kw.get("offline", False),
                        datetime.now(UTC), energy_wh(kw.get("meter_value")),
                        {"event_type": event_type, "timestamp": timestamp,
                         "trigger_reason": trigger_reason, "seq_no": seq_no,
                         "transaction_info": transaction_info, **kw})
        self._check_event(tx, event)
        if event_type == "Started" and not event.offline:  # queued ones may predate a change
            self.check(rules.TX_START_TRIGGER, rules.tx_start_trigger_problem(
                self.csms.tx_start_points.get(self.id), trigger_reason))
        tx.events.append(event)
        if event_type == "Ended":
            tx.ended = True
        token = kw.get("id_token")
        delay = self.csms.behaviour.answer_delay_s.get("TransactionEvent", 0.0)
        if delay > 0:  # kept already: requests may name the transaction meanwhile
            await asyncio.sleep(delay)
        return call_result.TransactionEvent(
            id_token_info=self._token_info(token) if token else None)

    def _transaction(self, event_type: str, tx_id: str,
                     evse: dict[str, Any] | None) -> Transaction201:
        ledger = self.csms.transactions201.setdefault(self.id, {})
        tx = ledger.get(tx_id)
        if tx is None:
            evse_id = evse.get("id") if evse else None
            self.check(rules.UNKNOWN_TRANSACTION, None if event_type == "Started" else
                       f"{event_type} for transaction {tx_id}, which never Started")
            busy = next((t for t in ledger.values() if evse_id is not None
                         and t.evse_id == evse_id and t.started and not t.ended), None)
            self.check(rules.CONNECTOR_BUSY, None if busy is None or event_type != "Started" else
                       f"EVSE {evse_id} still has transaction {busy.transaction_id} open")
            tx = ledger[tx_id] = Transaction201(self.id, tx_id, evse_id)
            self.csms.open_transactions.setdefault(self.id, []).append(tx_id)
        if event_type == "Started":
            self.check(rules.STARTED_TWICE, None if not tx.started else
                       f"transaction {tx_id} was already Started")
            tx.started = True
        if event_type == "Ended" and tx_id in self.csms.open_transactions.get(self.id, []):
            self.csms.open_transactions[self.id].remove(tx_id)
        return tx

    def _check_event(self, tx: Transaction201, event: TxEvent) -> None:
        seen = set(tx.seq_nos)
        problem = rules.seq_no_problem(seen, max(seen) if seen else None, event.seq_no)
        duplicate = problem is not None and problem[0] == rules.SEQNO_DUPLICATE
        if problem is not None:
            self.check(*problem)
        if tx.ended and not duplicate:
            self.check(rules.TRANSACTION_ENDED, f"{event.event_type} (seqNo {event.seq_no}) "
                       f"after transaction {tx.transaction_id} Ended")
        token = event.payload.get("id_token")
        self.check(rules.TX_AUTHORIZED_TOKEN, rules.tx_token_problem(event.trigger_reason, token))
        remote_start_id = event.payload["transaction_info"].get("remote_start_id")
        self._check_token(token, remote_start_id, by_value=False)
        self._check_remote_start_id(tx, remote_start_id, token)
        self.check(rules.CHARGING_STATE_UNCHANGED, rules.charging_state_problem(
            event.trigger_reason, event.charging_state, tx.charging_state))
        authorised = bool(token) or any(e.payload.get("id_token") for e in tx.events)
        first = next((e.energy_wh for e in tx.events if e.energy_wh is not None), None)
        self.check(rules.ENERGY_BEFORE_AUTH, rules.energy_before_auth_problem(
            authorised, first, event.energy_wh))
        before = [e.energy_wh for e in tx.events if e.energy_wh is not None]
        if event.energy_wh is not None and before and event.energy_wh < max(before):
            self.check(rules.METER_DECREASED, f"energy register {event.energy_wh:g} Wh below "
                       f"the {max(before):g} Wh reported earlier in transaction "
                       f"{tx.transaction_id}")

    @on(Action.meter_values)
    async def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]],
                              **_: Any) -> call_result.MeterValues:
        self.check_time(*(mv.get("timestamp") for mv in meter_value))
        delay = self.csms.behaviour.answer_delay_s.get("MeterValues", 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        return call_result.MeterValues()

    # --- A security, L firmware, N01 logs: security201.py; N diagnostics ---------------------

    @on(Action.notify_event)
    def on_notify_event(self, generated_at: str, seq_no: int, event_data: list[dict[str, Any]],
                        tbc: bool = False, **_: Any) -> call_result.NotifyEvent:
        self.check_time(generated_at, *(e.get("timestamp") for e in event_data))
        expected = self.csms.event_parts201.get(self.id, 0)
        self.check(rules.NOTIFY_EVENT_PAGING, rules.notify_event_problem(expected, seq_no))
        self.csms.event_parts201[self.id] = seq_no + 1 if tbc else 0
        if self.current is not None:
            self.check(rules.NOTIFY_EVENT_MONITOR, rules.event_monitor_problem(
                self.current.payload.get("eventData", []),
                self.csms.monitors201.get(self.id, set())))
        return call_result.NotifyEvent()

    @on(Action.notify_monitoring_report)
    def on_notify_monitoring_report(self, request_id: int, seq_no: int, generated_at: str,
                                    tbc: bool = False,
                                    **_: Any) -> call_result.NotifyMonitoringReport:
        self._page("NotifyMonitoringReport", request_id, seq_no, tbc, generated_at)
        return call_result.NotifyMonitoringReport()

    @on(Action.notify_customer_information)
    def on_notify_customer_information(self, request_id: int, seq_no: int, generated_at: str,
                                       tbc: bool = False,
                                       **_: Any) -> call_result.NotifyCustomerInformation:
        self._page("NotifyCustomerInformation", request_id, seq_no, tbc, generated_at)
        return call_result.NotifyCustomerInformation()

    # --- H reservation, K smart charging, O display messages, P data transfer ----------------

    @on(Action.reservation_status_update)
    def on_reservation_status(self, reservation_id: int, reservation_update_status: str,
                              **_: Any) -> call_result.ReservationStatusUpdate:
        return call_result.ReservationStatusUpdate()

    @on(Action.notify_charging_limit)
    def on_notify_charging_limit(self, charging_limit: dict[str, Any], evse_id: int | None = None,
                                 **_: Any) -> call_result.NotifyChargingLimit:
        if self.current is not None:
            problem = rules.notify_limit_problem(self.current.payload)
            if problem is not None:
                self.check(*problem)
        self.csms.charging_limits.setdefault(self.id, set()).add(
            (charging_limit["charging_limit_source"], evse_id or 0))
        return call_result.NotifyChargingLimit()

    @on(Action.cleared_charging_limit)
    def on_cleared_charging_limit(self, charging_limit_source: str, evse_id: int | None = None,
                                  **_: Any) -> call_result.ClearedChargingLimit:
        key = (charging_limit_source, evse_id or 0)
        limits = self.csms.charging_limits.setdefault(self.id, set())
        self.check(rules.CLEARED_WITHOUT_LIMIT, None if key in limits else (
            f"ClearedChargingLimit {charging_limit_source} on evseId {evse_id} with no "
            "NotifyChargingLimit of it in force"))
        limits.discard(key)
        return call_result.ClearedChargingLimit()

    @on(Action.report_charging_profiles)
    def on_report_charging_profiles(self, request_id: int, evse_id: int,
                                    charging_limit_source: str, tbc: bool = False,
                                    **_: Any) -> call_result.ReportChargingProfiles:
        self._page("ReportChargingProfiles", request_id, None, tbc, None)
        request = self.csms.report_criteria.get((self.id, "ReportChargingProfiles", request_id))
        if request is not None and self.current is not None:
            problem = rules.profiles_report_problem(
                request, evse_id, self.current.payload.get("chargingProfile", []),
                charging_limit_source)
            if problem is not None:
                self.check(*problem)
        return call_result.ReportChargingProfiles()

    @on(Action.notify_ev_charging_needs)
    def on_ev_charging_needs(self, evse_id: int, **_: Any) -> call_result.NotifyEVChargingNeeds:
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    @on(Action.notify_display_messages)
    def on_notify_display_messages(self, request_id: int, tbc: bool = False,
                                   **_: Any) -> call_result.NotifyDisplayMessages:
        self._page("NotifyDisplayMessages", request_id, None, tbc, None)
        key = (self.id, "NotifyDisplayMessages", request_id)
        request = self.csms.report_criteria.get(key)
        report = self.csms.reports.get(key)
        if request is not None and report is not None and self.current is not None:
            earlier = {i.get("id") for page in report.pages[:-1]
                       for i in page.get("messageInfo", [])}
            self.check(rules.DISPLAY_CRITERIA, rules.display_messages_problem(
                request, self.current.payload.get("messageInfo", []), earlier))
        return call_result.NotifyDisplayMessages()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="Accepted")

    # --- paged reports ---------------------------------------------------------------------

    def _page(self, action: str, request_id: int, seq_no: int | None, tbc: bool,
              generated_at: str | None) -> None:
        """Keep one page of a report; seqNo must run 0, 1, 2, ... without gaps or repeats, for
        a request the central system made and the station accepted, none after the last."""
        self.check_time(generated_at)
        key = (self.id, action, request_id)
        if action in {a for a, _ in REPORTS.values()}:
            asked = key in self.csms.report_requests
            status = self.csms.report_requests.get(key)
            self.check(rules.REPORT_UNREQUESTED, None if asked and status in (None, "Accepted")
                       else f"{action} {request_id}: " + (f"its request was answered {status}"
                                                           if asked else "never requested"))
        report = self.csms.reports.get(key)
        if report is not None and report.complete:
            self.check(rules.REPORT_AFTER_LAST, f"{action} {request_id}: a page after the "
                       f"last one (tbc false)")
        if report is None:
            report = self.csms.reports[key] = Report(action, request_id)
        if self.current is not None:
            report.pages.append(self.current.payload)
        if seq_no is not None:
            seen = {p.get("seqNo") for p in report.pages[:-1]}
            self.check(rules.SEQNO_DUPLICATE, None if seq_no not in seen else
                       f"{action} {request_id}: page seqNo {seq_no} was already received")
            expected = len(report.pages) - 1
            self.check(rules.SEQNO_GAP, None if seq_no in seen or seq_no == expected else
                       f"{action} {request_id}: page seqNo {seq_no}, expected {expected}")
        report.complete = not tbc
        self.csms.history_changed()
