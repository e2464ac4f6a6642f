"""One station, built by composition: its model, disk state, bus bridge, sender, link and the one
protocol adapter that speaks its OCPP version.

Every change goes through `dispatch(event)`: the model decides, `execute` carries out the effects
(bus messages, durable or live messages to the central system, disk). Nothing here awaits inside
dispatch, so bus handlers and the protocol's request handlers can both call it without racing.
Nothing here knows an OCPP version: the adapter converts (see adapter.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import subprocess
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.asyncio.client import ClientConnection

from voltbus_common import channels as ch
from voltbus_common.aio import timeout
from voltbus_common.bus import Bus
from voltbus_common.enums import (
    ChargePointErrorCode,
    ConnectorStatus,
    RegistrationStatus,
    StopReason,
)
from voltbus_common.models import OcppConnection
from voltbus_ocpp.adapter import ProtocolAdapter, Session
from voltbus_ocpp.bus_bridge import BusBridge, EnergyState
from voltbus_ocpp.display import Display
from voltbus_ocpp.ha_data import CommandLimits
from voltbus_ocpp.link import Link
from voltbus_ocpp.maintenance import LogRing, Maintenance, snapshot_files
from voltbus_ocpp.messages import MaintenanceStatus, Message, MeterValuesNow, StationStatus
from voltbus_ocpp.messenger import Live, Messenger
from voltbus_ocpp.model.authorisation import Authoriser
from voltbus_ocpp.model.connector import blocking_fault
from voltbus_ocpp.model.energy_limit import EnergyGuard, RememberEnergyManaged
from voltbus_ocpp.model.events import (
    AuthorizeAnswered,
    Effect,
    Event,
    LinkChanged,
    PilotChanged,
    Recovered,
    RelayMismatch,
    RestartRequested,
    Resumed,
    SendAuthorize,
    SendMeterValues,
    SendStartTransaction,
    SendStatus,
    SendStopTransaction,
    SendTransactionUpdate,
    StartAnswered,
    Tick,
)
from voltbus_ocpp.model.external_limits import LimitSource, ReportExternalLimit
from voltbus_ocpp.model.metering import SWITCH_WAIT_S
from voltbus_ocpp.model.results import Outcome, ReadingContext
from voltbus_ocpp.model.smart_charging import SmartCharging
from voltbus_ocpp.model.station import ONE_CONNECTOR, StationModel
from voltbus_ocpp.model.tokens import IdToken
from voltbus_ocpp.monitoring import Monitoring
from voltbus_ocpp.offline_queue import OfflineQueue
from voltbus_ocpp.offpeak_timer import OffPeakTimer
from voltbus_ocpp.profiles import Profiles
from voltbus_ocpp.protocols import adapter_for
from voltbus_ocpp.records import (
    ExternalLimitRecord,
    FirmwareStatusRecord,
    MeterValuesRecord,
    Record,
    TransactionStarted,
    TransactionStopped,
    TransactionUpdated,
    starts_transaction,
)
from voltbus_ocpp.repositories import (
    Availability,
    ChargingProfiles,
    RunningRow,
    RunningTransactions,
)
from voltbus_ocpp.security import StationSecurity
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import AuthTable, KeyRotation, Store

log = logging.getLogger(__name__)

HARD_RESET_EXIT_CODE = 75  # sysexits EX_TEMPFAIL: non-zero, so systemd's Restart=on-failure,
# compose's restart: unless-stopped and `voltbus up`'s supervisor all start the process again


TICK_MIN_S = 0.02  # the shortest wait after a tick
TICK_MAX_S = 60.0  # the longest wait without a deadline (a clock step is noticed by then)

FIRMWARE_INSTALLED = "firmware_installed"  # meta: "1" from the install until Installed is queued
EXTERNAL_LIMITS = "external_limits"  # meta: the external limits last reported (JSON)
ENERGY_MANAGED = "energy_managed"  # meta: connectors an energy manager limited, its site (JSON)
FIRMWARE_FINAL = frozenset({"DownloadFailed", "InstallationFailed"})  # durable, not live


class _HardReset(Exception):
    """Ends the station's task group after a hard Reset."""


def _no(_value: int) -> None:
    """A protocol without a SecurityProfile key (2.0.1 here): nothing to set."""


def utcnow() -> datetime:
    """Now, aware UTC."""
    return datetime.now(UTC)


class Station:
    """One charge point towards one central system and one bus."""

    def __init__(self, settings: GatewaySettings, station_id: str, bus: Bus, *,
                 clock: Callable[[], datetime] = utcnow,
                 adapter: Callable[[GatewaySettings, Store], ProtocolAdapter] = adapter_for
                 ) -> None:
        self.settings = settings
        self.id = station_id
        self.bus = bus
        # Its retained state (status, transaction, charging, connection, last session) again
        # after each reconnect: a crashed broker restores an autosave up to 5 s old, and a
        # bridged site broker would take that old state from it (docs/multi-site.md).
        bus.republish_retained = True
        self.clock = clock
        self._dispatched: list[Callable[[Event, list[Effect]], None]] = []
        self.store = Store(settings.station_dir(station_id) / "state.sqlite")
        self.adapter = adapter(settings, self.store)
        self.config = self.adapter.config
        self.queue = OfflineQueue(self.store)
        self.running = RunningTransactions(self.store)
        self.local_list = AuthTable(self.store, "list")
        self.authoriser = Authoriser(self.config, local_list=self.local_list,
                                     cache=AuthTable(self.store, "cache"))
        self.model = StationModel(
            settings.connectors, self.config, self.authoriser, max_current_a=settings.max_current_a,
            clock=clock, first_local_id=int(self.store.meta("next_local_id", "1") or 1),
            unlock_supported=settings.unlock_supported, relay_grace_s=settings.relay_grace_s,
            time_scale=settings.time_scale, energy_guard=EnergyGuard(
                timeout_s=settings.energy_limit_timeout_s,
                failsafe_a=settings.energy_limit_failsafe_a))
        self._restore_external_limits()
        self._restore_energy_managed()
        self.display = Display(self.store, bus, self.model, clock)  # display messages (2.0.1)
        self.availability = Availability(self.store)  # ChangeAvailability survives restarts
        self.availability.restore(self.model)
        self.command_limits = CommandLimits(self.store)  # set_current_limit survives restarts
        self.command_limits.restore(self.model)
        table = ChargingProfiles(self.store)
        self.smart = SmartCharging(table.load(), phases=settings.phases)
        self.profiles = Profiles(self.smart, table, self.model, clock=clock,
                                 dispatch=self.dispatch)
        self.offpeak = OffPeakTimer(settings.offpeak_schedule(),
                                    enabled=settings.offpeak_enabled, clock=clock)
        self.offpeak.prime(self.model)
        self.messenger = Messenger(station_id, self.queue, self.config,
                                   on_durable_answer=self._durable_answered,
                                   on_durable_dropped=self._durable_dropped,
                                   on_heartbeat=self._heartbeat_answered)
        self.monitoring = Monitoring(self.store, self.queue, self.model, clock,
                                     self.messenger.durable_added)  # variable monitors (2.0.1)
        self.monitoring.wake = self._wake_ticker  # a periodic monitor's deadline
        self.security = StationSecurity(  # certificates, security profile, security events
            settings, station_id, self.store, self.queue, clock=clock,
            queued=self.messenger.durable_added,
            profile=lambda: int(getattr(self.config, "security_profile", 0)),
            set_profile=lambda n: getattr(self.config, "set_security_profile", _no)(n),
            auth_key=self._auth_key,
            organization=lambda: str(getattr(self.config, "cpo_name", "")))
        self.link = Link(settings, station_id, session=self._session, on_down=self._link_down,
                         auth_key=self._auth_key, ping_interval=lambda: self.config.ping_interval_s,
                         subprotocols=self.adapter.subprotocols,
                         rotation=KeyRotation(self.store), route=self.security.route,
                         on_connected=self.security.connected, on_failed=self.security.failed)
        self.ring = LogRing()
        logging.getLogger("voltbus_ocpp").addHandler(self.ring)
        self.maintenance = Maintenance(
            station_id, settings.station_dir(station_id) / "firmware",
            report=self._maintenance_status, snapshot=self._snapshot, ring=self.ring,
            install_command=settings.firmware_install_command, time_scale=settings.time_scale,
            verify_command=settings.firmware_verify_command,
            idle=lambda: all(c.facts.tx is None for c in self.model.connectors.values()),
            installed=self._firmware_installed, hold=self._hold_for_restart)
        self.bridge = BusBridge(bus, settings.connectors, self.dispatch,
                                command_limit=lambda n: self.command_limits.limit(self.model, n),
                                energy_state=self._energy_state,
                                unlock_on_ev_disconnect=lambda: self.config.unlock_on_ev_disconnect,
                                operative=self.model.operative, after_reset=self.after_reset)
        if settings.unlock_supported:
            log.warning("VOLTBUS_UNLOCK_SUPPORTED is obsolete and ignored: UnlockConnector goes "
                        "to the cable lock (hw/<n>/lock); without one it answers NotSupported")
        self.bridge.attach()
        self.config.on_change(self._config_changed)
        self.registration: RegistrationStatus | None = None
        self._connection: tuple[bool, datetime] = (False, clock())  # connected, since
        self.last_heartbeat: datetime | None = None  # the last Heartbeat answered
        self.session: Session | None = None
        self._restart_after_reply = False
        self._hard_reset_after_reply = False
        self.hard_reset = asyncio.Event()  # set when a hard Reset is due: run() returns
        self.reset_done = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped_cleanly = True
        self._held_status: dict[int, SendStatus] = {}
        self._wake = asyncio.Event()  # the ticker looks at its deadlines again
        self._changed = False  # since the ticker last looked: more than one connector's reading
        self._ticking = False
        self._armed: datetime | None = None  # when the ticker wakes by itself next
        self._reported: dict[int, tuple[object, object]] = {}

    def _config_changed(self, name: str) -> None:
        """LED intensity, blink repeat and the heartbeat interval apply at once."""
        if name == "heartbeat_interval_s":
            self.messenger.reschedule()
        self._poke(None, [])  # sample and clock-aligned intervals are deadlines too
        self.monitoring.evaluate()  # a monitored configuration variable
        if name in ("light_intensity_pct", "blink_repeat"):
            self.execute([c.led() for c in self.model.connectors.values()
                          if c.status is not None])

    def _snapshot(self) -> dict[str, str]:
        queued = [{"action": q.kind, "local_id": q.local_id, "attempts": q.attempts}
                  for q in self.queue.all()]
        statuses = {n: c.status.value if c.status else "" for n, c in
                    self.model.connectors.items()}
        return snapshot_files(self.config.visible_values(), queued, statuses)

    def _auth_key(self) -> str | None:
        return self.config.authorization_key or self.settings.auth_key()

    # --- the model loop ------------------------------------------------------------------------

    def dispatch(self, event: Event) -> list[Effect]:
        """Apply an event to the model and carry out its effects; the effects."""
        station_was = self.model.station_operative
        operative_was = self._operative()
        effects = self.model.handle(event)
        self.execute(effects)
        if isinstance(event, PilotChanged):
            self._keep_plug(event.connector)
        if self.model.station_operative != station_was:  # connector 0, also when scheduled
            self.send(StationStatus(self.model.station_operative, self.clock()))
        if self._operative() != operative_was:
            self._publish_availability(operative_was, effects)
        self.availability.keep(self.model)
        self.command_limits.keep(self.model)
        for listener in list(self._dispatched):
            listener(event, effects)
        self.display.refresh()  # a state or a transaction a message waits for
        self.monitoring.evaluate()  # a monitored value changed
        self._poke(event, effects)
        return effects

    def _keep_plug(self, n: int) -> None:
        """The running transaction's row follows the plug-in it charges (what `_recover`
        compares with the hardware's after a restart)."""
        c = self.model.connectors.get(n)
        if c is not None and c.facts.tx is not None and c.facts.plugged_at is not None:
            self.running.plugged(c.facts.tx.local_id, c.facts.plugged_at)

    def on_dispatch(self, listener: Callable[[Event, list[Effect]], None]
                    ) -> Callable[[], None]:
        """Call listener(event, effects) after every dispatch; returns the unsubscribe."""
        self._dispatched.append(listener)
        return lambda: self._dispatched.remove(listener) if listener in self._dispatched \
            else None
    def _operative(self) -> dict[int, tuple[bool, bool | None]]:
        """ChangeAvailability's state: the station's (0) and each connector's."""
        return {n: self.model.operative(n) for n in (0, *self.model.connectors)}

    def _publish_availability(self, was: dict[int, tuple[bool, bool | None]],
                              effects: list[Effect]) -> None:
        """The status topics carry the availability: publish those it changed on (a scheduled
        change leaves the status as it is), connector 0 for the station."""
        reported = {e.connector for e in effects if isinstance(e, SendStatus)}
        for n, value in self._operative().items():
            if value == was.get(n) or n in reported:
                continue
            if n == 0:
                self._publish_station_status()
                continue
            c = self.model.connectors[n]
            if c.status is not None:
                self.bridge.publish_status(n, c.status, c.error_code, self.clock())

    def _publish_station_status(self) -> None:
        """The station as a whole on `ocpp/0/status` (OCPP 1.6 connector 0)."""
        self.bridge.publish_status(
            0, ConnectorStatus.AVAILABLE if self.model.station_operative
            else ConnectorStatus.UNAVAILABLE, ChargePointErrorCode.NO_ERROR, self.clock())

    def execute(self, effects: list[Effect]) -> None:
        """Carry out effects in order."""
        for effect in effects:
            if isinstance(effect, SendStatus):
                self.bridge.publish(effect)
                self._report_status(effect)
            elif self.bridge.publish(effect):
                continue
            elif isinstance(effect, SendAuthorize):
                self.messenger.send(effect, self._authorize_answered(effect.id_tag))
            elif isinstance(effect, SendMeterValues) and effect.local_id is None:
                # outside a transaction: live, dropped while offline (only transaction
                # messages must be kept, OCPP 1.6 4.7)
                self.send(MeterValuesNow(effect.connector, effect.reading, effect.ts,
                                         effect.context, self.config.aligned_measurands))
            elif isinstance(effect, SendStartTransaction | SendMeterValues | SendStopTransaction
                            | SendTransactionUpdate):
                self._durable(effect)
            elif isinstance(effect, RelayMismatch):
                log.warning("%s: connector %d: relay reported %s, wanted %s; commanding it "
                            "again (attempt %d%s)", self.id, effect.connector,
                            "open" if effect.wanted_closed else "closed",
                            "closed" if effect.wanted_closed else "open", effect.attempt,
                            ", the last" if effect.last else "")
            elif isinstance(effect, ReportExternalLimit):
                self._external_limit(effect)
            elif isinstance(effect, RememberEnergyManaged):
                self.store.set_meta(ENERGY_MANAGED, json.dumps(
                    [[n, site] for n, site in sorted(effect.managed.items())]))
            elif isinstance(effect, RestartRequested):
                self._restart_after_reply = True
                self._hard_reset_after_reply = effect.hard

    def _restore_external_limits(self) -> None:
        """What was reported before the restart: a release seen now is still reported."""
        try:
            saved = json.loads(self.store.meta(EXTERNAL_LIMITS, "[]") or "[]")
            self.model.external.reported = {(int(n), LimitSource(source)): float(amps)
                                            for n, source, amps in saved}
        except (ValueError, TypeError) as exc:  # a damaged row: report afresh
            log.warning("%s: ignored the stored external limits: %s", self.id, exc)

    def _energy_state(self, n: int) -> EnergyState:
        """What ocpp/{n}/charging says of the limit's source and the energy manager."""
        c = self.model.connectors.get(n)
        if c is None:
            return EnergyState()
        return EnergyState(c.limit_source, c.facts.energy_limit_a,
                           c.facts.energy_fail_safe is not None, c.facts.energy_fail_safe)

    def _restore_energy_managed(self) -> None:
        """The connectors an energy manager limited before the restart: its limit must come
        again within the timeout, or the fail-safe limit applies (model/energy_limit.py)."""
        try:
            saved = json.loads(self.store.meta(ENERGY_MANAGED, "[]") or "[]")
            managed = {int(n): None if site is None else str(site) for n, site in saved}
        except (ValueError, TypeError) as exc:  # a damaged row: as if none was managed
            log.warning("%s: ignored the stored energy-managed connectors: %s", self.id, exc)
            return
        self.model.energy.restore(self.model.connectors, managed, self.clock())

    def _external_limit(self, effect: ReportExternalLimit) -> None:
        """Durable, with what was reported in the same commit (nothing twice, none lost)."""
        reported = [[n, source.value, amps]
                    for (n, source), amps in sorted(self.model.external.reported.items())]
        with self.store.transaction():
            self.queue.put(ExternalLimitRecord(effect.connector, effect.source, effect.amps,
                                               effect.ts), None)
            self.store.set_meta(EXTERNAL_LIMITS, json.dumps(reported))
        self.messenger.durable_added()

    def send(self, message: Message) -> None:
        """Queue a live message for the central system (dropped while offline)."""
        self.messenger.send(message)

    def _report_status(self, effect: SendStatus) -> None:
        """Status reports, held back the minimum status duration so a blip is not reported."""
        hold = self.config.minimum_status_duration_s
        if hold <= 0:
            self._reported[effect.connector] = (effect.status, effect.error_code)
            self.send(effect)
            return
        self._held_status[effect.connector] = effect
        asyncio.get_running_loop().call_later(hold, self._release_status, effect)

    def _release_status(self, effect: SendStatus) -> None:
        if self._held_status.get(effect.connector) is effect:
            del self._held_status[effect.connector]
            if self._reported.get(effect.connector) != (effect.status, effect.error_code):
                self._reported[effect.connector] = (effect.status, effect.error_code)
                self.send(effect)

    def _durable(self, effect: SendStartTransaction | SendMeterValues | SendStopTransaction
                 | SendTransactionUpdate) -> None:
        with self.store.transaction():  # one commit per message: durable before anything acts
            self.queue.put(self._record(effect), effect.local_id)
        self.messenger.durable_added()
        if isinstance(effect, SendStartTransaction):  # a TxProfile from RemoteStart applies now
            self.profiles.started(effect.connector)

    def _record(self, effect: SendStartTransaction | SendMeterValues | SendStopTransaction
                | SendTransactionUpdate) -> Record:
        """The outbox record of an effect, with the measurands configured now; the running
        transaction on disk follows it (same commit)."""
        cfg, offline = self.config, not self.model.online
        if isinstance(effect, SendStartTransaction):
            self.running.started(effect, self.model.connectors[effect.connector].facts.plugged_at)
            self.store.set_meta("next_local_id", str(effect.local_id + 1))
            return TransactionStarted(effect, offline)
        if isinstance(effect, SendTransactionUpdate):
            if effect.id_tag is not None:
                self.running.authorised(effect.local_id, effect.id_tag)
            return TransactionUpdated(effect, offline)
        if isinstance(effect, SendMeterValues):
            assert effect.local_id is not None
            self.running.metered(effect.local_id, effect.reading.energy_wh)
            return MeterValuesRecord(effect, cfg.aligned_measurands
                                     if effect.context is ReadingContext.CLOCK
                                     else cfg.sampled_measurands, offline)
        self.running.stopped(effect.local_id)
        self.profiles.ended(self.queue.transaction_id(effect.local_id), effect.local_id)
        return TransactionStopped(effect, cfg.stop_sampled_measurands, cfg.stop_aligned_measurands,
                                  offline)

    def _authorize_answered(self, tag: IdToken) -> Callable[[Event | None], None]:
        def answered(event: Event | None) -> None:
            self.dispatch(event if isinstance(event, AuthorizeAnswered)
                          else AuthorizeAnswered(tag, None))
        return answered

    def _durable_answered(self, _record: Record, local_id: int | None,
                          event: Event | None) -> None:
        if not isinstance(event, StartAnswered) or local_id is None:
            return
        self.queue.resolve(local_id, event.transaction_id)
        self.running.identified(local_id, event.transaction_id)
        self.profiles.identified(local_id, event.transaction_id)  # its TxProfile follows it
        self.dispatch(event)

    def _durable_dropped(self, record: Record, local_id: int | None) -> None:
        log.error("%s: gave up on %s (TransactionMessageAttempts reached)", self.id,
                  type(record).__name__)
        if starts_transaction(record) and local_id is not None:
            self.queue.forget_transaction(local_id)

    # --- the OCPP session ----------------------------------------------------------------------

    async def _session(self, ws: ClientConnection) -> None:
        session = self.adapter.open(ws, self)
        self.session = session
        self._publish_connection(True)
        reader = asyncio.create_task(session.serve())
        worker = asyncio.create_task(self._registered(session))
        try:
            done, _ = await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (reader, worker):
                task.cancel()
            await asyncio.gather(reader, worker, return_exceptions=True)
            self.session = None

    async def _registered(self, session: Session) -> None:
        await session.boot()
        self.dispatch(LinkChanged(True))
        first: list[Live] = []
        if self.store.meta(FIRMWARE_INSTALLED, "") == "1":  # the restart after an install
            # Installed goes through the outbox in the same commit that clears the flag: a link
            # that drops, or a process that dies, before it is answered does not lose it, and
            # it is not queued twice
            with self.store.transaction():
                self.store.set_meta(FIRMWARE_INSTALLED, "0")
                self.queue.put(FirmwareStatusRecord("Installed"), None)
                self.security.events.record("FirmwareUpdated", self.settings.firmware_version)
            self.maintenance.firmware_status = "Installed"
        first.extend(Live(m) for m in self.security.after_boot(self.settings.firmware_version))
        first.append(Live(StationStatus(self._station_available(), self.clock())))
        for c in self.model.connectors.values():
            assert c.status is not None
            self._reported[c.connector_id] = (c.status, c.facts.fault)
            first.append(Live(SendStatus(c.connector_id, c.status, c.facts.fault,
                                         c.facts.fault_info, self.clock())))
        self.messenger.go_online(first)
        await self.messenger.run(session)

    def _station_available(self) -> bool:
        return self.model.station_operative

    def registered(self, status: RegistrationStatus) -> None:
        """The central system answered the boot notification."""
        self.registration = status
        self._publish_connection(True)

    def _link_down(self) -> None:
        self.messenger.go_offline()
        self.registration = None
        self.dispatch(LinkChanged(False))
        self._publish_connection(False)

    def _heartbeat_answered(self) -> None:
        self.last_heartbeat = self.clock()
        self._publish_connection(self._connection[0], changed=False)

    def _publish_connection(self, connected: bool, *, changed: bool = True) -> None:
        if changed:
            self._connection = (connected, self.clock())
        self.bus.publish(ch.OCPP_CONNECTION, OcppConnection(
            connected=connected, registration=self.registration if connected else None,
            since=self._connection[1], firmware_version=self.settings.firmware_version,
            last_heartbeat=self.last_heartbeat))

    # --- charging profiles (for the protocol's requests) ---------------------------------------

    def install_profile(self, connector: int, profile: dict[str, Any]) -> Outcome:
        """Install a charging profile (a TxProfile on the connector's running transaction)."""
        try:
            return self.profiles.install(connector, profile)
        finally:
            self._poke(None, [])  # its boundaries are deadlines

    def hold_tx_profile(self, connector: int, profile: dict[str, Any]) -> None:
        """Install a TxProfile once the connector's transaction starts."""
        self.profiles.hold(connector, profile)
        self._poke(None, [])

    def remote_start_profile(self, connector: int | None, id_tag: IdToken,
                             profile: dict[str, Any]) -> None:
        """A remote start's TxProfile onto the transaction it starts."""
        self.profiles.for_remote_start(connector, id_tag, profile)
        self._poke(None, [])

    def clear_profiles(self, *, profile_id: int | None, connector: int | None,
                       purpose: str | None, stack_level: int | None) -> bool:
        """Remove matching profiles; True if any were."""
        try:
            return self.profiles.clear(profile_id=profile_id, connector=connector,
                                       purpose=purpose, stack_level=stack_level)
        finally:
            self._poke(None, [])

    def composite(self, connector: int, start: datetime,
                  duration_s: int) -> list[dict[str, Any]]:
        """The limit periods in A from start for duration_s."""
        return self.profiles.composite(connector, start, duration_s)

    async def unlock(self, connector: int) -> Outcome:
        """UnlockConnector through the cable lock (cable_lock.py)."""
        return await self.bridge.locks.unlock(connector)

    async def reconnect(self) -> None:
        """Close the connection: the link connects again, with the security profile now."""
        await self.link.drop()

    # --- Reset ---------------------------------------------------------------------------------

    def restart_after_install(self) -> None:
        """A firmware install hook succeeded (SignedUpdateFirmware): restart as after an
        UpdateFirmware install, once the live messages are out."""
        self.spawn(self._restart_after_install())

    def _hold_for_restart(self, on: bool, *, booted: bool = False) -> None:
        """No new session (idle connectors Unavailable) until the restart, or no longer."""
        self.model.restarting(on, booted=booted)
        self.dispatch(Tick())

    def _maintenance_status(self, kind: str, status: str) -> None:
        """A firmware job's final failure goes through the outbox (it must reach the central
        system even if the link drops now); progress and diagnostics are live."""
        if kind == "firmware" and status in FIRMWARE_FINAL:
            self.queue.put(FirmwareStatusRecord(status), None)
            self.messenger.durable_added()
            return
        self.send(MaintenanceStatus(kind, status))

    def _firmware_installed(self) -> None:
        """The install hook succeeded: restart as a hard Reset does (the process ends for its
        supervisor); FirmwareStatusNotification Installed follows the next accepted
        BootNotification, which carries the new firmware's version."""
        self.store.set_meta(FIRMWARE_INSTALLED, "1")
        self.spawn(self._restart_after_install())

    async def _restart_after_install(self) -> None:
        """Installing (a live message) is sent before the restart drops the live queue."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.response_timeout_s
        while self.messenger.online and self.messenger.items:
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.02)
        await self._restart(hard=True)

    def after_reset(self) -> None:
        """Once the reply is out: deliver the transaction stops, then restart (see _restart)."""
        if self._restart_after_reply:
            self._restart_after_reply = False
            self.spawn(self._restart(self._hard_reset_after_reply))

    async def _restart(self, hard: bool) -> None:
        """A reset attempt succeeds when every queued transaction message (the stops of the
        stopped transactions first) is answered within the message retry interval; an
        unsuccessful attempt is retried `reset_retries` times, then the reset goes ahead anyway
        (the messages stay in the durable outbox and are sent after the restart).

        Soft: the OCPP session restarts (reconnect, boot). Hard: the station's runtime ends and
        the process exits with HARD_RESET_EXIT_CODE for its supervisor to restart it (see
        __main__)."""
        self.security.events.record("ResetOrReboot", f"{'Hard' if hard else 'Soft'} Reset "
                                    "requested by the central system")
        window = max(0.05, self.config.message_retry_interval_s)
        retries = self.config.reset_retries
        await self._stops_metered()
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
            await self._reboot()
            log.warning("%s: hard Reset: restarting the gateway", self.id)
            self.hard_reset.set()
            return
        log.warning("%s: soft Reset: restarting the OCPP session", self.id)
        await self.link.drop()
        self._hold_for_restart(False, booted=True)  # as just booted (5.14): free again

    async def _reboot(self) -> None:
        """Run the configured reboot command (a hard Reset reboots the charge point, 5.14); the
        process restart follows whatever it does (a reboot ends the process anyway)."""
        command = self.settings.reboot_command
        if not command:
            return
        if len(self.settings.stations) > 1:
            log.warning("%s: VOLTBUS_REBOOT_COMMAND ignored: this process serves %d stations; "
                        "restarting only this one", self.id, len(self.settings.stations))
            return
        log.warning("%s: hard Reset: running the reboot command", self.id)
        try:
            done = await asyncio.to_thread(subprocess.run, shlex.split(command), check=False,
                                           timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("%s: reboot command failed: %s", self.id, exc)
            return
        if done.returncode != 0:
            log.error("%s: reboot command exited %d", self.id, done.returncode)

    async def _stops_metered(self) -> None:
        """The stops waiting for their meter reading after the opening are queued (each gives
        up after SWITCH_WAIT_S, the tick flushes it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SWITCH_WAIT_S + 1.0
        while any(c.pending_stop is not None for c in self.model.connectors.values()):
            if loop.time() >= deadline:
                return
            await asyncio.sleep(0.02)

    async def _outbox_drained(self, seconds: float) -> bool:
        """True once the durable outbox is empty, False if it is not within seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while len(self.queue):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    # --- time ----------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        """Ticks at the next deadline only (ConnectionTimeOut, reservation expiry, a stop waiting
        for its meter reading, meter samples, clock-aligned values, the relay re-send, the
        transaction's energy on the bus, charging-profile and off-peak boundaries), not every
        0.25 s (issue 14: an idle gateway woke 4 times a second per station). A dispatch that
        may bring a deadline forward wakes it (_poke); it looks again at least every
        TICK_MAX_S (clock steps)."""
        while True:
            self._wake.clear()
            changed, self._changed = self._changed, False
            now = self.clock()
            due = self._next_due(now)
            floor = 0.0
            if due is not None and due <= now:
                self._tick()
                due = self._next_due(self.clock())
                floor = TICK_MIN_S  # never a hot loop, whatever a deadline says
            elif changed and self.profiles.any:  # a transaction began or ended: shares move
                self._ticking = True
                try:
                    self.profiles.apply()
                finally:
                    self._ticking = False
            delay = TICK_MAX_S if due is None else min(
                TICK_MAX_S, max(floor, (due - self.clock()).total_seconds()))
            self._armed = self.clock() + timedelta(seconds=delay)
            with contextlib.suppress(TimeoutError):
                async with timeout(delay):  # voltbus_common.aio: 3.11.2's asyncio.timeout
                    await self._wake.wait()

    def _tick(self) -> None:
        self._ticking = True
        try:
            self.dispatch(Tick())
            self.profiles.apply()
            self.offpeak.poll(self.dispatch)
        finally:
            self._ticking = False
        self._wake.clear()
        self._changed = False

    def _next_due(self, now: datetime) -> datetime | None:
        dues = [self.model.next_due(now), self.profiles.next_due(now), self.offpeak.due,
                self.display.next_due(now), self.monitoring.next_due(now)]
        return min((d for d in dues if d is not None), default=None)

    def _wake_ticker(self) -> None:
        if not self._ticking:
            self._wake.set()

    def _poke(self, event: Event | None, effects: list[Effect]) -> None:
        """Wake the ticker when this dispatch may have brought a deadline forward: a
        connector's own event without effects (a meter reading) only if that connector's next
        deadline is before the ticker's wake-up."""
        if self._ticking:
            return
        if event is not None and type(event) in ONE_CONNECTOR and not effects:
            c = self.model.connectors.get(event.connector)  # type: ignore[attr-defined]
            due = None if c is None else c.next_due(
                self.clock(), relay=self.model.hardware_online is not False)
            if due is None or (self._armed is not None and due >= self._armed):
                return
        else:
            self._changed = True
        self._wake.set()

    def apply_profiles(self) -> None:
        """Turn the charging profiles in force now into each connector's limit."""
        self.profiles.apply()

    # --- start-up and shutdown ---------------------------------------------------------------

    async def _recover(self) -> None:
        """Transactions still on disk were running when the process ended. One whose EV the
        hardware still shows plugged in (the same plug-in: PilotEvent.plugged_at) with the relay
        closed, the hardware service online, was kept charging (the hardware holds the relay
        for a while after losing the gateway): it is resumed. The others were cut short: they
        are stopped (PowerLoss, or Reboot if we stopped cleanly), with the meter register read
        back from the retained meter topic."""
        rows = [r for r in self.running.all() if r.connector in self.model.connectors]
        if not rows:
            return
        reason = StopReason.REBOOT if self._stopped_cleanly else StopReason.POWER_LOSS
        with contextlib.suppress(TimeoutError):
            await self.bus.wait_connected(5)

        def heard(r: RunningRow) -> bool:
            f = self.model.connectors[r.connector].facts
            return f.meter is not None and (r.plugged_at is None or (
                f.relay_closed is not None and f.plugged_at is not None
                and self.model.hardware_online is not None))

        for _ in range(50):  # the retained state arrives right after subscribing
            if all(heard(r) for r in rows):
                break
            await asyncio.sleep(0.02)
        for r in rows:
            c = self.model.connectors[r.connector]
            f = c.facts
            if (r.plugged_at is not None and f.plugged_at == r.plugged_at and c.plugged
                    and f.relay_closed is True and self.model.hardware_online is True
                    and not blocking_fault(f)):
                log.warning("%s: transaction %s on connector %d was interrupted; the hardware "
                            "kept charging the same plug-in: resuming it", self.id,
                            r.transaction_id or f"local {r.local_id}", r.connector)
                self.dispatch(Resumed(r.connector, r.local_id, r.id_tag, r.started_at,
                                      r.meter_start_wh, r.energy_wh, r.transaction_id))
                continue
            why = reason
            if (r.plugged_at is not None and self.model.hardware_online is True
                    and f.plugged_at != r.plugged_at):  # unplugged (and maybe again) meanwhile
                why = StopReason.EV_DISCONNECTED
            log.warning("%s: transaction %s on connector %d was interrupted; stopping it (%s)",
                        self.id, r.transaction_id or f"local {r.local_id}", r.connector,
                        why.value)
            self.dispatch(Recovered(r.connector, r.local_id, r.id_tag, r.started_at,
                                    r.meter_start_wh, r.energy_wh, r.transaction_id, why))

    async def run(self) -> None:
        """Serve until cancelled, or until a hard Reset (then `reset_done` is True)."""
        self._stopped_cleanly = self.store.meta("clean_shutdown", "1") == "1"
        self.store.set_meta("clean_shutdown", "0")
        for r in self.running.all():  # _recover stops these; no new session there before it
            if r.connector in self.model.connectors:
                self.model.connectors[r.connector].facts.recovering = True
        self.execute(self.model.startup())
        self.security.events.record("StartupOfTheDevice",
                                    f"voltbus gateway {self.settings.firmware_version}")
        self._publish_station_status()
        self.display.refresh()  # what is shown after the restart (replaces the retained list)
        try:
            # The bus stops after the rest: what they said last (offline on a hard Reset) goes out.
            async with self.bus, asyncio.TaskGroup() as group:
                group.create_task(self._recover())
                group.create_task(self.link.run())
                group.create_task(self._ticker())
                group.create_task(self._until_hard_reset())
                group.create_task(self.security.watch_clock(
                    on_jump=lambda: self._poke(None, [])))
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

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background job tied to this station."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
