"""The 1.6 central system's requests, answered: what the `@on` handlers in handlers.py call.

Each turns a 1.6 request into a model event or a station call (`StationCore`) and the answer back
into its 1.6 status; everything version-neutral (the model, profiles on disk, the restart after a
Reset) stays in the station.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from ocpp.exceptions import OccurenceConstraintViolationError, PropertyConstraintViolationError

from voltbus_ocpp.adapter import StationCore
from voltbus_ocpp.model.authorisation import AuthEntry
from voltbus_ocpp.model.connector import Reservation
from voltbus_ocpp.model.events import (
    ChangeAvailability,
    Effect,
    RemoteStart,
    RemoteStop,
    Reply,
    Reset,
    Tick,
)
from voltbus_ocpp.model.smart_charging import invalid_schedule
from voltbus_ocpp.model.tokens import IdToken
from voltbus_ocpp.protocol.v16 import convert, triggers
from voltbus_ocpp.protocol.v16.config_store import ConfigStore
from voltbus_ocpp.store import KeyRotation

log = logging.getLogger(__name__)


_HEX_KEY = re.compile(r"(?:[0-9a-fA-F]{2}){16,20}")


def authorization_key_password(value: str) -> str | None:
    """The Basic-auth password an AuthorizationKey value stands for, None if it is not one.

    The 1.6 security whitepaper (A00.FR.205; SteVe and certification test TC_085_CS do the same)
    sends the key hexadecimal: at least 16 bytes, at most 20 (32 to 40 hex digits); the decoded
    bytes are the password. They must be UTF-8 here, as the password is kept and sent as text.
    """
    if not _HEX_KEY.fullmatch(value):
        return None
    try:
        return bytes.fromhex(value).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _time(value: str, field: str) -> datetime:
    """A request's dateTime field; a value that is not one is a PropertyConstraintViolation
    CALLERROR (the schema's "format": "date-time"), not an InternalError."""
    try:
        return convert.parse_time(value)
    except (ValueError, TypeError):
        raise PropertyConstraintViolationError(
            description=f"{field} is not a dateTime: {value[:40]!r}") from None


class _TooLong(Exception):
    """The local list would exceed LocalAuthListMaxLength (rolled back)."""


def _reply(effects: list[Effect]) -> str:
    return convert.outcome(next(e.status for e in reversed(effects) if isinstance(e, Reply)))


class V16Requests:
    """`handlers.StationApi` on top of the station core and the 1.6 configuration keys."""

    def __init__(self, core: StationCore, config: ConfigStore) -> None:
        self.core = core
        self.config = config
        self._pending_job: Coroutine[Any, Any, None] | None = None

    # --- Core ----------------------------------------------------------------------------------

    def remote_start(self, id_tag: str, connector: int | None,
                     profile: dict[str, Any] | None) -> str:
        """RemoteStartTransaction; a TxProfile given with it applies to the new transaction."""
        if profile is not None and (profile.get("chargingProfilePurpose") != "TxProfile"
                                    or invalid_schedule(profile) is not None):
            return "Rejected"
        model = self.core.model
        token = IdToken(id_tag)  # 1.6 has no token types: every idTag is a card's (ISO14443)
        status = _reply(self.core.dispatch(RemoteStart(token, connector)))
        if status == "Accepted" and profile is not None:
            target = connector or next((c.connector_id for c in model.connectors.values()
                                        if (c.facts.waiting and c.facts.waiting.id_tag == token)
                                        or (c.facts.tx and c.facts.tx.id_tag == token)), None)
            if target is not None:
                if model.connectors[target].facts.tx is not None:
                    self.core.install_profile(target, profile)
                else:
                    self.core.hold_tx_profile(target, profile)
        return status

    def remote_stop(self, transaction_id: int) -> str:
        """RemoteStopTransaction."""
        return _reply(self.core.dispatch(RemoteStop(str(transaction_id))))

    def change_configuration(self, key: str, value: str) -> str:
        """ChangeConfiguration; the value of AuthorizationKey is never logged."""
        if key == "AuthorizationKey":
            password = authorization_key_password(value)
            if password is None:
                log.warning("%s: ChangeConfiguration AuthorizationKey rejected: not 16 to 20 "
                            "bytes as hexadecimal digits (or not a UTF-8 password)", self.core.id)
                return "Rejected"
            value = password
            in_use = self.config.authorization_key
            status = self.config.change(key, value)
            if status == "Accepted" and value != in_use:
                KeyRotation(self.core.store).rotated(in_use)
            log.info("%s: ChangeConfiguration AuthorizationKey=*** -> %s (used from the next "
                     "connection; the previous key is kept until one is accepted)",
                     self.core.id, status)
            return status
        status = self.config.change(key, value)
        shown = "***" if key == "AuthorizationKey" else value
        log.info("%s: ChangeConfiguration %s=%s -> %s", self.core.id, key, shown, status)
        return status

    def get_configuration(self, keys: list[str] | None
                          ) -> tuple[list[dict[str, Any]], list[str]]:
        """GetConfiguration."""
        return self.config.listing(keys)

    def change_availability(self, connector: int, operative: bool) -> str:
        """ChangeAvailability: Accepted, Scheduled (transaction running) or Rejected."""
        # connector 0's StatusNotification: the station sends it when the station's
        # availability changes (at once, or when the last transaction ends)
        return _reply(self.core.dispatch(ChangeAvailability(connector, operative)))

    def reset(self, hard: bool) -> str:
        """Reset: transactions are stopped now; the session restarts after the reply."""
        return _reply(self.core.dispatch(Reset(hard)))

    def after_reset(self) -> None:
        """Once the reply is out: deliver the StopTransactions, then restart."""
        self.core.after_reset()

    async def unlock(self, connector: int) -> str:
        """UnlockConnector: Unlocked, UnlockFailed or NotSupported, as the cable lock confirms
        (cable_lock.py)."""
        return convert.outcome(await self.core.unlock(connector))

    def clear_cache(self) -> str:
        """ClearCache."""
        self.core.authoriser.cache.clear()
        return "Accepted"

    # --- Remote Trigger ------------------------------------------------------------------------

    def trigger(self, message: str, connector: int | None) -> str:
        """TriggerMessage: Accepted (sent after the reply), Rejected or NotImplemented."""
        return triggers.answer(self.core, message, connector)

    def after_trigger(self, message: str, connector: int | None) -> None:
        """Send the triggered message (after the TriggerMessage reply)."""
        triggers.send(self.core, message, connector)

    # --- Local Auth List -----------------------------------------------------------------------

    def local_list_version(self) -> int:
        """GetLocalListVersion (-1 when the local list is disabled)."""
        if not self.config.get_bool("LocalAuthListEnabled"):
            return -1
        if not len(self.core.local_list):  # 5.10: 0 says the list is empty, whatever version
            return 0
        return int(self.core.store.meta("local_list_version", "0") or 0)

    def send_local_list(self, version: int, update_type: str,
                        entries: list[dict[str, Any]]) -> str:
        """SendLocalList: Accepted, Failed, NotSupported or VersionMismatch (5.15)."""
        if not self.config.get_bool("LocalAuthListEnabled"):
            return "NotSupported"
        if len(entries) > self.config.get_int("SendLocalListMaxLength"):
            return "Failed"
        if update_type == "Full" and any("idTagInfo" not in e for e in entries):
            # 5.15/7.28: idTagInfo is "required when UpdateType is Full" (only a Differential
            # update deletes with it left out): the request breaks an occurrence constraint the
            # schema cannot express; nothing is changed
            raise OccurenceConstraintViolationError(
                description="SendLocalList Full: every entry needs idTagInfo")
        if update_type == "Differential" and version <= self.local_list_version():
            return "VersionMismatch"
        store, local_list = self.core.store, self.core.local_list
        try:
            with store.transaction():
                if update_type == "Full":
                    local_list.clear()
                for entry in entries:
                    info = entry.get("idTagInfo")
                    if info is None:
                        local_list.pop(IdToken(entry["idTag"]), None)
                        continue
                    expiry = info.get("expiryDate")
                    local_list[IdToken(entry["idTag"])] = AuthEntry(
                        convert.auth_status(info["status"]),
                        convert.parse_time(expiry) if expiry else None, info.get("parentIdTag"))
                if len(local_list) > self.config.get_int("LocalAuthListMaxLength"):
                    raise _TooLong
                store.set_meta("local_list_version", str(version))
        except _TooLong:
            return "Failed"
        return "Accepted"

    # --- Reservation ---------------------------------------------------------------------------

    def reserve(self, connector: int, expiry: str, id_tag: str, reservation_id: int,
                parent_id_tag: str | None) -> str:
        """ReserveNow."""
        if connector == 0 and not self.config.get_bool("ReserveConnectorZeroSupported"):
            return "Rejected"
        expiry_at = _time(expiry, "expiryDate")
        status = self.core.model.reserve(connector, Reservation(
            reservation_id, IdToken(id_tag), parent_id_tag, expiry_at))
        self.core.dispatch(Tick())
        return convert.outcome(status)

    def cancel_reservation(self, reservation_id: int) -> str:
        """CancelReservation."""
        found = self.core.model.cancel_reservation(reservation_id)
        self.core.dispatch(Tick())
        return "Accepted" if found else "Rejected"

    # --- Smart Charging ------------------------------------------------------------------------

    def set_profile(self, connector: int, profile: dict[str, Any]) -> str:
        """SetChargingProfile, within the limits of the SmartCharging keys (9.4)."""
        installed = self.core.smart.profiles
        if connector != 0 and connector not in self.core.model.connectors:
            return "Rejected"
        if profile["stackLevel"] > self.config.get_int("ChargeProfileMaxStackLevel") or len(
                profile["chargingSchedule"]["chargingSchedulePeriod"]) > self.config.get_int(
                "ChargingScheduleMaxPeriods"):
            return "Rejected"
        if len(installed) >= self.config.get_int("MaxChargingProfilesInstalled") and \
                profile["chargingProfileId"] not in {p.id for p in installed}:
            return "Rejected"
        return convert.outcome(self.core.install_profile(connector, profile))

    def clear_profile(self, profile_id: int | None, connector: int | None,
                      purpose: str | None, stack_level: int | None) -> str:
        """ClearChargingProfile: Accepted or Unknown."""
        found = self.core.clear_profiles(profile_id=profile_id, connector=connector,
                                         purpose=purpose, stack_level=stack_level)
        return "Accepted" if found else "Unknown"

    def composite(self, connector: int, duration_s: int, unit: str | None
                  ) -> dict[str, Any] | None:
        """GetCompositeSchedule from now for duration_s; None (Rejected) if nothing limits it."""
        if connector != 0 and connector not in self.core.model.connectors:
            return None
        now = self.core.clock().replace(microsecond=0)
        periods = self.core.composite(connector, now, duration_s)
        if not periods:
            return None
        if unit == "W":
            factor = 230.0 * self.core.settings.phases
            periods = [{**p, "limit": round(p["limit"] * factor, 1)} for p in periods]
        return {"duration": duration_s, "startSchedule": convert.iso(now),
                "chargingRateUnit": unit or "A", "chargingSchedulePeriod": periods}

    # --- Firmware Management -------------------------------------------------------------------

    def get_diagnostics(self, location: str, retries: int, retry_interval_s: int,
                        start: str | None, stop: str | None) -> str:
        """GetDiagnostics: the archive's file name; the upload starts after the reply."""
        maintenance = self.core.maintenance
        name = maintenance.diagnostics_name()
        start_at = _time(start, "startTime") if start else None
        stop_at = _time(stop, "stopTime") if stop else None
        self._pending_job = maintenance.diagnostics(
            location, name, retries, retry_interval_s, start_at, stop_at)
        return name

    def update_firmware(self, location: str, retrieve_date: str, retries: int,
                        retry_interval_s: int) -> None:
        """UpdateFirmware: download at the retrieve date (after the reply)."""
        retrieve_at = _time(retrieve_date, "retrieveDate")
        self._pending_job = self.core.maintenance.firmware(
            location, retrieve_at, retries, retry_interval_s)

    def after_get_diagnostics(self) -> None:
        """Start the upload once the reply is out."""
        self._start_job()

    def after_update_firmware(self) -> None:
        """Start the firmware job once the reply is out."""
        self._start_job()

    def _start_job(self) -> None:
        job, self._pending_job = self._pending_job, None
        if job is not None:
            self.core.spawn(job)
