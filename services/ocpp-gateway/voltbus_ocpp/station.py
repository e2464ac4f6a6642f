"""One station: wires its model, disk state, bus bridge, link and sender together.

Every change goes through `dispatch(event)`: the model decides, `execute` carries out the effects
(bus messages, durable or live OCPP messages, disk). Nothing here awaits inside dispatch, so bus
handlers and OCPP handlers can both call it without racing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ocpp.v16 import ChargePoint
from websockets.asyncio.client import ClientConnection

from voltbus_common import channels as ch
from voltbus_common.bus import Bus
from voltbus_common.enums import RegistrationStatus, StopReason
from voltbus_common.models import OcppConnection
from voltbus_ocpp.bus_bridge import BusBridge
from voltbus_ocpp.central_requests import CentralRequests, tx_key
from voltbus_ocpp.link import Link
from voltbus_ocpp.maintenance import LogRing, Maintenance, snapshot_files
from voltbus_ocpp.messenger import Live, Messenger, send_call
from voltbus_ocpp.model.authorisation import Authoriser
from voltbus_ocpp.model.events import (
    AuthorizeAnswered,
    Effect,
    Event,
    LinkChanged,
    ProfileLimit,
    Recovered,
    RelayMismatch,
    RestartRequested,
    SendAuthorize,
    SendMeterValues,
    SendStartTransaction,
    SendStatus,
    SendStopTransaction,
    StartAnswered,
    Tick,
)
from voltbus_ocpp.model.results import ReadingContext
from voltbus_ocpp.model.smart_charging import SmartCharging
from voltbus_ocpp.model.station import StationModel
from voltbus_ocpp.offline_queue import OfflineQueue
from voltbus_ocpp.offpeak_timer import OffPeakTimer
from voltbus_ocpp.protocol.v16 import convert
from voltbus_ocpp.protocol.v16.config_store import ConfigStore
from voltbus_ocpp.protocol.v16.handlers import V16ChargePoint
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import AuthTable, Store

log = logging.getLogger(__name__)

HARD_RESET_EXIT_CODE = 75  # sysexits EX_TEMPFAIL: non-zero, so systemd's Restart=on-failure,
# compose's restart: unless-stopped and `voltbus up`'s supervisor all start the process again


class _HardReset(Exception):
    """Ends the station's task group after a hard Reset."""


def utcnow() -> datetime:
    """Now, aware UTC."""
    return datetime.now(UTC)


class Station(CentralRequests):
    """One charge point towards one central system and one bus."""

    def __init__(self, settings: GatewaySettings, station_id: str, bus: Bus, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.id = station_id
        self.bus = bus
        self.clock = clock
        self.store = Store(settings.station_dir(station_id) / "state.sqlite")
        overrides = {"NumberOfConnectors": str(settings.connectors), **settings.ocpp_config}
        self.config = ConfigStore(self.store, overrides=overrides, time_scale=settings.time_scale)
        for key, value in settings.ocpp_config.items():  # the environment wins over stored values
            if key in self.config.values:
                self.config.values[key] = value
        self.queue = OfflineQueue(self.store)
        self.local_list = AuthTable(self.store, "list")
        self.authoriser = Authoriser(self.config, local_list=self.local_list,
                                     cache=AuthTable(self.store, "cache"))
        self.model = StationModel(
            settings.connectors, self.config, self.authoriser, max_current_a=settings.max_current_a,
            clock=clock, first_local_id=int(self.store.meta("next_local_id", "1") or 1),
            unlock_supported=settings.unlock_supported, relay_grace_s=settings.relay_grace_s)
        self.smart = SmartCharging(self.load_profiles(), phases=settings.phases)
        self.offpeak = OffPeakTimer(settings.offpeak_schedule(),
                                    enabled=settings.offpeak_enabled, clock=clock)
        self.offpeak.prime(self.model)
        self.messenger = Messenger(station_id, self.queue, self.config,
                                   on_durable_answer=self._durable_answered,
                                   on_durable_dropped=self._durable_dropped)
        self.link = Link(settings, station_id, session=self._session, on_down=self._link_down,
                         auth_key=self._auth_key,
                         ping_interval=lambda: self.config.get_int("WebSocketPingInterval"))
        self.ring = LogRing()
        logging.getLogger("voltbus_ocpp").addHandler(self.ring)
        self.maintenance = Maintenance(
            station_id, settings.station_dir(station_id) / "firmware",
            report=lambda action, payload: self.messenger.send(action, payload),
            snapshot=self._snapshot, ring=self.ring,
            install_command=settings.firmware_install_command, time_scale=settings.time_scale)
        self.bridge = BusBridge(bus, settings.connectors, self.dispatch)
        self.bridge.attach()
        self.config.on_change(self._config_changed)
        self.registration: RegistrationStatus | None = None
        self.cp: ChargePoint | None = None
        self._restart_after_reply = False
        self._hard_reset_after_reply = False
        self.hard_reset = asyncio.Event()  # set when a hard Reset is due: run() returns
        self.reset_done = False
        self._tx_profiles: dict[int, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped_cleanly = True
        self._held_status: dict[int, SendStatus] = {}
        self._reported: dict[int, tuple[object, object]] = {}

    def _config_changed(self, name: str) -> None:
        """LED intensity and blink repeat apply to the LEDs at once."""
        if name in ("light_intensity_pct", "blink_repeat"):
            self.execute([c.led() for c in self.model.connectors.values()
                          if c.status is not None])

    def _snapshot(self) -> dict[str, str]:
        config = {k: v for k, v in self.config.values.items() if k != "AuthorizationKey"}
        queued = [{"action": q.action, "local_id": q.local_id, "attempts": q.attempts}
                  for q in self.queue.all()]
        statuses = {n: c.status.value if c.status else "" for n, c in
                    self.model.connectors.items()}
        return snapshot_files(config, queued, statuses)

    def _auth_key(self) -> str | None:
        return self.config.get_str("AuthorizationKey") or self.settings.auth_key()

    # --- the model loop ------------------------------------------------------------------------

    def dispatch(self, event: Event) -> list[Effect]:
        """Apply an event to the model and carry out its effects; the effects."""
        effects = self.model.handle(event)
        self.execute(effects)
        return effects

    def execute(self, effects: list[Effect]) -> None:
        """Carry out effects in order."""
        for effect in effects:
            if isinstance(effect, SendStatus):
                self.bridge.publish(effect)
                self._report_status(effect)
            elif self.bridge.publish(effect):
                continue
            elif isinstance(effect, SendAuthorize):
                self.messenger.send("Authorize", {"idTag": effect.id_tag},
                                    functools.partial(self._authorize_answered, effect.id_tag))
            elif isinstance(effect, SendMeterValues) and effect.local_id is None:
                # outside a transaction: live, dropped while offline (only transaction
                # messages must be kept, OCPP 1.6 4.7)
                self.messenger.send("MeterValues", convert.meter_values(
                    effect, self.config.aligned_measurands))
            elif isinstance(effect, SendStartTransaction | SendMeterValues | SendStopTransaction):
                self._durable(effect)
            elif isinstance(effect, RelayMismatch):
                log.warning("%s: connector %d: relay reported %s, wanted %s; commanding it "
                            "again (attempt %d%s)", self.id, effect.connector,
                            "open" if effect.wanted_closed else "closed",
                            "closed" if effect.wanted_closed else "open", effect.attempt,
                            ", the last" if effect.last else "")
            elif isinstance(effect, RestartRequested):
                self._restart_after_reply = True
                self._hard_reset_after_reply = effect.hard

    def _report_status(self, effect: SendStatus) -> None:
        """StatusNotification, held back MinimumStatusDuration so a blip is not reported."""
        hold = self.config.get_seconds("MinimumStatusDuration")
        if hold <= 0:
            self._reported[effect.connector] = (effect.status, effect.error_code)
            self.messenger.send("StatusNotification", convert.status_notification(effect))
            return
        self._held_status[effect.connector] = effect
        asyncio.get_running_loop().call_later(hold, self._release_status, effect)

    def _release_status(self, effect: SendStatus) -> None:
        if self._held_status.get(effect.connector) is effect:
            del self._held_status[effect.connector]
            if self._reported.get(effect.connector) != (effect.status, effect.error_code):
                self._reported[effect.connector] = (effect.status, effect.error_code)
                self.messenger.send("StatusNotification", convert.status_notification(effect))

    def _durable(self, effect: SendStartTransaction | SendMeterValues | SendStopTransaction
                 ) -> None:
        with self.store.transaction():  # one commit per message: durable before anything acts
            self._store_durable(effect)
        self.messenger.durable_added()
        if isinstance(effect, SendStartTransaction):
            profile = self._tx_profiles.pop(effect.connector, None)
            if profile is not None:  # RemoteStartTransaction brought a TxProfile
                self._install_tx_profile(effect.connector, profile)

    def _store_durable(self, effect: SendStartTransaction | SendMeterValues | SendStopTransaction
                       ) -> None:
        db = self.store.db
        if isinstance(effect, SendStartTransaction):
            payload, action = convert.start_transaction(effect), "StartTransaction"
            db.execute("INSERT OR REPLACE INTO running VALUES (?, ?, ?, ?, ?, ?, NULL)",
                       (effect.connector, effect.local_id, effect.id_tag, effect.ts.isoformat(),
                        effect.meter_start_wh, effect.meter_start_wh))
            self.store.set_meta("next_local_id", str(effect.local_id + 1))
        elif isinstance(effect, SendMeterValues):
            action = "MeterValues"
            payload = convert.meter_values(effect, self.config.sampled_measurands
                                           if effect.context is ReadingContext.PERIODIC
                                           else self.config.aligned_measurands)
            db.execute("UPDATE running SET energy_wh=? WHERE local_id=?",
                       (effect.reading.energy_wh, effect.local_id))
        else:
            action = "StopTransaction"
            payload = convert.stop_transaction(effect, self.config.stop_sampled_measurands,
                                               self.config.stop_aligned_measurands)
            db.execute("DELETE FROM running WHERE local_id=?", (effect.local_id,))
            self.smart.end_transaction(self.queue.transaction_id(effect.local_id))
        self.queue.add(action, payload, effect.local_id)

    def _authorize_answered(self, tag: str, answer: dict[str, Any] | None) -> None:
        if answer is None:
            self.dispatch(AuthorizeAnswered(tag, None))
            return
        info = answer.get("idTagInfo", {})
        expiry = info.get("expiryDate")
        self.dispatch(AuthorizeAnswered(tag, convert.auth_status(info.get("status", "Invalid")),
                                        convert.parse_time(expiry) if expiry else None,
                                        info.get("parentIdTag")))

    def _durable_answered(self, action: str, local_id: int | None,
                          answer: dict[str, Any]) -> None:
        if action != "StartTransaction" or local_id is None:
            return
        transaction_id = str(int(answer["transactionId"]))
        self.queue.resolve(local_id, transaction_id)
        self.store.db.execute("UPDATE running SET transaction_id=? WHERE local_id=?",
                              (transaction_id, local_id))
        status = convert.auth_status(answer.get("idTagInfo", {}).get("status", "Accepted"))
        self.dispatch(StartAnswered(local_id, transaction_id, status))

    def _durable_dropped(self, action: str, local_id: int | None) -> None:
        log.error("%s: gave up on %s (TransactionMessageAttempts reached)", self.id, action)
        if action == "StartTransaction" and local_id is not None:
            self.queue.forget_transaction(local_id)

    # --- the OCPP session ----------------------------------------------------------------------

    async def _session(self, ws: ClientConnection) -> None:
        cp = V16ChargePoint(self.id, ws, self, response_timeout=self.settings.response_timeout_s)
        self.cp = cp
        self._publish_connection(True)
        reader = asyncio.create_task(cp.start())
        worker = asyncio.create_task(self._registered(cp))
        try:
            done, _ = await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (reader, worker):
                task.cancel()
            await asyncio.gather(reader, worker, return_exceptions=True)
            self.cp = None

    async def _registered(self, cp: ChargePoint) -> None:
        await self._boot(cp)
        self.dispatch(LinkChanged(True))
        first = [Live("StatusNotification", {"connectorId": 0, "status": self._station_status(),
                                             "errorCode": "NoError",
                                             "timestamp": convert.iso(self.clock())})]
        for c in self.model.connectors.values():
            assert c.status is not None
            self._reported[c.connector_id] = (c.status, c.facts.fault)
            first.append(Live("StatusNotification", convert.status_notification(SendStatus(
                c.connector_id, c.status, c.facts.fault, c.facts.fault_info, self.clock()))))
        self.messenger.go_online(first)
        await self.messenger.run(cp)

    def _station_status(self) -> str:
        return "Available" if any(c.facts.station_operative and c.facts.operative
                                  for c in self.model.connectors.values()) else "Unavailable"

    async def _boot(self, cp: ChargePoint) -> None:
        """BootNotification until Accepted; Pending/Rejected wait the interval (4.2)."""
        s = self.settings
        payload = {"chargePointVendor": s.charge_point_vendor,
                   "chargePointModel": s.charge_point_model,
                   "firmwareVersion": s.firmware_version,
                   "chargePointSerialNumber": self.id[:25]}
        while True:
            answer = await send_call(cp, "BootNotification", payload)
            self.registration = RegistrationStatus(answer["status"])
            self._publish_connection(True)
            interval = int(answer.get("interval", 0))
            if self.registration is RegistrationStatus.ACCEPTED:
                if interval > 0:
                    self.config.set("HeartbeatInterval", str(interval))
                log.info("%s: accepted by the central system", self.id)
                return
            wait = (interval or 60) * s.time_scale
            log.warning("%s: BootNotification %s; retrying in %.1fs", self.id,
                        self.registration.value, wait)
            await asyncio.sleep(wait)

    def _link_down(self) -> None:
        self.messenger.go_offline()
        self.registration = None
        self.dispatch(LinkChanged(False))
        self._publish_connection(False)

    def _publish_connection(self, connected: bool) -> None:
        self.bus.publish(ch.OCPP_CONNECTION, OcppConnection(
            connected=connected, registration=self.registration if connected else None,
            since=self.clock()))

    # --- time ----------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            sample = self.config.get_seconds("MeterValueSampleInterval") or 1.0
            await asyncio.sleep(max(0.02, min(0.5, sample / 4)))
            self.dispatch(Tick())
            self.apply_profiles()
            self.offpeak.poll(self.dispatch)

    def apply_profiles(self) -> None:
        """Turn the charging profiles in force now into each connector's limit."""
        now = self.clock()
        charging = sum(1 for c in self.model.connectors.values() if c.facts.tx is not None)
        for c in self.model.connectors.values():
            tx = c.facts.tx
            limit = self.smart.limit_a(c.connector_id, now,
                                       tx_id=tx_key(tx) if tx else None,
                                       tx_start=tx.started_at if tx else None,
                                       in_tx=tx is not None,
                                       sharing=charging if tx is not None else max(1, charging))
            if limit != c.facts.profile_limit_a:
                self.dispatch(ProfileLimit(c.connector_id, limit))

    # --- start-up and shutdown ---------------------------------------------------------------

    async def _recover(self) -> None:
        """Transactions still on disk were cut short: stop them (PowerLoss, or Reboot if we
        stopped cleanly), with the meter register read back from the retained meter topic."""
        rows = self.store.db.execute("SELECT connector, local_id, id_tag, started_at, "
                                     "meter_start_wh, energy_wh, transaction_id FROM running"
                                     ).fetchall()
        if not rows:
            return
        reason = StopReason.REBOOT if self._stopped_cleanly else StopReason.POWER_LOSS
        with contextlib.suppress(TimeoutError):
            await self.bus.wait_connected(5)
        for _ in range(50):  # the retained meter reading arrives right after subscribing
            if all(self.model.connectors[r[0]].facts.meter is not None for r in rows
                   if r[0] in self.model.connectors):
                break
            await asyncio.sleep(0.02)
        for row in rows:
            if row[0] not in self.model.connectors:
                continue
            log.warning("%s: transaction %s on connector %d was interrupted; stopping it (%s)",
                        self.id, row[6] or f"local {row[1]}", row[0], reason.value)
            self.dispatch(Recovered(row[0], row[1], row[2], datetime.fromisoformat(row[3]),
                                    row[4], row[5], None if row[6] is None else str(row[6]),
                                    reason))

    async def run(self) -> None:
        """Serve until cancelled, or until a hard Reset (then `reset_done` is True)."""
        self._stopped_cleanly = self.store.meta("clean_shutdown", "1") == "1"
        self.store.set_meta("clean_shutdown", "0")
        self.execute(self.model.startup())
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.bus.run())
                group.create_task(self._recover())
                group.create_task(self.link.run())
                group.create_task(self._ticker())
                group.create_task(self._until_hard_reset())
        except* _HardReset:
            self.reset_done = True
        finally:
            self.store.set_meta("clean_shutdown", "1")
            logging.getLogger("voltbus_ocpp").removeHandler(self.ring)

    async def _until_hard_reset(self) -> None:
        await self.hard_reset.wait()
        self.messenger.go_offline()
        self._publish_connection(False)  # flushed by the bus as it stops
        raise _HardReset

    def spawn(self, coro: Any) -> None:
        """Run a background job tied to this station."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
