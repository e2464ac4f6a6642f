# mypy: disable-error-code="misc,untyped-decorator"
# (the ocpp package is untyped: its ChargePoint and @on are Any to mypy)
"""OCPP 2.0.1 as the station's protocol adapter: boot, heartbeat, statuses, Authorize and
TransactionEvent Started/Updated/Ended (seqNo per transaction, no gaps), plus
RequestStart/StopTransaction, local list and cache, reservations, UnlockConnector and DataTransfer.
The rest of 2.0.1 is not done yet (docs/ocpp.md)."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ocpp.charge_point import camel_to_snake_case, remove_nones, snake_to_camel_case
from ocpp.exceptions import OccurrenceConstraintViolationError, OCPPError
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voltbus_common.enums import RegistrationStatus
from voltbus_ocpp.adapter import CallFailed, StationCore
from voltbus_ocpp.messages import (
    Boot,
    Heartbeat,
    LogStatus,
    Message,
    MeterValuesNow,
    SignCertificateRequest,
    SignedFirmwareStatus,
)
from voltbus_ocpp.model.authorisation import AuthEntry
from voltbus_ocpp.model.connector import Reservation, blocking_fault
from voltbus_ocpp.model.events import (
    AuthorizeAnswered,
    ChangeAvailability,
    ConfigLimitChanged,
    Effect,
    Event,
    RemoteStart,
    RemoteStop,
    Reply,
    ReservationExpired,
    Reset,
    SendAuthorize,
    SendStatus,
    StartAnswered,
    Tick,
    TriggerTransaction,
)
from voltbus_ocpp.model.results import AuthStatus, Outcome, ReadingContext
from voltbus_ocpp.model.smart_charging import MAX
from voltbus_ocpp.offline_queue import OfflineQueue
from voltbus_ocpp.protocol.guard import FrameGuard
from voltbus_ocpp.protocol.security_event import security_event
from voltbus_ocpp.protocol.v201 import convert, display, monitoring, smart
from voltbus_ocpp.protocol.v201.device_model import ITEMS_PER_MESSAGE, DeviceModel, Entry, pages
from voltbus_ocpp.protocol.v201.frames import check_frame
from voltbus_ocpp.protocol.v201.security import (
    EVENT_NAMES,
    TRIGGERS,
    SecurityHandlers,
    V201Security,
)
from voltbus_ocpp.protocol.v201.variables import SECRET, Variables
from voltbus_ocpp.protocol.wire_time import iso, parse_time
from voltbus_ocpp.records import (
    METER_VALUES,
    STARTED,
    STOPPED,
    UPDATED,
    ExternalLimitRecord,
    FirmwareStatusRecord,
    MonitorEventRecord,
    Record,
    SecurityEventRecord,
    TransactionStarted,
    TransactionStopped,
    TransactionUpdated,
    TxRecord,
    WireRecord,
)
from voltbus_ocpp.security import profile_from_settings
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp2.0.1"
TRIGGERABLE = frozenset({"BootNotification", "Heartbeat", "StatusNotification", "MeterValues",
                         "TransactionEvent", *TRIGGERS})
_IDS = uuid.UUID("5f0c8f4e-2f7b-4c39-9a59-8c1d0e6b2a11")  # namespace of our transaction ids


async def send_call(cp: ChargePoint, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Send a CALL given as a camelCase payload; its camelCase answer (CallFailed on CALLERROR).
    """
    request = getattr(call, action)(**camel_to_snake_case(payload))
    try:
        result = await cp.call(request, suppress=False)
    except OCPPError as exc:
        raise CallFailed(str(exc)) from exc
    data = {k: getattr(result, k) for k in result.__dataclass_fields__}
    return snake_to_camel_case(remove_nones(data))  # type: ignore[no-any-return]


def transaction_id_of(station: str, local_id: int, started: str) -> str:
    """The charge point names its transactions in 2.0.1: stable for one start (a resent
    Started keeps its id), unique per station (the start time is part of it), 36 characters."""
    return str(uuid.uuid5(_IDS, f"{station}/{local_id}/{started}"))


def _reply(effects: list[Effect]) -> str:
    return convert.outcome(next(e.status for e in reversed(effects) if isinstance(e, Reply)))


class V201Adapter:
    """The 2.0.1 adapter: device-model variables (on disk in the station's store) and sessions."""

    def __init__(self, settings: GatewaySettings, store: Store) -> None:
        self.subprotocol = SUBPROTOCOL
        self.subprotocols = (SUBPROTOCOL,)
        self.store = store
        self.config = Variables(store, time_scale=settings.time_scale,
                                phases=settings.phases)
        stored = store.db.execute(
            "SELECT 1 FROM config WHERE key='SecurityCtrlr.SecurityProfile'").fetchone()
        if stored is None:  # never raised by the central system: what the settings amount to
            key = bool(self.config.authorization_key or settings.auth_key())
            self.config.values["SecurityCtrlr.SecurityProfile"] = str(
                profile_from_settings(settings, key=key))

    def open(self, connection: ClientConnection, core: StationCore) -> V201Session:
        """A 2.0.1 session on the connection."""
        return V201Session(self, connection, core)


class _TooLong(Exception):
    """The local list would exceed LocalAuthListCtrlr.Entries' limit (rolled back)."""


LOCAL_LIST_MAX = 1000  # entries kept in the local list (LocalAuthListCtrlr.Entries maxLimit)


_VALUE = re.compile(r'("attributeValue"\s*:\s*")(?:[^"\\]|\\.)*"')


def redact(text: object) -> object:
    """A frame naming a write-only variable (BasicAuthPassword), its attribute values hidden."""
    if isinstance(text, str) and any(name.split(".")[1] in text for name in SECRET):
        return _VALUE.sub(r'\1***"', text)
    return text


class _WireLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Frames at DEBUG (the ocpp package logs each at INFO), as 1.6's wire log, with secrets
    redacted; a request answered with a CALLERROR (a handler raising an OCPPError) is a WARNING,
    not a logged exception."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            super().log(level, redact(msg), *(redact(a) for a in args), **kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.pop("exc_info", None)
        self.log(logging.WARNING, msg, *args, **kwargs)


# A Reset OnIdle Scheduled (B12), per station: the unsubscribe of its listener until it fires.
_SCHEDULED_RESETS: weakref.WeakKeyDictionary[Any, Callable[[], None]] = (
    weakref.WeakKeyDictionary())
# ... and of one EVSE (B12.FR.07), per station and EVSE id
_SCHEDULED_EVSE_RESETS: weakref.WeakKeyDictionary[Any, dict[int, Callable[[], None]]] = (
    weakref.WeakKeyDictionary())


class V201ChargePoint(FrameGuard, SecurityHandlers, ChargePoint):
    """An `ocpp.v201.ChargePoint` whose handlers turn requests into model events."""

    def __init__(self, station_id: str, connection: Any, core: StationCore,
                 variables: Variables, *, response_timeout: float) -> None:
        super().__init__(station_id, connection, response_timeout=response_timeout,
                         logger=_WireLog(logging.getLogger("voltbus_ocpp.wire201"), {}))
        self.core = core
        self.variables = variables
        variables.has_bay_detector = lambda: any(
            c.facts.bay is not None for c in core.model.connectors.values())
        self._guard_init(check_frame)  # bad frames answered or dropped first (guard.py)
        self.device = DeviceModel(core, variables)
        self.security = V201Security(core, variables)  # blocks A, M, N01, L01 (security.py)
        self._report: tuple[int, list[Entry]] | None = None  # accepted, its pages still to send
        self._profiles_report: tuple[int, dict[tuple[int, str], list[dict[str, Any]]]] | None \
            = None
        self._display_report: tuple[int, list[Any]] | None = None  # GetDisplayMessages accepted
        self._monitoring_report: tuple[int, list[dict[str, Any]]] | None = None
        # the monitors read the variables through this device model from now on, also offline
        core.monitoring.source = monitoring.V201MonitorSource(self.device, variables)
        core.monitoring.install_presets(monitoring.presets(self.device),
                                        variables.values["MonitoringCtrlr.ActiveMonitoringBase"])
        self._reset_now = False  # an Immediate (or idle OnIdle) Reset answered: restart after it

    @on("RequestStartTransaction")
    def on_request_start(self, id_token: dict[str, Any], remote_start_id: int,
                         evse_id: int | None = None,
                         charging_profile: dict[str, Any] | None = None,
                         **_: Any) -> call_result.RequestStartTransaction:
        profile = None if charging_profile is None else snake_to_camel_case(charging_profile)
        if profile is not None and (profile["chargingProfilePurpose"] != "TxProfile" or len(
                profile["chargingSchedule"]) != 1 or smart.invalid_schedule(
                smart.to_engine(profile)) is not None):
            return call_result.RequestStartTransaction(status="Rejected")  # K05: a TxProfile
        tag = convert.token(id_token)  # its type stays with it: Authorize, TransactionEvent
        # the id goes with the start to the first TransactionEvent it causes (F02.FR.01)
        status = _reply(self.core.dispatch(RemoteStart(tag, evse_id,
                                                       remote_start_id=remote_start_id)))
        if status == "Accepted" and profile is not None:
            # the transaction it starts takes the profile (its id is not known to the CSMS yet)
            self.core.remote_start_profile(evse_id, tag, smart.to_engine(
                {k: v for k, v in profile.items() if k != "transactionId"}))
        return call_result.RequestStartTransaction(status=status)

    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]],
                         **_: Any) -> call_result.GetVariables:
        results = []  # one per requested item, in order (B06)
        for item in get_variable_data:
            component, variable = item["component"], item["variable"]
            status, entry = self.device.find(component, variable)
            value = None
            attr = None if entry is None else entry.attribute(item.get("attribute_type",
                                                                       "Actual"))
            if entry is not None and attr is None:
                status = "NotSupportedAttributeType"  # the variable has no such attribute
            elif attr is not None and attr.mutability == "WriteOnly":
                status = "Rejected"  # B06: a WriteOnly variable is never read back
            elif entry is not None and attr is not None:
                value = self.device.attribute_value(entry, attr)
            result: dict[str, Any] = {"attribute_status": status, "component": component,
                                      "variable": variable}
            if item.get("attribute_type") is not None:
                result["attribute_type"] = item["attribute_type"]
            if value is not None:
                result["attribute_value"] = value
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]],
                         **_: Any) -> call_result.SetVariables:
        results = []  # one per requested item, in order (B05)
        for item in set_variable_data:
            component, variable = item["component"], item["variable"]
            status, entry = self.device.find(component, variable)
            kind = item.get("attribute_type", "Actual")
            attr = None if entry is None else entry.attribute(kind)
            if entry is not None and attr is None:
                status = "NotSupportedAttributeType"
            elif attr is not None and attr.mutability == "ReadOnly":
                status = "Rejected"  # B05: a ReadOnly attribute cannot be set
            elif entry is not None and attr is not None and kind == "Actual":
                status = self.variables.change(component["name"], variable["name"],
                                               str(item["attribute_value"]))
            elif entry is not None and attr is not None:
                status = self.device.set_attribute(entry, attr, str(item["attribute_value"]))
                if status == "Accepted" and entry.evse in self.core.model.connectors:
                    # a new cap (Power MaxSet) applies at once
                    self.core.dispatch(ConfigLimitChanged(entry.evse))
            shown = "***" if f"{component['name']}.{variable['name']}" in SECRET else item[
                "attribute_value"]
            log.info("%s: SetVariables %s.%s[%s]=%s -> %s", self.core.id, component["name"],
                     variable["name"], kind, shown, status)
            result: dict[str, Any] = {"attribute_status": status, "component": component,
                                      "variable": variable}
            if item.get("attribute_type") is not None:
                result["attribute_type"] = item["attribute_type"]
            results.append(result)
        return call_result.SetVariables(set_variable_result=results)

    # --- B07/B08 reports: the answer first, then the NotifyReport pages ------------------------

    @on("GetBaseReport")
    def on_get_base_report(self, request_id: int, report_base: str,
                           **_: Any) -> call_result.GetBaseReport:
        entries = self.device.base_report(report_base)
        if entries is None:
            return call_result.GetBaseReport(status="NotSupported")
        self._report = (request_id, entries)
        return call_result.GetBaseReport(status="Accepted")

    @on("GetReport")
    def on_get_report(self, request_id: int,
                      component_variable: list[dict[str, Any]] | None = None,
                      component_criteria: list[str] | None = None,
                      **_: Any) -> call_result.GetReport:
        entries = self.device.report(component_variable, component_criteria)
        if not entries:
            return call_result.GetReport(status="EmptyResultSet")  # B08: no NotifyReport
        self._report = (request_id, entries)
        return call_result.GetReport(status="Accepted")

    @after("GetBaseReport")
    def after_base_report(self, **_: Any) -> None:
        self._start_report()

    @after("GetReport")
    def after_report(self, **_: Any) -> None:
        self._start_report()

    def _start_report(self) -> None:
        if self._report is not None:
            request_id, entries = self._report
            self._report = None
            self.core.spawn(self.send_report(request_id, entries))

    async def send_report(self, request_id: int, entries: list[Entry]) -> None:
        """NotifyReport pages for a report: the values as they are now, seqNo 0, 1, ... and tbc
        true on every page but the last."""
        data = [self.device.report_data(e) for e in entries]
        chunks = pages(data)
        generated = iso(self.core.clock())
        sent = await self.send_pages("NotifyReport", request_id, [
            {"requestId": request_id, "generatedAt": generated, "seqNo": seq_no,
             **({"reportData": chunk} if chunk else {})} for seq_no, chunk in enumerate(chunks)])
        if sent:
            log.info("%s: report %d sent: %d entries in %d page(s)", self.core.id, request_id,
                     len(data), len(chunks))

    async def send_pages(self, action: str, request_id: int,
                         payloads: list[dict[str, Any]]) -> bool:
        """A paged answer's CALLs in order, tbc true on all but the last; False (logged) when a
        page is not delivered: the rest is abandoned."""
        for n, payload in enumerate(payloads):
            try:
                await send_call(self, action, {**payload, "tbc": n < len(payloads) - 1})
            except (CallFailed, TimeoutError, ConnectionClosed) as exc:
                log.warning("%s: %s %d page %d not delivered, the rest abandoned: %.200s",
                            self.core.id, action, request_id, n, exc)
                return False
        return True

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, evse: dict[str, Any] | None = None,
                   **_: Any) -> call_result.TriggerMessage:
        if requested_message not in TRIGGERABLE:
            return call_result.TriggerMessage(status="NotImplemented")
        if evse is not None and evse.get("id") not in self.core.model.connectors:
            return call_result.TriggerMessage(status="Rejected")
        if requested_message == "TransactionEvent" and not any(
                c.facts.tx is not None for n, c in self.core.model.connectors.items()
                if evse is None or evse["id"] == n):
            return call_result.TriggerMessage(status="Rejected")  # no transaction to report
        return call_result.TriggerMessage(status="Accepted")

    @after("TriggerMessage")
    def after_trigger(self, requested_message: str, evse: dict[str, Any] | None = None,
                      **_: Any) -> None:
        if requested_message not in TRIGGERABLE or (
                evse is not None and evse.get("id") not in self.core.model.connectors):
            return
        connectors = self.core.model.connectors
        targets = [evse["id"]] if evse else list(connectors)
        if requested_message in TRIGGERS:
            self.security.trigger(requested_message)
        elif requested_message == "TransactionEvent":  # F06: in order with the transaction's
            self.core.dispatch(TriggerTransaction(evse["id"] if evse else None))
        elif requested_message == "Heartbeat":
            self.core.send(Heartbeat())
        elif requested_message == "BootNotification":
            self.core.send(Boot())
        elif requested_message == "StatusNotification":
            for n in targets:
                c = connectors[n]
                if c.status is not None:
                    self.core.send(SendStatus(n, c.status, c.facts.fault, c.facts.fault_info,
                                              self.core.clock()))
        else:  # MeterValues
            for n in targets:
                meter = connectors[n].facts.meter
                if meter is not None:
                    self.core.send(MeterValuesNow(n, meter, self.core.clock(),
                                                  ReadingContext.TRIGGER,
                                                  self.variables.sampled_measurands))

    @on("ChangeAvailability")
    def on_change_availability(self, operational_status: str,
                               evse: dict[str, Any] | None = None,
                               **_: Any) -> call_result.ChangeAvailability:
        connector = evse["id"] if evse else 0  # no EVSE: the whole station
        if evse is not None and evse.get("connector_id", 1) != 1:
            return call_result.ChangeAvailability(status="Rejected")  # one connector per EVSE
        # an EVSE's connector 1 is the EVSE (G03); kept across restarts like 1.6's
        return call_result.ChangeAvailability(status=_reply(self.core.dispatch(
            ChangeAvailability(connector, operational_status == "Operative"))))

    @on("Reset")
    def on_reset(self, type: str, evse_id: int | None = None,
                 **_: Any) -> call_result.Reset:
        if evse_id is not None:
            return self._reset_evse(type, evse_id)
        if type == "OnIdle" and self._busy():
            # B12: OnIdle waits for the transactions to end, then resets (Scheduled)
            if self.core not in _SCHEDULED_RESETS:  # one per station, across reconnects
                _SCHEDULED_RESETS[self.core] = self.core.on_dispatch(self._reset_when_idle)
            log.warning("%s: Reset OnIdle scheduled: after the running transaction(s)",
                        self.core.id)
            return call_result.Reset(status="Scheduled")
        scheduled = _SCHEDULED_RESETS.pop(self.core, None)
        if scheduled is not None:
            scheduled()  # an Immediate Reset takes the place of the scheduled one
        self._reset_now = True
        return call_result.Reset(status=_reply(self.core.dispatch(Reset(hard=True))))

    def _reset_evse(self, kind: str, evse_id: int) -> call_result.Reset:
        """B11/B12 with evseId: Immediate ends that EVSE's transaction (B12.FR.08: Ended,
        ResetCommand, ImmediateReset) and resets only it: Unavailable while its hardware is told
        its state again (B11.FR.08), then its status again; the station and the other EVSEs go
        on. OnIdle while it has a transaction: Scheduled (B12.FR.01), the transaction goes on
        and ends normally, then the reset (B12.FR.07)."""
        c = self.core.model.connectors.get(evse_id)
        if c is None:
            return call_result.Reset(status="Rejected")  # no such EVSE
        scheduled = _SCHEDULED_EVSE_RESETS.setdefault(self.core, {})
        if kind == "OnIdle" and c.facts.tx is not None:
            if evse_id not in scheduled:
                scheduled[evse_id] = self.core.on_dispatch(
                    lambda _e, _x: self._reset_evse_when_idle(evse_id))
            log.warning("%s: Reset OnIdle of EVSE %d scheduled: after its transaction",
                        self.core.id, evse_id)
            return call_result.Reset(status="Scheduled")
        unsubscribe = scheduled.pop(evse_id, None)  # an Immediate one replaces it
        if unsubscribe is not None:
            unsubscribe()
        log.warning("%s: Reset %s of EVSE %d", self.core.id, kind, evse_id)
        return call_result.Reset(status=_reply(self.core.dispatch(
            Reset(hard=True, connector=evse_id))))

    def _reset_evse_when_idle(self, evse_id: int) -> None:
        scheduled = _SCHEDULED_EVSE_RESETS.get(self.core, {})
        c = self.core.model.connectors.get(evse_id)
        if evse_id not in scheduled or c is None or c.facts.tx is not None:
            return
        scheduled.pop(evse_id)()
        log.warning("%s: the scheduled Reset OnIdle of EVSE %d goes ahead", self.core.id,
                    evse_id)
        self.core.dispatch(Reset(hard=True, connector=evse_id))

    def _busy(self) -> bool:
        return any(c.facts.tx is not None for c in self.core.model.connectors.values())

    def _reset_when_idle(self, _event: Event, _effects: list[Effect]) -> None:
        """After each model step while an OnIdle Reset is scheduled: reset once no transaction
        runs (offline too: the listener belongs to the station, not to the connection)."""
        if self.core not in _SCHEDULED_RESETS or self._busy():
            return
        _SCHEDULED_RESETS.pop(self.core)()
        log.warning("%s: the scheduled Reset OnIdle goes ahead: no transaction runs",
                    self.core.id)
        self.core.dispatch(Reset(hard=True))
        self.core.after_reset()

    @after("Reset")
    def after_reset(self, **_: Any) -> None:
        if self._reset_now:
            self._reset_now = False
            self.core.after_reset()

    # --- D Local authorization list, C cache (the auth tables 1.6 uses) ------------------------

    def local_list_version(self) -> int:
        """The installed list's version; 0 when none is installed (or it is empty, D02.FR.02)
        or the local list is disabled."""
        if not self.variables.local_list_enabled or not len(self.core.local_list):
            return 0
        return int(self.core.store.meta("local_list_version", "0") or 0)

    @on("GetLocalListVersion")
    def on_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(version_number=self.local_list_version())

    @on("SendLocalList")
    def on_send_local_list(self, version_number: int, update_type: str,
                           local_authorization_list: list[dict[str, Any]] | None = None,
                           **_: Any) -> call_result.SendLocalList:
        entries = local_authorization_list or []
        if not self.variables.local_list_enabled or len(
                entries) > self.variables.local_list_items_per_message:
            return call_result.SendLocalList(status="Failed")
        if update_type == "Full" and any("id_token_info" not in e for e in entries):
            # as in 1.6: only a Differential update deletes by leaving idTokenInfo out
            raise OccurrenceConstraintViolationError(
                description="SendLocalList Full: every entry needs idTokenInfo")
        if update_type == "Differential" and version_number <= self.local_list_version():
            return call_result.SendLocalList(status="VersionMismatch")
        store, local_list = self.core.store, self.core.local_list
        try:
            with store.transaction():
                if update_type == "Full":
                    local_list.clear()
                for entry in entries:
                    tag = convert.token(entry["id_token"])  # entries are per value and type
                    info = entry.get("id_token_info")
                    if info is None:
                        local_list.pop(tag, None)
                        continue
                    expiry = info.get("cache_expiry_date_time")
                    group = info.get("group_id_token")
                    local_list[tag] = AuthEntry(convert.auth_status(info["status"]),
                                                parse_time(expiry) if expiry else None,
                                                group["id_token"] if group else None)
                if len(local_list) > LOCAL_LIST_MAX:
                    raise _TooLong
                store.set_meta("local_list_version", str(version_number))
        except _TooLong:
            return call_result.SendLocalList(status="Failed")
        log.info("%s: SendLocalList %s v%d: %d entries", self.core.id, update_type,
                 version_number, len(local_list))
        return call_result.SendLocalList(status="Accepted")

    @on("ClearCache")
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        if not self.variables.auth_cache_enabled:
            return call_result.ClearCache(status="Rejected")  # C11.FR.04
        self.core.authoriser.cache.clear()
        return call_result.ClearCache(status="Accepted")

    # --- H Reservation (the model's reservations, as 1.6's ReserveNow) ---------------------------

    @on("ReserveNow")
    def on_reserve(self, id: int, expiry_date_time: str, id_token: dict[str, Any],
                   evse_id: int | None = None, group_id_token: dict[str, Any] | None = None,
                   **_: Any) -> call_result.ReserveNow:
        if not self.variables.reservation_enabled or (
                evse_id is None and not self.variables.reservation_non_evse_specific):
            return call_result.ReserveNow(status="Rejected")
        if evse_id is not None and evse_id not in self.core.model.connectors:
            return call_result.ReserveNow(status="Rejected")  # evseId 0 is not an EVSE
        status = self.core.model.reserve(evse_id or 0, Reservation(
            id, convert.token(id_token), group_id_token["id_token"] if group_id_token else None,
            parse_time(expiry_date_time)))
        self.core.dispatch(Tick())  # the status shows Reserved at once
        return call_result.ReserveNow(status=convert.outcome(status))

    @on("CancelReservation")
    def on_cancel_reservation(self, reservation_id: int,
                              **_: Any) -> call_result.CancelReservation:
        found = self.core.model.cancel_reservation(reservation_id)
        self.core.dispatch(Tick())
        return call_result.CancelReservation(status="Accepted" if found else "Rejected")

    def drop_unusable_reservations(self) -> list[int]:
        """Reservations on an EVSE made inoperative or faulted are removed (H01: the EVSE can no
        longer serve them); their ids."""
        dropped = []
        for c in self.core.model.connectors.values():
            f, r = c.facts, c.facts.reservation
            if r is not None and (not f.operative or not f.station_operative
                                  or blocking_fault(f)):
                self.core.model.cancel_reservation(r.reservation_id)
                dropped.append(r.reservation_id)
        if dropped:
            self.core.dispatch(Tick())
        return dropped

    # --- K Smart charging (the profile engine 1.6 uses, smart.py maps the profiles) ------------

    @on("SetChargingProfile")
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any],
                                **_: Any) -> call_result.SetChargingProfile:
        profile = snake_to_camel_case(charging_profile)
        problem = "SmartChargingCtrlr.Enabled is false" if not self.variables.smart_enabled \
            else smart.refusal(evse_id, profile, self.core.smart, set(self.core.model.connectors))
        status = Outcome.REJECTED if problem else self.core.install_profile(
            evse_id, self._engine_profile(evse_id, profile))
        log.info("%s: SetChargingProfile %d on EVSE %d: %s%s", self.core.id, profile["id"],
                 evse_id, status.value, f" ({problem})" if problem else "")
        return call_result.SetChargingProfile(
            status="Accepted" if status is Outcome.ACCEPTED else "Rejected",
            status_info={"reason_code": "InvalidProfile", "additional_info": problem[:512]}
            if problem else None)

    def _engine_profile(self, evse_id: int, profile: dict[str, Any]) -> dict[str, Any]:
        """The profile for the engine; a TxProfile naming the running transaction by our id
        before its Started was answered (the CSMS knows the id from the Started itself) is put
        on that transaction (the engine knows it by its local key until then)."""
        engine = smart.to_engine(profile)
        c = self.core.model.connectors.get(evse_id)
        tx = c.facts.tx if c is not None else None
        if (profile["chargingProfilePurpose"] == "TxProfile" and tx is not None
                and tx.transaction_id is None and profile.get("transactionId") == (
                    transaction_id_of(self.core.id, tx.local_id, tx.started_at.isoformat()))):
            del engine["transactionId"]
        return engine

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, charging_profile_id: int | None = None,
                                  charging_profile_criteria: dict[str, Any] | None = None,
                                  **_: Any) -> call_result.ClearChargingProfile:
        criteria = charging_profile_criteria or {}
        purpose = criteria.get("charging_profile_purpose")
        found = self.core.clear_profiles(
            profile_id=charging_profile_id, connector=criteria.get("evse_id"),
            purpose=MAX if purpose == smart.STATION_MAX else purpose,
            stack_level=criteria.get("stack_level"))
        return call_result.ClearChargingProfile(status="Accepted" if found else "Unknown")

    def installed_profiles(self, evse_id: int | None, criteria: dict[str, Any]
                           ) -> dict[tuple[int, str], list[dict[str, Any]]]:
        """The profiles matching GetChargingProfiles' criteria, per (EVSE, chargingLimitSource)
        (2.0.1 shape): the installed ones (CSO) and the external limits in force as
        ChargingStationExternalConstraints (K11.FR.06; a station-wide one on evseId 0)."""
        found: dict[tuple[int, str], list[dict[str, Any]]] = {}
        txs = {c.connector_id: c.facts.tx for c in self.core.model.connectors.values()}
        for p in self.core.smart.profiles:
            if evse_id is not None and p.connector != evse_id:
                continue
            tx = txs.get(p.connector)
            tx_id = None if tx is None else tx.transaction_id or transaction_id_of(
                self.core.id, tx.local_id, tx.started_at.isoformat())
            profile = smart.from_engine(p.profile, tx_id)
            if smart.matches(profile, criteria):
                found.setdefault((p.connector, "CSO"), []).append(profile)
        model = self.core.model
        now = self.core.clock().replace(microsecond=0)
        for (n, source), amps in sorted(model.external.in_force(
                model.connectors.values(), model.offpeak.holding).items()):
            if evse_id is not None and n != evse_id:
                continue
            profile = smart.external_profile(n, source, amps, now)
            if smart.matches(profile, criteria, smart.LIMIT_SOURCES[source]):
                found.setdefault((n, smart.LIMIT_SOURCES[source]), []).append(profile)
        return found

    @on("GetChargingProfiles")
    def on_get_charging_profiles(self, request_id: int, charging_profile: dict[str, Any],
                                 evse_id: int | None = None,
                                 **_: Any) -> call_result.GetChargingProfiles:
        found = self.installed_profiles(evse_id, snake_to_camel_case(charging_profile))
        if not found:
            return call_result.GetChargingProfiles(status="NoProfiles")  # K09: none follow
        self._profiles_report = (request_id, found)
        return call_result.GetChargingProfiles(status="Accepted")

    @after("GetChargingProfiles")
    def after_get_charging_profiles(self, **_: Any) -> None:
        if self._profiles_report is not None:
            request_id, found = self._profiles_report
            self._profiles_report = None
            self.core.spawn(self.send_profiles(request_id, found))

    async def send_profiles(self, request_id: int,
                            found: dict[tuple[int, str], list[dict[str, Any]]]) -> None:
        """ReportChargingProfiles, one per EVSE (evseId 0: the station) and limit source, tbc on
        all but the last (K09)."""
        await self.send_pages("ReportChargingProfiles", request_id, [
            {"requestId": request_id, "chargingLimitSource": source, "evseId": evse,
             "chargingProfile": found[(evse, source)]} for evse, source in sorted(found)])

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(self, duration: int, evse_id: int,
                                  charging_rate_unit: str | None = None,
                                  **_: Any) -> call_result.GetCompositeSchedule:
        if evse_id != 0 and evse_id not in self.core.model.connectors:
            return call_result.GetCompositeSchedule(status="Rejected", status_info={
                "reason_code": "UnknownEVSE"})
        start = self.core.clock().replace(microsecond=0)
        periods = self.core.composite(evse_id, start, duration)
        # the station's own maximum and the external limits in force are limits too (K08:
        # profiles and local limits combined); they are taken as lasting the whole duration
        cap = self._local_cap(evse_id)
        periods = [{**p, "limit": min(p["limit"], cap)} for p in periods] or [
            {"startPeriod": 0, "limit": cap}]
        if periods[0]["startPeriod"] != 0:  # not limited by a profile until then
            periods.insert(0, {"startPeriod": 0, "limit": cap})
        unit = charging_rate_unit or "A"
        if unit == "W":
            factor = 230.0 * self.core.settings.phases
            periods = [{**p, "limit": round(p["limit"] * factor, 1)} for p in periods]
        merged = [p for i, p in enumerate(periods) if i == 0 or p["limit"] != periods[i - 1][
            "limit"]]
        return call_result.GetCompositeSchedule(status="Accepted", schedule={
            "evse_id": evse_id, "duration": duration, "schedule_start": iso(start),
            "charging_rate_unit": unit, "charging_schedule_period": [
                {"start_period": p["startPeriod"], "limit": p["limit"]} for p in merged]})

    def _local_cap(self, evse_id: int) -> float:
        """The hardware maximum, lowered by the external limits in force (K11-K14): an EVSE's
        own and the station-wide ones; for evseId 0 the sum over the EVSEs."""
        model, most = self.core.model, self.core.settings.max_current_a
        limits = model.external.in_force(model.connectors.values(), model.offpeak.holding)
        station = min((a for (n, _), a in limits.items() if n == 0), default=None)

        def evse_cap(n: int) -> float:
            own = [a for (m, _), a in limits.items() if m == n]
            return min([most, *own] + ([] if station is None else [station]))
        return sum(evse_cap(n) for n in model.connectors) if evse_id == 0 else evse_cap(evse_id)

    # --- F UnlockConnector, P DataTransfer -----------------------------------------------------

    @on("UnlockConnector")
    async def on_unlock(self, evse_id: int, connector_id: int,
                        **_: Any) -> call_result.UnlockConnector:
        c = self.core.model.connectors.get(evse_id)
        if c is None or connector_id != 1:  # one connector per EVSE
            return call_result.UnlockConnector(status="UnknownConnector")
        if c.facts.tx is not None:  # F05.FR.02: an authorised transaction is not ended here
            return call_result.UnlockConnector(status="OngoingAuthorizedTransaction")
        result = await self.core.unlock(evse_id)
        # a connector without a lock (NotSupported in 1.6) cannot be unlocked: UnlockFailed
        return call_result.UnlockConnector(
            status="Unlocked" if result is Outcome.UNLOCKED else "UnlockFailed")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    # --- O Display messages (display.py maps them onto the station's) ---------------------------

    def _tx_id(self, local_id: int, started: datetime) -> str:
        return transaction_id_of(self.core.id, local_id, started.isoformat())

    @on("SetDisplayMessage")
    def on_set_display_message(self, message: dict[str, Any],
                               **_: Any) -> call_result.SetDisplayMessage:
        status, found = display.to_message(message, self.core, self.variables.display_enabled,
                                           self._tx_id)
        if found is not None:
            self.core.display.set(found)
        log.info("%s: SetDisplayMessage %d (%s): %s", self.core.id, message["id"],
                 message["priority"], status)
        return call_result.SetDisplayMessage(status=status)

    @on("GetDisplayMessages")
    def on_get_display_messages(self, request_id: int, id: list[int] | None = None,
                                priority: str | None = None, state: str | None = None,
                                **_: Any) -> call_result.GetDisplayMessages:
        found = display.find(self.core, id, priority, state)
        if not found:
            return call_result.GetDisplayMessages(status="Unknown")  # O03: none follow
        self._display_report = (request_id, found)
        return call_result.GetDisplayMessages(status="Accepted")

    @after("GetDisplayMessages")
    def after_get_display_messages(self, **_: Any) -> None:
        if self._display_report is not None:
            request_id, found = self._display_report
            self._display_report = None
            self.core.spawn(self.send_display_messages(request_id, found))

    async def send_display_messages(self, request_id: int, found: list[Any]) -> None:
        """NotifyDisplayMessages, PAGE messages each, tbc on all but the last (O03)."""
        if await self.send_pages("NotifyDisplayMessages", request_id,
                                 display.notify_pages(request_id, found)):
            log.info("%s: %d display message(s) reported for request %d", self.core.id,
                     len(found), request_id)

    @on("ClearDisplayMessage")
    def on_clear_display_message(self, id: int, **_: Any) -> call_result.ClearDisplayMessage:
        found = self.core.display.clear(id)
        return call_result.ClearDisplayMessage(status="Accepted" if found else "Unknown")

    # --- N02-N06 monitoring (monitoring.py maps them onto the station's monitors) ------------

    def _at_most(self, items: list[Any], action: str) -> None:
        if len(items) > ITEMS_PER_MESSAGE:  # N04.FR.09, N06.FR.06
            raise OccurrenceConstraintViolationError(
                description=f"{action}: {len(items)} items, ItemsPerMessage is "
                            f"{ITEMS_PER_MESSAGE}")

    @on("SetVariableMonitoring")
    def on_set_variable_monitoring(self, set_monitoring_data: list[dict[str, Any]],
                                   **_: Any) -> call_result.SetVariableMonitoring:
        self._at_most(set_monitoring_data, "SetVariableMonitoring")
        results = monitoring.set_monitoring(self.device, self.core.monitoring,
                                            set_monitoring_data)
        for r in results:
            log.info("%s: SetVariableMonitoring %s.%s %s %s -> %s", self.core.id,
                     r["component"]["name"], r["variable"]["name"], r["type"],
                     r.get("id", ""), r["status"])
        return call_result.SetVariableMonitoring(set_monitoring_result=results)

    @on("ClearVariableMonitoring")
    def on_clear_variable_monitoring(self, id: list[int],
                                     **_: Any) -> call_result.ClearVariableMonitoring:
        self._at_most(id, "ClearVariableMonitoring")
        return call_result.ClearVariableMonitoring(
            clear_monitoring_result=monitoring.clear_monitoring(self.core.monitoring, id))

    @on("GetMonitoringReport")
    def on_get_monitoring_report(self, request_id: int,
                                 monitoring_criteria: list[str] | None = None,
                                 component_variable: list[dict[str, Any]] | None = None,
                                 **_: Any) -> call_result.GetMonitoringReport:
        found = monitoring.report(self.device, self.core.monitoring, monitoring_criteria,
                                  component_variable)
        if found is None:
            return call_result.GetMonitoringReport(status="NotSupported")  # N02.FR.02
        if not found:
            return call_result.GetMonitoringReport(status="EmptyResultSet")  # N02.FR.10
        self._monitoring_report = (request_id, found)
        return call_result.GetMonitoringReport(status="Accepted")

    @after("GetMonitoringReport")
    def after_get_monitoring_report(self, **_: Any) -> None:
        if self._monitoring_report is not None:
            request_id, found = self._monitoring_report
            self._monitoring_report = None
            self.core.spawn(self.send_monitoring_report(request_id, found))

    async def send_monitoring_report(self, request_id: int,
                                     found: list[dict[str, Any]]) -> None:
        """NotifyMonitoringReport pages, seqNo 0, 1, ... tbc on all but the last (N02.FR.03/09)."""
        if await self.send_pages("NotifyMonitoringReport", request_id, monitoring.report_pages(
                request_id, iso(self.core.clock()), found)):
            log.info("%s: monitoring report %d sent: %d variable(s)", self.core.id, request_id,
                     len(found))

    @on("SetMonitoringLevel")
    def on_set_monitoring_level(self, severity: int,
                                **_: Any) -> call_result.SetMonitoringLevel:
        status = monitoring.level_status(severity)
        if status == "Accepted":
            self.variables.set("MonitoringCtrlr.ActiveMonitoringLevel", str(severity))
        return call_result.SetMonitoringLevel(status=status)

    @on("SetMonitoringBase")
    def on_set_monitoring_base(self, monitoring_base: str,
                               **_: Any) -> call_result.SetMonitoringBase:
        status = monitoring.set_base(self.device, self.core.monitoring, monitoring_base)
        self.variables.set("MonitoringCtrlr.ActiveMonitoringBase", monitoring_base)
        return call_result.SetMonitoringBase(status=status)

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str,
                        **_: Any) -> call_result.RequestStopTransaction:
        local = next((c.facts.tx.local_id for c in self.core.model.connectors.values()
                      if c.facts.tx is not None and transaction_id == transaction_id_of(
                          self.core.id, c.facts.tx.local_id, c.facts.tx.started_at.isoformat())),
                     None)  # the id is ours from the start, before its Started is answered
        return call_result.RequestStopTransaction(
            status=_reply(self.core.dispatch(RemoteStop(transaction_id, local))))

    @on("GetTransactionStatus")
    def on_get_transaction_status(self, transaction_id: str | None = None,
                                  **_: Any) -> call_result.GetTransactionStatus:
        """E14: whether transaction messages wait in the outbox (of that transaction, or of
        any: FR.06), and whether that transaction is still going on (FR.02/FR.03; an id the
        station does not know: neither). Read from the durable outbox, so a message is queued
        until the central system answered it."""
        queue = OfflineQueue(self.core.store)
        rows = [r for r in queue.all() if r.local_id is not None
                and r.kind in (STARTED, UPDATED, METER_VALUES, STOPPED)]
        if transaction_id is None:
            return call_result.GetTransactionStatus(messages_in_queue=bool(rows))
        running = {c.facts.tx.local_id: transaction_id_of(
            self.core.id, c.facts.tx.local_id, c.facts.tx.started_at.isoformat())
            for c in self.core.model.connectors.values() if c.facts.tx is not None}
        ids = dict(running)
        for r in rows:  # a start still queued names its transaction; else the one answered
            if r.kind == STARTED and r.local_id is not None:
                ids.setdefault(r.local_id, transaction_id_of(self.core.id, r.local_id,
                                                             str(r.payload["ts"])))
        for local in {r.local_id for r in rows if r.local_id is not None} - ids.keys():
            known = queue.transaction_id(local)
            if known is not None:
                ids[local] = known
        mine = {local for local, tx_id in ids.items() if tx_id == transaction_id}
        return call_result.GetTransactionStatus(
            messages_in_queue=any(r.local_id in mine for r in rows),
            ongoing_indicator=bool(mine & running.keys()))


class V201Session:
    """One 2.0.1 connection."""

    def __init__(self, adapter: V201Adapter, connection: ClientConnection,
                 core: StationCore) -> None:
        self.adapter = adapter
        self.core = core
        self.cp = V201ChargePoint(core.id, connection, core, adapter.config,
                                  response_timeout=core.settings.response_timeout_s)
        self._accepted = asyncio.Event()  # BootNotification accepted: CALLs may go out (B02)
        self._reservation_updates: asyncio.Queue[tuple[int, str]] = asyncio.Queue()

    def _station(self) -> dict[str, Any]:
        s = self.core.settings
        return {"model": s.charge_point_model, "vendorName": s.charge_point_vendor,
                "firmwareVersion": s.firmware_version, "serialNumber": self.core.id[:25]}

    async def serve(self) -> None:
        """Read frames until the connection ends; reservations that end are reported meanwhile
        (driven by the model's effects, see `_dispatched`)."""
        unsubscribe = self.core.on_dispatch(self._dispatched)
        sender = asyncio.create_task(self._send_reservation_updates())
        try:
            await self.cp.start()
        finally:
            unsubscribe()
            sender.cancel()
            await asyncio.wait({sender})  # never swallows a cancel of serve itself

    def _dispatched(self, _event: Event, effects: list[Effect]) -> None:
        """After each model step: a reservation that expired unused is Expired (the model says
        so), one on an EVSE made inoperative or faulted is dropped and Removed (H01); one used by
        its transaction or cancelled by the central system ends silently."""
        for effect in effects:
            if isinstance(effect, ReservationExpired):
                self._reservation_updates.put_nowait((effect.reservation_id, "Expired"))
        for rid in self.cp.drop_unusable_reservations():
            self._reservation_updates.put_nowait((rid, "Removed"))

    async def _send_reservation_updates(self) -> None:
        """ReservationStatusUpdate for each ended reservation, in order, once the boot is
        accepted (what ends while Pending is told then, B02)."""
        while True:
            rid, status = await self._reservation_updates.get()
            await self._accepted.wait()
            log.info("%s: reservation %d %s", self.core.id, rid, status)
            try:
                await send_call(self.cp, "ReservationStatusUpdate", {
                    "reservationId": rid, "reservationUpdateStatus": status})
            except (CallFailed, TimeoutError, ConnectionClosed) as exc:
                log.warning("%s: ReservationStatusUpdate %d %s not delivered: %.200s",
                            self.core.id, rid, status, exc)

    async def boot(self) -> None:
        """BootNotification until Accepted; Pending/Rejected wait the interval (B01-B03)."""
        core = self.core
        while True:
            answer = await send_call(self.cp, "BootNotification", {
                "chargingStation": self._station(), "reason": "PowerUp"})
            status = RegistrationStatus(answer["status"])
            core.registered(status)
            interval = int(answer.get("interval", 0))
            if status is RegistrationStatus.ACCEPTED:
                if interval > 0:
                    self.adapter.config.set_heartbeat_interval(interval)
                log.info("%s: accepted by the central system (OCPP 2.0.1)", core.id)
                self._accepted.set()
                return
            wait = (interval or 60) * core.settings.time_scale
            log.warning("%s: BootNotification %s; retrying in %.1fs", core.id, status.value, wait)
            await asyncio.sleep(wait)

    async def send(self, message: Message) -> Event | None:
        """A live message as its 2.0.1 CALL (messages 2.0.1 has no CALL for are skipped)."""
        if isinstance(message, SendStatus):
            await send_call(self.cp, "StatusNotification", convert.status_notification(message))
        elif isinstance(message, SendAuthorize):
            answer = await send_call(self.cp, "Authorize",
                                     {"idToken": convert.id_token(message.id_tag)})
            info = answer.get("idTokenInfo", {})
            expiry = info.get("cacheExpiryDateTime")
            group = info.get("groupIdToken")
            return AuthorizeAnswered(message.id_tag, convert.auth_status(info.get("status", "")),
                                     parse_time(expiry) if expiry else None,
                                     group.get("idToken") if group else None)
        elif isinstance(message, Heartbeat):
            await send_call(self.cp, "Heartbeat", {})
        elif isinstance(message, Boot):
            await send_call(self.cp, "BootNotification", {"chargingStation": self._station(),
                                                          "reason": "Triggered"})
        elif isinstance(message, MeterValuesNow):
            await send_call(self.cp, "MeterValues", convert.meter_values(message))
        elif isinstance(message, LogStatus | SignedFirmwareStatus):
            payload: dict[str, Any] = {"status": message.status}
            if message.request_id is not None:
                payload["requestId"] = message.request_id
            await send_call(self.cp, "LogStatusNotification" if isinstance(message, LogStatus)
                            else "FirmwareStatusNotification", payload)
        elif isinstance(message, SignCertificateRequest):  # A02: for the CSMS connection
            await send_call(self.cp, "SignCertificate", {
                "csr": message.csr, "certificateType": "ChargingStationCertificate"})
        # StationStatus: 2.0.1 reports per EVSE only; MaintenanceStatus: not done yet
        return None

    async def send_record(self, record: Record, tx_id: str | None) -> Event | None:
        """TransactionEvent for an outbox record; a Started's answer as StartAnswered."""
        if isinstance(record, WireRecord):
            log.warning("%s: dropping a queued %s %s: it cannot be sent over OCPP 2.0.1",
                        self.core.id, record.subprotocol, record.action)
            return None
        if isinstance(record, SecurityEventRecord):  # the same payload as the 1.6 extension's
            event = security_event(record)
            event["type"] = EVENT_NAMES.get(event["type"], event["type"])  # 2.0.1's names
            await send_call(self.cp, "SecurityEventNotification", event)
            return None
        if isinstance(record, MonitorEventRecord):  # N07
            await send_call(self.cp, "NotifyEvent", monitoring.notify_event(
                record, iso(self.core.clock())))
            return None
        if isinstance(record, FirmwareStatusRecord):  # queued by a 1.6 firmware job
            payload: dict[str, Any] = {"status": record.status}
            if record.request_id is not None:
                payload["requestId"] = record.request_id
            await send_call(self.cp, "FirmwareStatusNotification", payload)
            return None
        if isinstance(record, ExternalLimitRecord):  # K11-K13
            action, payload = smart.charging_limit_call(
                record, self.adapter.config.notify_limit_with_schedules)
            await send_call(self.cp, action, payload)
            return None
        assert isinstance(record, TxRecord)
        local_id = record.effect.local_id
        assert local_id is not None
        if isinstance(record, TransactionStarted):
            tx_id = transaction_id_of(self.core.id, local_id, record.effect.ts.isoformat())
        assert tx_id is not None
        store = self.adapter.store
        seq_key = f"v201.seq_no.{local_id}"
        seq_no = int(store.meta(seq_key, "0") or 0)
        event = convert.transaction_event(record, tx_id, seq_no)
        if record.offline:
            event["offline"] = True
        answer = await send_call(self.cp, "TransactionEvent", event)
        if isinstance(record, TransactionStopped):
            store.delete_meta(seq_key)  # the transaction is over: nothing follows
        else:
            store.set_meta(seq_key, str(seq_no + 1))  # the next event: no gaps, none twice
        if isinstance(record, TransactionStarted | TransactionUpdated):
            # the answer to the event with the idToken says whether it may charge (E01/E02)
            info = answer.get("idTokenInfo")
            status = convert.auth_status(info["status"]) if info else AuthStatus.ACCEPTED
            if isinstance(record, TransactionUpdated) and info is None:
                return None
            return StartAnswered(local_id, tx_id, status)
        return None
