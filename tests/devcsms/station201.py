# mypy: disable-error-code="misc,untyped-decorator,no-untyped-call"
"""A small real OCPP 2.0.1 charging station on `ocpp.v201`, over a real WebSocket, for testing the
dev central system (the gateway's 2.0.1 side is built elsewhere).

It answers every CSMS-initiated request the dev central system can send, schema-valid, and does
what a station does next (a NotifyReport after GetBaseReport, a TransactionEvent after
RequestStartTransaction, ...), so the central system's side of each exchange is exercised.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.client import ClientConnection, connect


def now(offset_s: float = 0) -> str:
    """An OCPP dateTime, optionally offset from now."""
    stamp = datetime.now(UTC) + timedelta(seconds=offset_s)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def energy(wh: float) -> list[dict[str, Any]]:
    """One meter value with the energy register (snake_case, as ocpp call dataclasses take)."""
    return [{"timestamp": now(), "sampled_value": [
        {"value": wh, "measurand": "Energy.Active.Import.Register",
         "unit_of_measure": {"unit": "Wh"}}]}]


class Station201(ChargePoint):
    """The charging station: a device model of a few variables, one EVSE with one connector."""

    def __init__(self, station_id: str, connection: ClientConnection) -> None:
        super().__init__(station_id, connection, response_timeout=5)
        self.variables: dict[tuple[str, str], str] = {
            ("SecurityCtrlr", "BasicAuthPassword"): "",
            ("SampledDataCtrlr", "TxUpdatedInterval"): "60",
            ("OCPPCommCtrlr", "HeartbeatInterval"): "300",
            ("DeviceDataCtrlr", "ItemsPerMessage"): "2",
        }
        self.requests: list[tuple[str, dict[str, Any]]] = []  # CSMS-initiated, snake_case
        self.seq = itertools.count(0)
        self.transaction_id: str | None = None
        self.local_list_version = 0
        self.report_seq_nos: list[int] | None = None  # the next report's page seqNos
        self.results_limit: int | None = None  # GetVariables answers only this many (a bug)
        self.composite_unit: str | None = None  # GetCompositeSchedule answers in this unit
        # the remoteStartId its remote start's Started carries, given the request's (a station
        # that forgets it: None, omitted; one that sends another: another)
        self.sent_remote_start_id: Callable[[int], int | None] = lambda given: given

    def _got(self, action: str, kwargs: dict[str, Any]) -> None:
        self.requests.append((action, kwargs))

    # --- what the station sends --------------------------------------------------------------

    async def boot(self) -> Any:
        """BootNotification (PowerUp)."""
        return await self.call(call.BootNotification(
            charging_station={"model": "voltbus-test", "vendor_name": "voltbus"},
            reason="PowerUp"))

    async def status(self, status: str, evse_id: int = 1, connector_id: int = 1,
                     timestamp: str | None = None) -> Any:
        """StatusNotification for one connector."""
        return await self.call(call.StatusNotification(
            timestamp=timestamp or now(), connector_status=status, evse_id=evse_id,
            connector_id=connector_id))

    async def event(self, event_type: str, transaction_id: str, *, seq_no: int | None = None,
                    trigger_reason: str | None = None, offline: bool | None = None,
                    meter_wh: float | None = None, id_token: str | None = None,
                    token_type: str = "ISO14443", timestamp: str | None = None,
                    **info: Any) -> Any:
        """A TransactionEvent; seqNo from the station's counter unless given. A Started
        Authorized carries an idToken (a test card unless given), as E01-E03 want."""
        if trigger_reason is None:
            trigger_reason = {"Started": "Authorized", "Ended": "StopAuthorized"}.get(
                event_type, "MeterValuePeriodic")
        if id_token is None and event_type == "Started" and trigger_reason == "Authorized":
            id_token = "TESTCARD"
        return await self.call(call.TransactionEvent(
            event_type=event_type, timestamp=timestamp or now(), trigger_reason=trigger_reason,
            seq_no=next(self.seq) if seq_no is None else seq_no,
            transaction_info={"transaction_id": transaction_id, **info},
            offline=offline, evse={"id": 1, "connector_id": 1},
            meter_value=energy(meter_wh) if meter_wh is not None else None,
            id_token={"id_token": id_token, "type": token_type} if id_token else None))

    # --- B provisioning ----------------------------------------------------------------------

    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]],
                         **kw: Any) -> call_result.GetVariables:
        self._got("GetVariables", {"get_variable_data": get_variable_data, **kw})
        results = []
        for item in get_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            value = self.variables.get(key)
            results.append({"attribute_status": "Accepted" if value is not None else
                            "UnknownVariable", "component": item["component"],
                            "variable": item["variable"],
                            **({"attribute_value": value} if value is not None else {})})
        return call_result.GetVariables(get_variable_result=results[:self.results_limit])

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]],
                         **kw: Any) -> call_result.SetVariables:
        self._got("SetVariables", {"set_variable_data": set_variable_data, **kw})
        results = []
        for item in set_variable_data:
            key = (item["component"]["name"], item["variable"]["name"])
            known = key in self.variables
            if known:
                self.variables[key] = item["attribute_value"]
            results.append({"attribute_status": "Accepted" if known else "UnknownVariable",
                            "component": item["component"], "variable": item["variable"]})
        return call_result.SetVariables(set_variable_result=results)

    @on(Action.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str,
                           **_: Any) -> call_result.GetBaseReport:
        self._got("GetBaseReport", {"request_id": request_id, "report_base": report_base})
        return call_result.GetBaseReport(status="Accepted")

    @after(Action.get_base_report)
    async def after_get_base_report(self, request_id: int, **_: Any) -> None:
        await self.send_report(request_id, seq_nos=self.report_seq_nos)

    @on(Action.get_report)
    def on_get_report(self, request_id: int, **kw: Any) -> call_result.GetReport:
        self._got("GetReport", {"request_id": request_id, **kw})
        return call_result.GetReport(status="Accepted")

    @after(Action.get_report)
    async def after_get_report(self, request_id: int, **_: Any) -> None:
        await self.send_report(request_id, seq_nos=self.report_seq_nos)

    async def send_report(self, request_id: int, *, per_page: int = 2,
                          seq_nos: list[int] | None = None) -> None:
        """The device model as a NotifyReport in pages of per_page variables."""
        items = [{"component": {"name": c}, "variable": {"name": v},
                  "variable_attribute": [{"type": "Actual", "mutability": "ReadWrite",
                                          "value": val} if "Password" not in v else {
                                              "type": "Actual", "mutability": "WriteOnly"}]}
                 for (c, v), val in self.variables.items()]
        pages = [items[i:i + per_page] for i in range(0, len(items), per_page)]
        for n, page in enumerate(pages):
            await self.call(call.NotifyReport(
                request_id=request_id, generated_at=now(),
                seq_no=n if seq_nos is None else seq_nos[n], report_data=page,
                tbc=n < len(pages) - 1))

    @on(Action.reset)
    def on_reset(self, type: str, **kw: Any) -> call_result.Reset:
        self._got("Reset", {"type": type, **kw})
        return call_result.Reset(status="Scheduled" if type == "OnIdle" else "Accepted")

    # --- C authorization ---------------------------------------------------------------------

    @on(Action.send_local_list)
    def on_send_local_list(self, version_number: int, update_type: str,
                           **kw: Any) -> call_result.SendLocalList:
        self._got("SendLocalList", {"version_number": version_number, **kw})
        self.local_list_version = version_number
        return call_result.SendLocalList(status="Accepted")

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        self._got("GetLocalListVersion", {})
        return call_result.GetLocalListVersion(version_number=self.local_list_version)

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        self._got("ClearCache", {})
        return call_result.ClearCache(status="Accepted")

    # --- E transactions, F remote control ----------------------------------------------------

    @on(Action.request_start_transaction)
    def on_request_start(self, id_token: dict[str, Any], remote_start_id: int,
                         **kw: Any) -> call_result.RequestStartTransaction:
        self._got("RequestStartTransaction", {"id_token": id_token,
                                              "remote_start_id": remote_start_id, **kw})
        return call_result.RequestStartTransaction(status="Accepted")

    @after(Action.request_start_transaction)
    async def after_request_start(self, id_token: dict[str, Any], remote_start_id: int,
                                  **_: Any) -> None:
        self.transaction_id = f"tx-remote-{remote_start_id}"
        sent = self.sent_remote_start_id(remote_start_id)
        await self.event("Started", self.transaction_id, trigger_reason="RemoteStart",
                         **({} if sent is None else {"remote_start_id": sent}), meter_wh=100,
                         id_token=id_token["id_token"], token_type=id_token["type"])

    @on(Action.request_stop_transaction)
    def on_request_stop(self, transaction_id: str,
                        **_: Any) -> call_result.RequestStopTransaction:
        self._got("RequestStopTransaction", {"transaction_id": transaction_id})
        known = transaction_id == self.transaction_id
        return call_result.RequestStopTransaction(status="Accepted" if known else "Rejected")

    @after(Action.request_stop_transaction)
    async def after_request_stop(self, transaction_id: str, **_: Any) -> None:
        if transaction_id == self.transaction_id:
            self.transaction_id = None
            await self.event("Ended", transaction_id, trigger_reason="RemoteStop",
                             stopped_reason="Remote", meter_wh=150)

    @on(Action.get_transaction_status)
    def on_get_transaction_status(self, **kw: Any) -> call_result.GetTransactionStatus:
        self._got("GetTransactionStatus", kw)
        return call_result.GetTransactionStatus(messages_in_queue=False, ongoing_indicator=(
            kw.get("transaction_id") == self.transaction_id if "transaction_id" in kw else None))

    @on(Action.trigger_message)
    def on_trigger(self, requested_message: str, **kw: Any) -> call_result.TriggerMessage:
        self._got("TriggerMessage", {"requested_message": requested_message, **kw})
        supported = {"Heartbeat", "StatusNotification", "BootNotification"}
        return call_result.TriggerMessage(
            status="Accepted" if requested_message in supported else "NotImplemented")

    @after(Action.trigger_message)
    async def after_trigger(self, requested_message: str, **_: Any) -> None:
        if requested_message == "Heartbeat":
            await self.call(call.Heartbeat())
        elif requested_message == "StatusNotification":
            await self.status("Available")
        elif requested_message == "BootNotification":
            await self.boot()

    @on(Action.unlock_connector)
    def on_unlock(self, evse_id: int, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        self._got("UnlockConnector", {"evse_id": evse_id, "connector_id": connector_id})
        return call_result.UnlockConnector(status="Unlocked")

    # --- G availability, H reservation ---------------------------------------------------------

    @on(Action.change_availability)
    def on_change_availability(self, operational_status: str,
                               **kw: Any) -> call_result.ChangeAvailability:
        self._got("ChangeAvailability", {"operational_status": operational_status, **kw})
        return call_result.ChangeAvailability(status="Accepted")

    @on(Action.reserve_now)
    def on_reserve_now(self, id: int, expiry_date_time: str,
                       id_token: dict[str, Any], **kw: Any) -> call_result.ReserveNow:
        self._got("ReserveNow", {"id": id, "id_token": id_token, **kw})
        return call_result.ReserveNow(status="Accepted")

    @after(Action.reserve_now)
    async def after_reserve_now(self, id: int, **_: Any) -> None:
        await self.call(call.ReservationStatusUpdate(reservation_id=id,
                                                     reservation_update_status="Expired"))

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int,
                              **_: Any) -> call_result.CancelReservation:
        self._got("CancelReservation", {"reservation_id": reservation_id})
        return call_result.CancelReservation(status="Rejected")

    # --- K smart charging ------------------------------------------------------------------------

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any],
                                **_: Any) -> call_result.SetChargingProfile:
        self._got("SetChargingProfile", {"evse_id": evse_id,
                                         "charging_profile": charging_profile})
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.get_charging_profiles)
    def on_get_charging_profiles(self, request_id: int, charging_profile: dict[str, Any],
                                 **kw: Any) -> call_result.GetChargingProfiles:
        self._got("GetChargingProfiles", {"request_id": request_id, **kw})
        return call_result.GetChargingProfiles(status="Accepted")

    @after(Action.get_charging_profiles)
    async def after_get_charging_profiles(self, request_id: int, **_: Any) -> None:
        profile = {"id": 1, "stack_level": 0, "charging_profile_purpose": "TxDefaultProfile",
                   "charging_profile_kind": "Relative", "charging_schedule": [{
                       "id": 1, "charging_rate_unit": "A",
                       "charging_schedule_period": [{"start_period": 0, "limit": 16}]}]}
        await self.call(call.ReportChargingProfiles(
            request_id=request_id, charging_limit_source="CSO", charging_profile=[profile],
            evse_id=1, tbc=False))

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **kw: Any) -> call_result.ClearChargingProfile:
        self._got("ClearChargingProfile", kw)
        return call_result.ClearChargingProfile(status="Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, duration: int, evse_id: int,
                                  **kw: Any) -> call_result.GetCompositeSchedule:
        self._got("GetCompositeSchedule", {"duration": duration, "evse_id": evse_id, **kw})
        return call_result.GetCompositeSchedule(status="Accepted", schedule={
            "evse_id": evse_id, "duration": duration, "schedule_start": now(),
            "charging_rate_unit": self.composite_unit or kw.get("charging_rate_unit", "A"),
            "charging_schedule_period": [{"start_period": 0, "limit": 16}]})

    # --- L firmware, N diagnostics -----------------------------------------------------------

    @on(Action.update_firmware)
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any],
                           **_: Any) -> call_result.UpdateFirmware:
        self._got("UpdateFirmware", {"request_id": request_id, "firmware": firmware})
        return call_result.UpdateFirmware(status="Accepted")

    @after(Action.update_firmware)
    async def after_update_firmware(self, request_id: int, **_: Any) -> None:
        for status in ("Downloading", "Downloaded", "SignatureVerified", "Installing",
                       "Installed"):
            await self.call(call.FirmwareStatusNotification(status=status,
                                                            request_id=request_id))

    @on(Action.get_log)
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int,
                   **_: Any) -> call_result.GetLog:
        self._got("GetLog", {"log": log, "log_type": log_type, "request_id": request_id})
        return call_result.GetLog(status="Accepted", filename="log.txt")

    @after(Action.get_log)
    async def after_get_log(self, request_id: int, **_: Any) -> None:
        for status in ("Uploading", "Uploaded"):
            await self.call(call.LogStatusNotification(status=status, request_id=request_id))

    # --- O display messages, P data transfer, A certificates -----------------------------------

    @on(Action.set_display_message)
    def on_set_display_message(self, message: dict[str, Any],
                               **_: Any) -> call_result.SetDisplayMessage:
        self._got("SetDisplayMessage", {"message": message})
        return call_result.SetDisplayMessage(status="Accepted")

    @on(Action.get_display_messages)
    def on_get_display_messages(self, request_id: int,
                                **kw: Any) -> call_result.GetDisplayMessages:
        self._got("GetDisplayMessages", {"request_id": request_id, **kw})
        return call_result.GetDisplayMessages(status="Accepted")

    @after(Action.get_display_messages)
    async def after_get_display_messages(self, request_id: int, **_: Any) -> None:
        await self.call(call.NotifyDisplayMessages(request_id=request_id, message_info=[{
            "id": 1, "priority": "NormalCycle",
            "message": {"format": "UTF8", "content": "Welcome"}}]))

    @on(Action.clear_display_message)
    def on_clear_display_message(self, id: int,
                                 **_: Any) -> call_result.ClearDisplayMessage:
        self._got("ClearDisplayMessage", {"id": id})
        return call_result.ClearDisplayMessage(status="Accepted")

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kw: Any) -> call_result.DataTransfer:
        self._got("DataTransfer", {"vendor_id": vendor_id, **kw})
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.certificate_signed)
    def on_certificate_signed(self, certificate_chain: str,
                              **kw: Any) -> call_result.CertificateSigned:
        self._got("CertificateSigned", {"certificate_chain": certificate_chain, **kw})
        return call_result.CertificateSigned(status="Rejected")

    @on(Action.install_certificate)
    def on_install_certificate(self, certificate_type: str, certificate: str,
                               **_: Any) -> call_result.InstallCertificate:
        self._got("InstallCertificate", {"certificate_type": certificate_type})
        return call_result.InstallCertificate(status="Accepted")

    @on(Action.get_installed_certificate_ids)
    def on_get_installed_certificate_ids(self,
                                         **kw: Any) -> call_result.GetInstalledCertificateIds:
        self._got("GetInstalledCertificateIds", kw)
        return call_result.GetInstalledCertificateIds(
            status="Accepted", certificate_hash_data_chain=[{
                "certificate_type": "CSMSRootCertificate", "certificate_hash_data": HASH}])

    @on(Action.delete_certificate)
    def on_delete_certificate(self, certificate_hash_data: dict[str, Any],
                              **_: Any) -> call_result.DeleteCertificate:
        self._got("DeleteCertificate", {"certificate_hash_data": certificate_hash_data})
        return call_result.DeleteCertificate(status="NotFound")


HASH = {"hash_algorithm": "SHA256", "issuer_name_hash": "a" * 64, "issuer_key_hash": "b" * 64,
        "serial_number": "01"}


@contextlib.asynccontextmanager
async def station201(url: str, station_id: str, *,
                     subprotocols: tuple[str, ...] = ("ocpp2.0.1",),
                     **connect_kwargs: Any) -> AsyncIterator[Station201]:
    """A connected Station201 serving its side of the connection until the block ends."""
    async with connect(f"{url}/{station_id}", subprotocols=list(subprotocols),  # type: ignore[arg-type]
                       **connect_kwargs) as ws:
        station = Station201(station_id, ws)
        task = asyncio.create_task(station.start())
        try:
            yield station
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
