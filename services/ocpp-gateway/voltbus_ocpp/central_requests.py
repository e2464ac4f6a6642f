"""The station's answers to central-system requests (what the `@on` handlers call).

A mixin of `Station`, kept apart so each file has one job: this one turns OCPP requests into model
events or into changes of the local list, reservations and charging profiles.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from voltbus_ocpp.maintenance import Maintenance
from voltbus_ocpp.model.authorisation import AuthEntry, Authoriser
from voltbus_ocpp.model.connector import Reservation, Transaction
from voltbus_ocpp.model.events import (
    ChangeAvailability,
    Effect,
    Event,
    RemoteStart,
    RemoteStop,
    Reply,
    Reset,
    SendStatus,
    Tick,
    Unlock,
)
from voltbus_ocpp.model.results import Outcome, ReadingContext
from voltbus_ocpp.model.smart_charging import Installed, SmartCharging
from voltbus_ocpp.protocol.v16 import convert

if TYPE_CHECKING:
    from voltbus_ocpp.link import Link
    from voltbus_ocpp.messenger import Messenger
    from voltbus_ocpp.model.station import StationModel
    from voltbus_ocpp.offline_queue import OfflineQueue
    from voltbus_ocpp.protocol.v16.config_store import ConfigStore
    from voltbus_ocpp.settings import GatewaySettings
    from voltbus_ocpp.store import AuthTable, Store

log = logging.getLogger(__name__)

TRIGGERABLE = {"BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification",
               "Heartbeat", "MeterValues", "StatusNotification"}


class _TooLong(Exception):
    """The local list would exceed LocalAuthListMaxLength (rolled back)."""


def _reply(effects: list[Effect]) -> str:
    return convert.outcome(next(e.status for e in reversed(effects) if isinstance(e, Reply)))


def tx_key(tx: Transaction) -> str:
    """The id charging profiles know a transaction by: its central-system id, else minus its
    local id (a TxProfile may arrive before the start was answered)."""
    return tx.transaction_id or str(-tx.local_id)


class CentralRequests:
    """StationApi for `V16ChargePoint`; see protocol/v16/handlers.py."""

    id: str
    settings: GatewaySettings
    config: ConfigStore
    store: Store
    model: StationModel
    authoriser: Authoriser
    local_list: AuthTable
    smart: SmartCharging
    messenger: Messenger
    link: Link
    clock: Callable[[], datetime]
    _restart_after_reply: bool
    _hard_reset_after_reply: bool
    hard_reset: asyncio.Event
    queue: OfflineQueue
    _tx_profiles: dict[int, dict[str, Any]]
    dispatch: Callable[[Event], list[Effect]]
    spawn: Callable[[Any], None]
    apply_profiles: Callable[[], None]
    maintenance: Maintenance
    _pending_job: Any = None

    # --- Core ----------------------------------------------------------------------------------

    def remote_start(self, id_tag: str, connector: int | None,
                     profile: dict[str, Any] | None) -> str:
        """RemoteStartTransaction; a TxProfile given with it applies to the new transaction."""
        if profile is not None and profile.get("chargingProfilePurpose") != "TxProfile":
            return "Rejected"
        status = _reply(self.dispatch(RemoteStart(id_tag, connector)))
        if status == "Accepted" and profile is not None:
            target = connector or next((c.connector_id for c in self.model.connectors.values()
                                        if (c.facts.waiting and c.facts.waiting.id_tag == id_tag)
                                        or (c.facts.tx and c.facts.tx.id_tag == id_tag)), None)
            if target is not None:
                c = self.model.connectors[target]
                if c.facts.tx is not None:
                    self._install_tx_profile(target, profile)
                else:
                    self._tx_profiles[target] = profile
        return status

    def _install_tx_profile(self, connector: int, profile: dict[str, Any]) -> None:
        tx = self.model.connectors[connector].facts.tx
        self.smart.install(connector, profile, tx_key(tx) if tx else None)
        self.save_profiles()
        self.apply_profiles()

    def remote_stop(self, transaction_id: int) -> str:
        """RemoteStopTransaction."""
        return _reply(self.dispatch(RemoteStop(str(transaction_id))))

    def change_configuration(self, key: str, value: str) -> str:
        """ChangeConfiguration; the value of AuthorizationKey is never logged."""
        status = self.config.change(key, value)
        shown = "***" if key == "AuthorizationKey" else value
        log.info("%s: ChangeConfiguration %s=%s -> %s", self.id, key, shown, status)
        return status

    def get_configuration(self, keys: list[str] | None
                          ) -> tuple[list[dict[str, Any]], list[str]]:
        """GetConfiguration."""
        return self.config.listing(keys)

    def change_availability(self, connector: int, operative: bool) -> str:
        """ChangeAvailability: Accepted, Scheduled (transaction running) or Rejected."""
        status = _reply(self.dispatch(ChangeAvailability(connector, operative)))
        if connector == 0 and status == "Accepted":
            self.messenger.send("StatusNotification", {
                "connectorId": 0, "status": "Available" if operative else "Unavailable",
                "errorCode": "NoError", "timestamp": convert.iso(self.clock())})
        return status

    def reset(self, hard: bool) -> str:
        """Reset: transactions are stopped now; the session restarts after the reply."""
        return _reply(self.dispatch(Reset(hard)))

    def after_reset(self) -> None:
        """Once the reply is out: deliver the StopTransactions, then restart (see _restart)."""
        if self._restart_after_reply:
            self._restart_after_reply = False
            self.spawn(self._restart(self._hard_reset_after_reply))

    async def _restart(self, hard: bool) -> None:
        """A reset attempt succeeds when every queued transaction message (the StopTransactions
        of the stopped transactions first) is answered within TransactionMessageRetryInterval;
        an unsuccessful attempt is retried ResetRetries times, then the reset goes ahead anyway
        (the messages stay in the durable outbox and are sent after the restart).

        Soft: the OCPP session restarts (reconnect, BootNotification). Hard: the station's
        runtime ends and the process exits with HARD_RESET_EXIT_CODE for its supervisor to
        restart it (see __main__)."""
        window = max(0.05, self.config.get_seconds("TransactionMessageRetryInterval"))
        retries = self.config.get_int("ResetRetries")
        for attempt in range(retries + 1):
            if await self._outbox_drained(window):
                break
            if attempt < retries:
                log.warning("%s: Reset attempt %d of %d unsuccessful: %d transaction message(s) "
                            "unanswered; retrying", self.id, attempt + 1, retries + 1,
                            len(self.queue))
        else:
            log.warning("%s: Reset after %d attempt(s): %d transaction message(s) stay queued "
                        "for after the restart", self.id, retries + 1, len(self.queue))
        if hard:
            log.warning("%s: hard Reset: restarting the gateway", self.id)
            self.hard_reset.set()
            return
        log.warning("%s: soft Reset: restarting the OCPP session", self.id)
        await self.link.drop()

    async def _outbox_drained(self, seconds: float) -> bool:
        """True once the durable outbox is empty, False if it is not within seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while len(self.queue):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def unlock(self, connector: int) -> str:
        """UnlockConnector: Unlocked, UnlockFailed or NotSupported."""
        return _reply(self.dispatch(Unlock(connector)))

    def clear_cache(self) -> str:
        """ClearCache."""
        self.authoriser.cache.clear()
        return "Accepted"

    # --- Remote Trigger ------------------------------------------------------------------------

    def trigger(self, message: str, connector: int | None) -> str:
        """TriggerMessage: Accepted (sent after the reply), Rejected or NotImplemented."""
        if message not in TRIGGERABLE:
            return "NotImplemented"
        if connector is not None and connector not in self.model.connectors and (
                connector != 0 or message == "MeterValues"):
            return "Rejected"
        return "Accepted"

    def after_trigger(self, message: str, connector: int | None) -> None:
        """Send the triggered message (after the TriggerMessage reply)."""
        if self.trigger(message, connector) != "Accepted":
            return
        targets = [connector] if connector else list(self.model.connectors)
        if message == "Heartbeat":
            self.messenger.send("Heartbeat", {})
        elif message == "BootNotification":
            s = self.settings
            self.messenger.send("BootNotification", {
                "chargePointVendor": s.charge_point_vendor,
                "chargePointModel": s.charge_point_model, "firmwareVersion": s.firmware_version})
        elif message == "DiagnosticsStatusNotification":
            self.messenger.send(message, {"status": self.maintenance.diagnostics_status})
        elif message == "FirmwareStatusNotification":
            self.messenger.send(message, {"status": self.maintenance.firmware_status})
        elif message == "StatusNotification":
            if connector == 0:
                self.messenger.send(message, {"connectorId": 0, "status": "Available",
                                              "errorCode": "NoError"})
            for n in targets if connector != 0 else []:
                c = self.model.connectors[n]
                assert c.status is not None
                self.messenger.send(message, convert.status_notification(SendStatus(
                    n, c.status, c.facts.fault, c.facts.fault_info, self.clock())))
        elif message == "MeterValues":
            for n in targets:
                meter = self.model.connectors[n].facts.meter
                if meter is None:
                    continue
                values = convert.sampled_values(meter, self.config.sampled_measurands,
                                                ReadingContext.TRIGGER)
                payload: dict[str, Any] = {"connectorId": n, "meterValue": [
                    {"timestamp": convert.iso(self.clock()), "sampledValue": values}]}
                tx = self.model.connectors[n].facts.tx
                if tx is not None and tx.transaction_id is not None:
                    payload["transactionId"] = convert.transaction_id(tx.transaction_id)
                self.messenger.send("MeterValues", payload)

    # --- Local Auth List -----------------------------------------------------------------------

    def local_list_version(self) -> int:
        """GetLocalListVersion (-1 when the local list is disabled)."""
        if not self.config.get_bool("LocalAuthListEnabled"):
            return -1
        return int(self.store.meta("local_list_version", "0") or 0)

    def send_local_list(self, version: int, update_type: str,
                        entries: list[dict[str, Any]]) -> str:
        """SendLocalList: Accepted, Failed, NotSupported or VersionMismatch (5.15)."""
        if not self.config.get_bool("LocalAuthListEnabled"):
            return "NotSupported"
        if len(entries) > self.config.get_int("SendLocalListMaxLength"):
            return "Failed"
        if update_type == "Differential" and version <= self.local_list_version():
            return "VersionMismatch"
        try:
            with self.store.transaction():
                if update_type == "Full":
                    self.local_list.clear()
                for entry in entries:
                    info = entry.get("idTagInfo")
                    if info is None:
                        self.local_list.pop(entry["idTag"], None)
                        continue
                    expiry = info.get("expiryDate")
                    self.local_list[entry["idTag"]] = AuthEntry(
                        convert.auth_status(info["status"]),
                        convert.parse_time(expiry) if expiry else None,
                        info.get("parentIdTag"))
                if len(self.local_list) > self.config.get_int("LocalAuthListMaxLength"):
                    raise _TooLong
                self.store.set_meta("local_list_version", str(version))
        except _TooLong:
            return "Failed"
        return "Accepted"

    # --- Reservation ---------------------------------------------------------------------------

    def reserve(self, connector: int, expiry: str, id_tag: str, reservation_id: int,
                parent_id_tag: str | None) -> str:
        """ReserveNow."""
        if connector == 0 and not self.config.get_bool("ReserveConnectorZeroSupported"):
            return "Rejected"
        status = self.model.reserve(connector, Reservation(
            reservation_id, id_tag, parent_id_tag, convert.parse_time(expiry)))
        self.dispatch(Tick())
        return convert.outcome(status)

    def cancel_reservation(self, reservation_id: int) -> str:
        """CancelReservation."""
        found = self.model.cancel_reservation(reservation_id)
        self.dispatch(Tick())
        return "Accepted" if found else "Rejected"

    # --- Smart Charging ------------------------------------------------------------------------

    def load_profiles(self) -> list[Installed]:
        """Charging profiles from disk."""
        rows = self.store.db.execute("SELECT body FROM profiles ORDER BY id").fetchall()
        return [Installed(**json.loads(r[0])) for r in rows]

    def save_profiles(self) -> None:
        """Charging profiles to disk (TxProfiles included; they end with their transaction)."""
        db = self.store.db
        with self.store.transaction():
            db.execute("DELETE FROM profiles")
            for p in self.smart.profiles:
                db.execute("INSERT INTO profiles VALUES (?, ?)",
                           (p.id, json.dumps({"connector": p.connector, "profile": p.profile})))

    def set_profile(self, connector: int, profile: dict[str, Any]) -> str:
        """SetChargingProfile."""
        if connector != 0 and connector not in self.model.connectors:
            return "Rejected"
        if profile["stackLevel"] > self.config.get_int("ChargeProfileMaxStackLevel") or len(
                profile["chargingSchedule"]["chargingSchedulePeriod"]) > self.config.get_int(
                "ChargingScheduleMaxPeriods"):
            return "Rejected"
        if len(self.smart.profiles) >= self.config.get_int("MaxChargingProfilesInstalled") and \
                profile["chargingProfileId"] not in {p.id for p in self.smart.profiles}:
            return "Rejected"
        tx = self.model.connectors[connector].facts.tx if connector else None
        status = self.smart.install(connector, profile, None if tx is None else tx_key(tx))
        if status is Outcome.ACCEPTED:
            self.save_profiles()
            self.apply_profiles()
        return convert.outcome(status)

    def clear_profile(self, profile_id: int | None, connector: int | None,
                      purpose: str | None, stack_level: int | None) -> str:
        """ClearChargingProfile: Accepted or Unknown."""
        found = self.smart.clear(profile_id=profile_id, connector=connector, purpose=purpose,
                                 stack_level=stack_level)
        if found:
            self.save_profiles()
            self.apply_profiles()
        return "Accepted" if found else "Unknown"

    def composite(self, connector: int, duration_s: int, unit: str | None
                  ) -> dict[str, Any] | None:
        """GetCompositeSchedule from now for duration_s; None (Rejected) if nothing limits it."""
        if connector != 0 and connector not in self.model.connectors:
            return None
        now = self.clock().replace(microsecond=0)
        tx = self.model.connectors[connector].facts.tx if connector else None
        periods = self.smart.composite(
            connector or 1, now, duration_s, in_tx=tx is not None,
            tx_id=tx_key(tx) if tx else None,
            tx_start=tx.started_at if tx else None)
        if not periods:
            return None
        if unit == "W":
            factor = 230.0 * self.settings.phases
            periods = [{**p, "limit": round(p["limit"] * factor, 1)} for p in periods]
        return {"duration": duration_s, "startSchedule": convert.iso(now),
                "chargingRateUnit": unit or "A", "chargingSchedulePeriod": periods}


    # --- Firmware Management -------------------------------------------------------------------

    def get_diagnostics(self, location: str, retries: int, retry_interval_s: int,
                        start: str | None, stop: str | None) -> str:
        """GetDiagnostics: the archive's file name; the upload starts after the reply."""
        name = self.maintenance.diagnostics_name()
        self._pending_job = self.maintenance.diagnostics(
            location, name, retries, retry_interval_s,
            convert.parse_time(start) if start else None,
            convert.parse_time(stop) if stop else None)
        return name

    def update_firmware(self, location: str, retrieve_date: str, retries: int,
                        retry_interval_s: int) -> None:
        """UpdateFirmware: download at the retrieve date (after the reply)."""
        self._pending_job = self.maintenance.firmware(
            location, convert.parse_time(retrieve_date), retries, retry_interval_s)

    def after_get_diagnostics(self) -> None:
        """Start the upload once the reply is out."""
        self._start_job()

    def after_update_firmware(self) -> None:
        """Start the firmware job once the reply is out."""
        self._start_job()

    def _start_job(self) -> None:
        job, self._pending_job = self._pending_job, None
        if job is not None:
            self.spawn(job)
