# mypy: disable-error-code="misc,untyped-decorator"
# (the ocpp package is untyped: its ChargePoint and @on are Any to mypy)
"""The charge point's side of OCPP 1.6J: one thin `@on` handler per central-system request.

Each handler converts the request, asks `requests.V16Requests` (which asks the model through the
station core) and converts the answer back. Anything that needs to send a CALL is queued, never
awaited here: the handler runs on the connection's receive loop, which must stay free to read the
answer.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action

from voltbus_ocpp.protocol.guard import FrameGuard
from voltbus_ocpp.protocol.v16.frames import check_frame

log = logging.getLogger(__name__)


class StationApi(Protocol):
    """What the handlers need: the 1.6 requests answered (requests.V16Requests)."""

    def remote_start(self, id_tag: str, connector: int | None,
                     profile: dict[str, Any] | None) -> str: ...
    def remote_stop(self, transaction_id: int) -> str: ...
    def change_configuration(self, key: str, value: str) -> str: ...
    def get_configuration(self, keys: list[str] | None
                          ) -> tuple[list[dict[str, Any]], list[str]]: ...
    def change_availability(self, connector: int, operative: bool) -> str: ...
    def reset(self, hard: bool) -> str: ...
    async def unlock(self, connector: int) -> str: ...
    def clear_cache(self) -> str: ...
    def trigger(self, message: str, connector: int | None) -> str: ...
    def local_list_version(self) -> int: ...
    def send_local_list(self, version: int, update_type: str,
                        entries: list[dict[str, Any]]) -> str: ...
    def reserve(self, connector: int, expiry: str, id_tag: str, reservation_id: int,
                parent_id_tag: str | None) -> str: ...
    def cancel_reservation(self, reservation_id: int) -> str: ...
    def set_profile(self, connector: int, profile: dict[str, Any]) -> str: ...
    def clear_profile(self, profile_id: int | None, connector: int | None,
                      purpose: str | None, stack_level: int | None) -> str: ...
    def composite(self, connector: int, duration_s: int, unit: str | None
                  ) -> dict[str, Any] | None: ...
    def after_trigger(self, message: str, connector: int | None) -> None: ...
    def after_reset(self) -> None: ...
    def get_diagnostics(self, location: str, retries: int, retry_interval_s: int,
                        start: str | None, stop: str | None) -> str: ...
    def after_get_diagnostics(self) -> None: ...
    def update_firmware(self, location: str, retrieve_date: str, retries: int,
                        retry_interval_s: int) -> None: ...
    def after_update_firmware(self) -> None: ...


_CALL_FRAME = re.compile(r"\s*\[\s*2\s*,")
_SECRET = re.compile(r'("key"\s*:\s*"AuthorizationKey"\s*,\s*"value"\s*:\s*")[^"]*"')


def redact(text: object) -> object:
    """Frames with an AuthorizationKey value, without the value."""
    return _SECRET.sub(r'\1***"', text) if isinstance(text, str) else text


class _WireLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Frames at DEBUG, secrets redacted; a peer's bad frame is a WARNING, not an exception."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        super().log(level, msg, *(redact(a) for a in args), **kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.pop("exc_info", None)
        self.log(logging.WARNING, msg, *args, **kwargs)


def camel(data: Any) -> Any:
    """snake_case kwargs (nested) back to wire camelCase; Decimals become floats."""
    return _floats(snake_to_camel_case(data))


def _floats(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _floats(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_floats(v) for v in data]
    if type(data).__name__ == "Decimal":
        return float(data)
    return data


class V16ChargePoint(FrameGuard, ChargePoint):
    """An `ocpp.v16.ChargePoint` whose handlers delegate to the 1.6 requests."""

    def __init__(self, station_id: str, connection: Any, station: StationApi, *,
                 response_timeout: float) -> None:
        super().__init__(station_id, connection, response_timeout=response_timeout,
                         logger=_WireLog(logging.getLogger("voltbus_ocpp.wire"), {}))
        self.station = station
        self.silent = False  # Rejected by the central system: its requests are not answered
        self._guard_init(check_frame)  # bad frames answered or dropped first (guard.py)

    async def route_message(self, raw_msg: str | bytes) -> None:
        """While the boot is Rejected, no request of the central system is answered (4.2);
        otherwise the guard answers or drops a bad frame before the package sees it."""
        text = raw_msg if isinstance(raw_msg, str) else raw_msg.decode("utf-8", "replace")
        if self.silent and _CALL_FRAME.match(text):
            log.warning("%s: request from the central system left unanswered: the "
                        "BootNotification was Rejected: %.120s", self.id, text)
            return
        await super().route_message(raw_msg)

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None,
                        charging_profile: dict[str, Any] | None = None,
                        **_: Any) -> call_result.RemoteStartTransaction:
        profile = camel(charging_profile) if charging_profile else None
        return call_result.RemoteStartTransaction(
            self.station.remote_start(id_tag, connector_id, profile))

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int,
                       **_: Any) -> call_result.RemoteStopTransaction:
        return call_result.RemoteStopTransaction(self.station.remote_stop(transaction_id))

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str,
                                **_: Any) -> call_result.ChangeConfiguration:
        return call_result.ChangeConfiguration(self.station.change_configuration(key, value))

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None,
                             **_: Any) -> call_result.GetConfiguration:
        known, unknown = self.station.get_configuration(key)
        return call_result.GetConfiguration(configuration_key=known,
                                            unknown_key=unknown or None)

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str,
                               **_: Any) -> call_result.ChangeAvailability:
        return call_result.ChangeAvailability(
            self.station.change_availability(connector_id, type == "Operative"))

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        return call_result.Reset(self.station.reset(type == "Hard"))

    @on(Action.unlock_connector)
    async def on_unlock(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        return call_result.UnlockConnector(await self.station.unlock(connector_id))

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        return call_result.ClearCache(self.station.clear_cache())

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.trigger_message)
    def on_trigger(self, requested_message: str, connector_id: int | None = None,
                   **_: Any) -> call_result.TriggerMessage:
        return call_result.TriggerMessage(self.station.trigger(requested_message, connector_id))

    @after(Action.trigger_message)
    def after_trigger(self, requested_message: str, connector_id: int | None = None,
                      **_: Any) -> None:
        self.station.after_trigger(requested_message, connector_id)

    @after(Action.reset)
    def after_reset(self, **_: Any) -> None:
        self.station.after_reset()

    @on(Action.get_local_list_version)
    def on_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(self.station.local_list_version())

    @on(Action.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str,
                           local_authorization_list: list[dict[str, Any]] | None = None,
                           **_: Any) -> call_result.SendLocalList:
        return call_result.SendLocalList(self.station.send_local_list(
            list_version, update_type, camel(local_authorization_list or [])))

    @on(Action.reserve_now)
    def on_reserve(self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int,
                   parent_id_tag: str | None = None, **_: Any) -> call_result.ReserveNow:
        return call_result.ReserveNow(self.station.reserve(
            connector_id, expiry_date, id_tag, reservation_id, parent_id_tag))

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int,
                              **_: Any) -> call_result.CancelReservation:
        return call_result.CancelReservation(self.station.cancel_reservation(reservation_id))

    @on(Action.set_charging_profile)
    def on_set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any],
                       **_: Any) -> call_result.SetChargingProfile:
        return call_result.SetChargingProfile(
            self.station.set_profile(connector_id, camel(cs_charging_profiles)))

    @on(Action.clear_charging_profile)
    def on_clear_profile(self, id: int | None = None, connector_id: int | None = None,
                         charging_profile_purpose: str | None = None,
                         stack_level: int | None = None,
                         **_: Any) -> call_result.ClearChargingProfile:
        return call_result.ClearChargingProfile(self.station.clear_profile(
            id, connector_id, charging_profile_purpose, stack_level))

    @on(Action.get_composite_schedule)
    def on_composite(self, connector_id: int, duration: int,
                     charging_rate_unit: str | None = None,
                     **_: Any) -> call_result.GetCompositeSchedule:
        schedule = self.station.composite(connector_id, duration, charging_rate_unit)
        if schedule is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        return call_result.GetCompositeSchedule(status="Accepted", connector_id=connector_id,
                                                schedule_start=schedule["startSchedule"],
                                                charging_schedule=schedule)

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, retries: int | None = None,
                           retry_interval: int | None = None, start_time: str | None = None,
                           stop_time: str | None = None,
                           **_: Any) -> call_result.GetDiagnostics:
        return call_result.GetDiagnostics(file_name=self.station.get_diagnostics(
            location, retries or 0, retry_interval or 30, start_time, stop_time))

    @after(Action.get_diagnostics)
    def after_get_diagnostics(self, **_: Any) -> None:
        self.station.after_get_diagnostics()

    @on(Action.update_firmware)
    def on_update_firmware(self, location: str, retrieve_date: str, retries: int | None = None,
                           retry_interval: int | None = None,
                           **_: Any) -> call_result.UpdateFirmware:
        self.station.update_firmware(location, retrieve_date, retries or 0, retry_interval or 30)
        return call_result.UpdateFirmware()

    @after(Action.update_firmware)
    def after_update_firmware(self, **_: Any) -> None:
        self.station.after_update_firmware()
