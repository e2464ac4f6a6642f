"""One connector's state machine: events change its facts, its OCPP status is derived from them.

The status follows from the facts in a fixed priority (`derive_status`), so no event can leave the
status and the facts disagreeing; each handler in `Connector.HANDLERS` only changes facts and says
what to do. After every event the status is re-derived and, if it changed, reported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from voltbus_common.enums import (
    ChargePointErrorCode,
    ConnectorStatus,
    LedPattern,
    LimitSource,
    MeterTrigger,
    PilotState,
    StopReason,
)
from voltbus_ocpp.model.config import ChargePointConfig
from voltbus_ocpp.model.events import (
    Effect,
    MeterSnapshot,
    PublishCharging,
    PublishSession,
    PublishTransaction,
    RelayMismatch,
    ReservationExpired,
    Sample,
    SendMeterValues,
    SendStartTransaction,
    SendStatus,
    SendStopTransaction,
    SendTransactionUpdate,
    SetCurrentLimit,
    SetLed,
    SetRelay,
    TransactionView,
)
from voltbus_ocpp.model.metering import PendingStop, SwitchRead, deadline, estimate, request_id
from voltbus_ocpp.model.relay import MAX_RESENDS, RelayKeeper, Verdict, verdict
from voltbus_ocpp.model.results import (
    ChargingState,
    ReadingContext,
    TransferEnd,
    TxStart,
    TxUpdate,
)
from voltbus_ocpp.model.tokens import IdToken

log = logging.getLogger(__name__)

PLUGGED = frozenset({PilotState.B, PilotState.C, PilotState.D})
DRAWING = frozenset({PilotState.C, PilotState.D})
# The retained ocpp/{c}/transaction is published at once when the transaction starts, gets its
# id and ends; a grown energy_wh at most once per TX_ENERGY_REFRESH_S (times the time scale),
# the last value at the latest that long after the reading (the tick sends it). It was every meter
# reading: a retained QoS 1 message per reading for every consumer (issue 14). The live energy
# is on hw/{c}/meter: its register minus meter_start_wh (docs/topics.md).
TX_ENERGY_REFRESH_S = 10.0
PILOT_FAULT = frozenset({PilotState.E, PilotState.F})

LED_FOR_STATUS: dict[ConnectorStatus, tuple[str, LedPattern]] = {
    ConnectorStatus.AVAILABLE: ("green", LedPattern.SOLID),
    ConnectorStatus.PREPARING: ("blue", LedPattern.BLINK),
    ConnectorStatus.CHARGING: ("blue", LedPattern.PULSE),
    ConnectorStatus.SUSPENDED_EV: ("blue", LedPattern.SOLID),
    ConnectorStatus.SUSPENDED_EVSE: ("yellow", LedPattern.SOLID),
    ConnectorStatus.FINISHING: ("green", LedPattern.BLINK),
    ConnectorStatus.RESERVED: ("yellow", LedPattern.BLINK),
    ConnectorStatus.UNAVAILABLE: ("off", LedPattern.OFF),
    ConnectorStatus.FAULTED: ("red", LedPattern.BLINK),
}


@dataclass
class Transaction:
    """A transaction here; transaction_id stays None until the central system answers.

    id_tag None: started at plug-in, not authorised yet (TxStart.EV_CONNECTED). powered: the
    relay is wanted closed (authorised with the EV there); False while a transaction started at
    plug-in waits for its id token, or one started at authorisation waits for the EV until
    ev_deadline (TxStart.AUTHORIZED)."""

    local_id: int
    id_tag: IdToken | None
    started_at: datetime
    meter_start_wh: float
    energy_wh: float
    transaction_id: str | None = None
    samples: list[Sample] = field(default_factory=list)  # StopTxnSampled/AlignedData
    energy_cap_wh: float | None = None  # MaxEnergyOnInvalidId after a non-Accepted start
    published_at: datetime | None = None  # when ocpp/{c}/transaction was last published
    published_wh: float | None = None  # the energy_wh it carried then
    powered: bool = True
    ev_deadline: datetime | None = None
    transferring: bool = False  # energy has flowed (stop_on_transfer_end waits for it)
    in_bay: bool = False  # started when the bay detector saw the vehicle (TxStart.PARKING_BAY)
    # the charging state last reported to the central system (None: none yet, or not reported)
    charging_state: ChargingState | None = None

    @property
    def delivered_wh(self) -> float:
        """Energy delivered in this transaction so far."""
        return self.energy_wh - self.meter_start_wh

    def view(self) -> TransactionView:
        """The bus view."""
        return TransactionView(self.local_id, self.transaction_id, self.id_tag, self.started_at,
                               self.meter_start_wh, self.energy_wh)


@dataclass
class Waiting:
    """An authorised idTag waiting for the EV to be plugged in (ConnectionTimeOut)."""

    id_tag: IdToken
    until: datetime
    limit_a: float | None = None
    remote_start_id: int | None = None  # authorised by a remote start (2.0.1 remoteStartId)


@dataclass
class Armed:
    """Authorised with the EV there and the relay closed, no transaction yet: it starts when
    energy flows (TxStart.ENERGY_TRANSFER alone)."""

    id_tag: IdToken
    reservation_id: int | None = None
    limit_a: float | None = None
    remote_start_id: int | None = None  # authorised by a remote start (2.0.1 remoteStartId)


@dataclass
class Reservation:
    """ReserveNow on this connector."""

    reservation_id: int
    id_tag: IdToken
    parent_id_tag: str | None
    expiry: datetime


@dataclass
class Facts:
    """Everything the status is derived from."""

    pilot: PilotState = PilotState.A
    bay: bool | None = None  # the bay detector sees a vehicle (None: no detector heard of)
    fault: ChargePointErrorCode = ChargePointErrorCode.NO_ERROR
    fault_info: str | None = None
    operative: bool = True
    station_operative: bool = True
    scheduled_operative: bool | None = None
    enabled: bool = True
    command_limit_a: float | None = None
    profile_limit_a: float | None = None
    tx: Transaction | None = None
    waiting: Waiting | None = None
    armed: Armed | None = None
    finishing: bool = False
    reservation: Reservation | None = None
    meter: MeterSnapshot | None = None
    relay_closed: bool | None = None
    policy_limit_a: float | None = None  # off-peak (model/offpeak.py): 0 holds a session
    policy_override: int | None = None  # local id of the one transaction exempt from the policy
    energy_limit_a: float | None = None  # site energy manager (model/energy_limit.py)
    # the energy manager is lost (why): energy_limit_a is the fail-safe limit meanwhile
    energy_fail_safe: str | None = None
    # the station is about to restart (a Reset, or a firmware install waiting for the running
    # transactions): no new session; Unavailable once idle; not kept across the restart
    restarting: bool = False
    # a transaction cut short (crash, power cut) is still to be stopped: no new session before
    # its StopTransaction is queued, or the central system would see a start on a busy connector
    recovering: bool = False
    # the plug-in's identity from the hardware (PilotEvent.plugged_at; None: not known)
    plugged_at: datetime | None = None


# Errors that do not stop energy delivery: OCPP 1.6 calls a connector Faulted only when it "is
# not available for energy delivery", so these are reported with the current status instead. A
# failed card reader (reported on every connector of its station) must not end running sessions.
NON_BLOCKING_ERRORS = frozenset({
    ChargePointErrorCode.NO_ERROR,
    ChargePointErrorCode.READER_FAILURE,
    ChargePointErrorCode.WEAK_SIGNAL,
    ChargePointErrorCode.LOCAL_LIST_CONFLICT,
})


def blocking_fault(f: Facts) -> bool:
    """A hardware error that stops energy delivery on this connector."""
    return f.fault not in NON_BLOCKING_ERRORS


def derive_status(f: Facts, effective_limit_a: float) -> ConnectorStatus:
    """OCPP ChargePointStatus from the facts, highest priority first."""
    if blocking_fault(f) or f.pilot in PILOT_FAULT:
        return ConnectorStatus.FAULTED
    if f.tx is not None:
        if not f.tx.powered:  # waiting for its id token or its EV
            return ConnectorStatus.PREPARING
        if effective_limit_a <= 0:
            return ConnectorStatus.SUSPENDED_EVSE
        return ConnectorStatus.CHARGING if f.pilot in DRAWING else ConnectorStatus.SUSPENDED_EV
    if not (f.operative and f.station_operative) or f.restarting:
        return ConnectorStatus.UNAVAILABLE
    if f.finishing:
        return ConnectorStatus.FINISHING
    if f.waiting is not None or f.armed is not None:
        return ConnectorStatus.PREPARING
    if f.reservation is not None:  # an EV plugged in waits for the reserved tag (1.6 4.9)
        return ConnectorStatus.RESERVED
    if f.pilot in PLUGGED:
        return ConnectorStatus.PREPARING
    return ConnectorStatus.AVAILABLE


# The charging state of a running transaction for each status derive_status gives it; a
# Preparing one (not authorised, or the relay still closing) has its EV connected, nothing
# flowing yet. Without an EV on the pilot it is Idle whatever the status.
CHARGING_STATE: dict[ConnectorStatus, ChargingState] = {
    ConnectorStatus.CHARGING: ChargingState.CHARGING,
    ConnectorStatus.SUSPENDED_EV: ChargingState.SUSPENDED_EV,
    ConnectorStatus.SUSPENDED_EVSE: ChargingState.SUSPENDED_EVSE,
    ConnectorStatus.FAULTED: ChargingState.SUSPENDED_EVSE,
}


def charging_state(f: Facts, status: ConnectorStatus) -> ChargingState:
    """A transaction's charging state (2.0.1 ChargingStateEnumType) from the facts and the
    status derived from them, so the two cannot disagree."""
    if f.pilot not in PLUGGED:
        return ChargingState.IDLE
    return CHARGING_STATE.get(status, ChargingState.EV_CONNECTED)


@dataclass
class Connector:
    """One connector: facts plus the status last reported."""

    connector_id: int
    config: ChargePointConfig
    max_current_a: float
    clock: Callable[[], datetime]
    new_local_id: Callable[[], int]
    facts: Facts = field(default_factory=Facts)
    status: ConnectorStatus | None = None
    error_code: ChargePointErrorCode = ChargePointErrorCode.NO_ERROR
    limit_sent_a: float | None = None
    next_sample_at: datetime | None = None
    next_clock_at: datetime | None = None
    relay: RelayKeeper = field(default_factory=RelayKeeper)
    # meterStop after the opening (model/metering.py)
    switch_readings: bool = False  # the hardware publishes switch readings for this connector
    pending_stop: PendingStop | None = None
    last_switch: SwitchRead | None = None
    last_open_ts: datetime | None = None  # ts of the last `relay` state that said open
    # after a close: Charging/SuspendedEV wait for the relay confirmation (the pilot settles
    # before it), so a start reports one status, not SuspendedEV for a few ms before Charging
    closing_until: datetime | None = None
    tx_refresh: timedelta = timedelta(seconds=TX_ENERGY_REFRESH_S)
    energy_heard_at: datetime | None = None  # the energy manager's last limit (energy_limit.py)

    # --- derived ---------------------------------------------------------------------------

    @property
    def effective_limit_a(self) -> float:
        """The current the EV may draw now: 0 when disabled, else the lowest limit in force."""
        f = self.facts
        if not f.enabled:
            return 0.0
        policy = f.policy_limit_a
        if f.tx is not None and f.policy_override == f.tx.local_id:
            policy = None
        limits = [self.max_current_a, f.command_limit_a, f.profile_limit_a, policy,
                  f.energy_limit_a, self.config.connector_limit_a(self.connector_id)]
        return max(0.0, min(x for x in limits if x is not None))

    @property
    def limit_source(self) -> LimitSource:
        """Which input sets effective_limit_a (on a tie, the first in LimitSource's order)."""
        f = self.facts
        if not f.enabled:
            return LimitSource.DISABLED
        policy = f.policy_limit_a
        if f.tx is not None and f.policy_override == f.tx.local_id:
            policy = None
        energy = (LimitSource.ENERGY_FAIL_SAFE if f.energy_fail_safe is not None
                  else LimitSource.ENERGY_MANAGER)
        inputs = [(LimitSource.HARDWARE, self.max_current_a), (LimitSource.COMMAND,
                  f.command_limit_a), (LimitSource.PROFILE, f.profile_limit_a),
                  (LimitSource.OFF_PEAK, policy), (energy, f.energy_limit_a),
                  (LimitSource.CONFIG, self.config.connector_limit_a(self.connector_id))]
        low = self.effective_limit_a
        order = list(LimitSource)
        return min((src for src, amps in inputs if amps is not None and max(0.0, amps) <= low),
                   key=order.index, default=LimitSource.HARDWARE)

    @property
    def plugged(self) -> bool:
        """An EV is connected."""
        return self.facts.pilot in PLUGGED

    @property
    def usable(self) -> bool:
        """A new session may start here."""
        f = self.facts
        return (f.tx is None and f.armed is None and f.operative and f.station_operative
                and not f.restarting
                and not f.recovering
                and not blocking_fault(f) and f.pilot not in PILOT_FAULT)

    @property
    def awaiting_token(self) -> bool:
        """A transaction started at plug-in waits for its id token here (a tap, a remote start
        goes to it)."""
        f = self.facts
        return (f.tx is not None and f.tx.id_tag is None and f.operative
                and f.station_operative and not f.restarting and not blocking_fault(f))

    @property
    def relay_wanted(self) -> bool:
        """The relay is closed exactly while a transaction runs here, authorised with its EV
        (a transaction waiting for its id token or its EV keeps it open)."""
        return (self.facts.tx is not None and self.facts.tx.powered) or (
            self.facts.armed is not None)

    @property
    def may_close(self) -> bool:
        """The hardware would close the relay now: an EV on the pilot and no fault."""
        f = self.facts
        return not blocking_fault(f) and f.pilot in PLUGGED

    def set_relay(self, closed: bool, request_id: str | None = None) -> SetRelay:
        """Command the relay (remembered, so a lost command can be noticed and re-sent)."""
        self.relay.commanded(self.clock())
        return SetRelay(self.connector_id, closed, request_id)

    def on_relay(self, closed: bool, ts: datetime | None = None,
                 request_id: str | None = None) -> list[Effect]:
        """The relay position actually switched, as the hardware reports it."""
        self.facts.relay_closed = closed
        self.relay.observe(self.clock(), self._relay_verdict())
        if not closed and ts is not None:
            self.last_open_ts = ts
            p = self.pending_stop
            if p is not None and request_id is None and p.open_ts is None:
                p.open_ts = ts  # the hardware opened by itself: its reading will do too
        return []

    def on_switch_reading(self, r: SwitchRead) -> list[Effect]:
        """The register right after a relay switch: the one a waiting stop bills."""
        self.switch_readings = True
        self.last_switch = r
        tx = self.facts.tx
        if (r.trigger is MeterTrigger.RELAY_CLOSED and tx is not None
                and abs(r.reading.energy_wh - tx.meter_start_wh) > 1.0):
            log.warning("connector %d: register %.3f Wh when the relay closed, meterStart was "
                        "%.3f Wh", self.connector_id, r.reading.energy_wh, tx.meter_start_wh)
        p = self.pending_stop
        if p is not None and p.matches(r):
            if not r.settled:
                log.warning("connector %d: the meter still showed %.0f W after the relay "
                            "opened; meterStop is that reading's register", self.connector_id,
                            r.reading.power_w)
            return self._finish_stop(r.reading.energy_wh, r.reading)
        return []

    def flush_stop(self, *, timed_out: bool = False) -> list[Effect]:
        """The waiting stop goes out now with the estimated register (switch reading late)."""
        p = self.pending_stop
        if p is None:
            return []
        last = self.facts.meter
        value = estimate(last, p.view.energy_wh, p.stopped_at)
        log.warning("connector %d: no meter reading after the relay opened %s; meterStop "
                    "%.3f Wh estimated from the last reading (%s) plus power x age",
                    self.connector_id, "in time" if timed_out else "before the next start",
                    value, "none" if last is None else
                    f"{last.energy_wh:.3f} Wh, {last.power_w:.0f} W at {last.ts.isoformat()}")
        return self._finish_stop(value, last)

    def _finish_stop(self, register_wh: float, reading: MeterSnapshot | None) -> list[Effect]:
        p = self.pending_stop
        assert p is not None
        self.pending_stop = None
        meter_stop = max(register_wh, p.meter_start_wh)
        view = replace(p.view, energy_wh=meter_stop)
        return [SendStopTransaction(self.connector_id, p.local_id, p.id_tag, meter_stop,
                                    p.stopped_at, p.reason, p.started_at, p.meter_start_wh,
                                    reading, p.samples, transfer_end=p.transfer_end,
                                    departed=p.departed, charging_state=p.charging_state),
                PublishSession(self.connector_id, view, p.stopped_at, meter_stop, p.reason)]

    def _relay_verdict(self) -> Verdict:
        return verdict(want_closed=self.relay_wanted, reported=self.facts.relay_closed,
                       may_close=self.may_close)

    def reconcile_relay(self) -> list[Effect]:
        """Re-send the wanted relay state when the hardware reports otherwise past the grace
        (not while a transaction on disk is still to be resumed or stopped: its relay is left
        as the hardware kept it until then)."""
        want = self.relay_wanted
        if self.facts.recovering or not self.relay.due(self.clock(), self._relay_verdict()):
            return []
        attempt = self.relay.resends
        return [RelayMismatch(self.connector_id, want, attempt, attempt >= MAX_RESENDS),
                SetRelay(self.connector_id, want)]

    def resync(self) -> list[Effect]:
        """The hardware (re)started or reconnected: tell it again the limit (also outside a
        transaction: a limit restored from disk or set meanwhile), relay and LED. A connector
        still recovering (a transaction on disk to resume or stop): only its LED, its relay
        and limit are the kept transaction's."""
        if self.facts.recovering:
            return [self.led()] if self.status is not None else []
        self.limit_sent_a = self.effective_limit_a
        effects: list[Effect] = [SetCurrentLimit(self.connector_id, self.limit_sent_a)]
        if not self.relay_wanted or self.may_close:
            effects.append(self.set_relay(self.relay_wanted))
        if self.status is not None:
            effects.append(self.led())
        return effects

    def reset(self) -> list[Effect]:
        """This connector's EVSE alone resets (the central system asked for it; its transaction
        was stopped first): reported Unavailable while it does, its hardware told its state
        again (`resync`); the refresh after the event reports its status again. The station and
        the other connectors go on."""
        self.status = ConnectorStatus.UNAVAILABLE
        return [SendStatus(self.connector_id, self.status, self.error_code, self.facts.fault_info,
                           self.clock()),
                *self.resync()]

    def _status_now(self) -> ConnectorStatus:
        """The status to report now: derived, Charging/SuspendedEV held at the last status while
        a close waits for the relay's confirmation (bounded by closing_until)."""
        status = derive_status(self.facts, self.effective_limit_a)
        f = self.facts
        if self.closing_until is not None and not (
                f.tx is None or f.relay_closed or self.clock() >= self.closing_until) and (
                status in (ConnectorStatus.CHARGING, ConnectorStatus.SUSPENDED_EV)):
            return self.status or status
        return status

    def charging_state_now(self) -> ChargingState | None:
        """The running transaction's charging state now (None: none runs, or the protocol
        does not report it)."""
        if self.facts.tx is None or not self.config.reports_charging_state:
            return None
        return charging_state(self.facts, self._status_now())

    def _charging_state_changed(self) -> list[Effect]:
        """A running transaction whose charging state moved since it was last reported: one
        Updated ChargingStateChanged (2.0.1 E02/E06), durable and in order with it."""
        tx, state = self.facts.tx, self.charging_state_now()
        if tx is None or state is None or state == tx.charging_state:
            return []
        tx.charging_state = state
        return [SendTransactionUpdate(self.connector_id, tx.local_id,
                                      TxUpdate.CHARGING_STATE_CHANGED, self.clock(),
                                      charging_state=state)]

    def refresh(self) -> list[Effect]:
        """Report the status (and LED) if it changed, and a running transaction's charging
        state; keep the EVSE limit in step."""
        effects = self._energy_transfer()
        status = self._status_now()
        f = self.facts
        if self.closing_until is not None and (
                f.tx is None or f.relay_closed or self.clock() >= self.closing_until):
            self.closing_until = None
        effects += self._charging_state_changed()
        code = f.fault
        if code is ChargePointErrorCode.NO_ERROR and f.pilot in PILOT_FAULT:
            code = ChargePointErrorCode.EV_COMMUNICATION_ERROR
        if status != self.status or code != self.error_code:
            self.status, self.error_code = status, code
            effects.append(SendStatus(self.connector_id, status, code, f.fault_info, self.clock()))
            effects.append(self.led())
        if self.facts.tx is not None and self.limit_sent_a != self.effective_limit_a:
            effects += self.push_limit()
        return effects

    @property
    def flowing(self) -> bool:
        """Energy can flow now: the EV draws (pilot C/D), the relay is closed (or not
        reported), a current is offered and nothing blocks it. Our hardware topics give no
        better sign: the meter's power lags by a reading and an EV in C may draw 0 W a while."""
        f = self.facts
        return (f.pilot in DRAWING and f.relay_closed is not False and self.relay_wanted
                and self.effective_limit_a > 0 and not blocking_fault(f))

    def _energy_transfer(self) -> list[Effect]:
        """2.0.1 EnergyTransfer as start and stop point, checked after every event: an armed
        connector starts its transaction when energy flows (or gives up when its EV leaves or
        it may no longer charge); a transaction whose energy flowed ends when it stops, if
        stop_on_transfer_end."""
        f = self.facts
        armed = f.armed
        if armed is not None:
            if not self.plugged or blocking_fault(f) or not (
                    f.operative and f.station_operative) or f.restarting:
                return self.disarm()
            if not self.flowing:
                return []
            f.armed = None
            return self.start_transaction(armed.id_tag, self.new_local_id(),
                                          reservation_id=armed.reservation_id,
                                          point=TxStart.ENERGY_TRANSFER,
                                          remote_start_id=armed.remote_start_id)
        tx = f.tx
        if tx is None or not tx.powered:
            return []
        if self.flowing:
            tx.transferring = True
            return []
        if not (tx.transferring and self.config.stop_on_transfer_end):
            return []
        if not self.plugged:
            return self.stop_transaction(StopReason.EV_DISCONNECTED,
                                         transfer_end=TransferEnd.EV_DISCONNECTED)
        end = (TransferEnd.EV_SUSPENDED if f.pilot not in DRAWING
               else TransferEnd.EVSE_SUSPENDED)
        return self.stop_transaction(StopReason.OTHER, transfer_end=end)

    def arm(self, id_tag: IdToken, reservation_id: int | None,
            limit_a: float | None, remote_start_id: int | None = None) -> list[Effect]:
        """Authorised with the EV there and EnergyTransfer the only start point: the relay
        closes and the EVSE offers its current, the transaction waits for the energy."""
        f = self.facts
        f.armed, f.waiting, f.finishing, f.reservation = (
            Armed(id_tag, reservation_id, limit_a, remote_start_id), None, False, None)
        if f.relay_closed is False:
            self.closing_until = deadline(self.clock())
        return [self.set_relay(True), *self.push_limit()]

    def disarm(self) -> list[Effect]:
        """An armed connector gives up (its id token presented again, the EV gone, a fault):
        the relay opens; no transaction was started, none is reported."""
        if self.facts.armed is None:
            return []
        self.facts.armed = None
        self.facts.finishing = self.plugged
        return [self.set_relay(False)]

    def led(self) -> SetLed:
        """The LED for the current status, at the configured intensity and blink repeat."""
        assert self.status is not None
        color, pattern = LED_FOR_STATUS[self.status]
        repeat = self.config.blink_repeat if pattern is LedPattern.BLINK else None
        return SetLed(self.connector_id, color, pattern, self.config.light_intensity_pct, repeat)

    def idle_limit(self, *, force: bool = False) -> list[Effect]:
        """Outside a transaction the EVSE is kept at the effective limit too, so a limit set,
        restored from disk (command or charging profile) or lowered while no session runs
        reaches the hardware at once, not only when the next session starts (issue 13)."""
        if self.facts.tx is not None or self.facts.recovering:
            return []
        amps = self.effective_limit_a
        if not force and self.limit_sent_a == amps:
            return []
        self.limit_sent_a = amps
        return [SetCurrentLimit(self.connector_id, amps)]

    def push_limit(self) -> list[Effect]:
        """Send the effective limit to the EVSE and the bus."""
        self.limit_sent_a = self.effective_limit_a
        return [SetCurrentLimit(self.connector_id, self.limit_sent_a),
                PublishCharging(self.connector_id, self.facts.enabled, self.limit_sent_a)]

    # --- transactions ------------------------------------------------------------------------

    def start_transaction(self, id_tag: IdToken | None, local_id: int, *,
                          reservation_id: int | None = None,
                          powered: bool = True,
                          point: TxStart | None = None,
                          remote_start_id: int | None = None) -> list[Effect]:
        """Begin charging at once; StartTransaction goes to the durable queue. powered False:
        a transaction that starts before its id token (id_tag None) or its EV: the relay stays
        open until both are there (`_power_up`). remote_start_id: a remote start's id, carried
        by the start (its record is durable, so the id is too)."""
        effects = self.flush_stop()  # the previous stop goes out first, in order
        now = self.clock()
        meter = self.facts.meter.energy_wh if self.facts.meter else 0.0
        tx = Transaction(local_id, id_tag, now, meter, meter, powered=powered)
        if not powered and id_tag is not None:  # started at authorisation: the EV has a while
            tx.ev_deadline = now + timedelta(seconds=self.config.connection_timeout_s)
        f = self.facts
        f.tx, f.waiting, f.finishing, f.reservation = tx, None, False, None
        self._schedule_samples(now)
        self.limit_sent_a = None
        if powered and f.relay_closed is False:  # the hardware reports its relay: wait for it
            self.closing_until = deadline(now)
        limit, charging = self.push_limit()
        tx.charging_state = self.charging_state_now()
        start = SendStartTransaction(self.connector_id, local_id, id_tag, meter, now,
                                     reservation_id, self.plugged, point, tx.charging_state,
                                     remote_start_id)
        if point is TxStart.ENERGY_TRANSFER:  # the relay closed already, the energy flows
            tx.transferring = True
        if not powered or point is TxStart.ENERGY_TRANSFER:
            return [*effects, start, limit, self._publish_tx(now),
                    charging]
        return [*effects, start, limit, self.set_relay(True, request_id(local_id, "start")),
                self._publish_tx(now), charging]

    def _power_up(self, tx: Transaction, reason: TxUpdate,
                  remote_start_id: int | None = None) -> list[Effect]:
        """A transaction that started early got what it lacked (its id token, or its EV): the
        central system hears it, and once authorised with the EV there the relay closes."""
        now = self.clock()
        effects: list[Effect] = []
        if tx.id_tag is not None and self.plugged and not tx.powered:
            tx.powered, tx.ev_deadline = True, None
            if self.facts.relay_closed is False:
                self.closing_until = deadline(now)
            effects += [self.set_relay(True, request_id(tx.local_id, "start")),
                        *self.push_limit()]
        tx.charging_state = self.charging_state_now()  # this update reports it
        update = SendTransactionUpdate(self.connector_id, tx.local_id, reason, now,
                                       tx.id_tag if reason is TxUpdate.AUTHORIZED else None,
                                       tx.charging_state, remote_start_id)
        return [update, *effects, self._publish_tx(now)]

    def stop_transaction(self, reason: StopReason, id_tag: IdToken | None = None, *,
                         timed_out: bool = False,
                         transfer_end: TransferEnd | None = None,
                         departed: bool = False) -> list[Effect]:
        """Stop charging; StopTransaction goes to the durable queue once the register after the
        opening is known (model/metering.py), at once when the hardware publishes no switch
        readings (meterStop = the last register then) or the relay never closed for it."""
        tx = self.facts.tx
        if tx is None:
            return []
        if self.switch_readings and tx.powered:
            return self._stop_after_opening(reason, id_tag, tx, transfer_end, departed)
        now = self.clock()
        meter_stop = self.facts.meter.energy_wh if self.facts.meter else tx.energy_wh
        meter_stop = max(meter_stop, tx.meter_start_wh)
        tx.energy_wh = meter_stop
        state = self._end_state()
        f = self.facts
        f.tx = None
        f.finishing = self.plugged
        self.next_sample_at = None  # clock-aligned values go on outside transactions too
        self.limit_sent_a = None
        if f.scheduled_operative is not None:
            f.operative, f.scheduled_operative = f.scheduled_operative, None
        return [self.set_relay(False),
                SendStopTransaction(self.connector_id, tx.local_id, id_tag, meter_stop, now,
                                    reason, tx.started_at, tx.meter_start_wh, self.facts.meter,
                                    tuple(tx.samples), timed_out, transfer_end, departed,
                                    state),
                PublishTransaction(self.connector_id, None),
                PublishSession(self.connector_id, tx.view(), now, meter_stop, reason)]

    def _end_state(self) -> ChargingState | None:
        """The charging state a transaction ends in: nothing flows any more, the EV still
        connected or not (None: not reported)."""
        if not self.config.reports_charging_state:
            return None
        return ChargingState.EV_CONNECTED if self.plugged else ChargingState.IDLE

    def _end(self) -> None:
        f = self.facts
        f.tx = None
        f.finishing = self.plugged
        self.next_sample_at = None  # clock-aligned values go on outside transactions too
        self.limit_sent_a = None
        if f.scheduled_operative is not None:
            f.operative, f.scheduled_operative = f.scheduled_operative, None

    def _stop_after_opening(self, reason: StopReason, id_tag: IdToken | None, tx: Transaction,
                            transfer_end: TransferEnd | None = None,
                            departed: bool = False) -> list[Effect]:
        now = self.clock()
        rid = request_id(tx.local_id, "stop")
        p = PendingStop(rid, deadline(now), tx.local_id, id_tag, now, reason, tx.started_at,
                        tx.meter_start_wh, tuple(tx.samples), tx.view(),
                        transfer_end=transfer_end, departed=departed,
                        charging_state=self._end_state())
        if self.facts.relay_closed is False:  # the hardware opened already (unplug, fault)
            p.open_ts = self.last_open_ts
        self._end()
        self.pending_stop = p
        effects: list[Effect] = [self.set_relay(False, rid),
                                 PublishTransaction(self.connector_id, None)]
        if self.last_switch is not None and p.matches(self.last_switch):
            effects += self._finish_stop(self.last_switch.reading.energy_wh,
                                         self.last_switch.reading)
        return effects

    def _schedule_samples(self, now: datetime) -> None:
        interval = self.config.sample_interval_s
        self.next_sample_at = now + timedelta(seconds=interval) if interval > 0 else None
        aligned = self.config.clock_aligned_interval_s
        self.next_clock_at = _next_aligned(now, aligned) if aligned > 0 else None

    # --- events ------------------------------------------------------------------------------

    def on_pilot(self, state: PilotState) -> list[Effect]:
        """Plug in/out, EV starts/stops drawing, pilot faults."""
        was_plugged = self.plugged
        self.facts.pilot = state
        effects: list[Effect] = []
        tx = self.facts.tx
        if was_plugged and not self.plugged:
            self.facts.finishing = False
            effects += self.disarm()
            self.facts.finishing = False
            # a transaction started at plug-in and never authorised ends with its EV anyway
            if tx is not None and (self.config.stop_on_ev_disconnect or tx.id_tag is None):
                effects += self.stop_transaction(StopReason.EV_DISCONNECTED)
                self.facts.finishing = False
        if state in PILOT_FAULT and self.facts.tx is not None:
            effects += self.stop_transaction(StopReason.EMERGENCY_STOP)
        waiting = self.facts.waiting
        if not was_plugged and self.plugged:
            tx = self.facts.tx
            if tx is not None and not tx.powered and (tx.id_tag is not None or tx.in_bay):
                effects += self._power_up(tx, TxUpdate.EV_CONNECTED)  # started earlier
            elif waiting is not None and self.usable:
                effects += self.authorised(waiting.id_tag, limit_a=waiting.limit_a,
                                           remote_start_id=waiting.remote_start_id)
            elif (tx is None and self.usable and self.facts.reservation is None
                  and TxStart.EV_CONNECTED in self.config.tx_start_points):
                effects += self.start_transaction(None, self.new_local_id(), powered=False)
        return effects

    def on_bay(self, occupied: bool) -> list[Effect]:
        """The bay detector: a vehicle arriving starts a transaction with TxStart.PARKING_BAY
        (no EV connection, no id token yet: both follow as updates); leaving ends the running
        transaction if stop_on_bay_vacated."""
        was, self.facts.bay = self.facts.bay, occupied
        f = self.facts
        if occupied and not was and f.tx is None and self.usable and f.reservation is None \
                and TxStart.PARKING_BAY in self.config.tx_start_points:
            effects = self.start_transaction(None, self.new_local_id(), powered=False,
                                             point=TxStart.PARKING_BAY)
            if f.tx is not None:
                f.tx.in_bay = True
            return effects
        if not occupied and was and f.tx is not None and self.config.stop_on_bay_vacated:
            return self.stop_transaction(StopReason.EV_DISCONNECTED, departed=True)
        return []

    def on_meter(self, reading: MeterSnapshot) -> list[Effect]:
        """Keep the latest reading; a running transaction shows its energy."""
        self.facts.meter = reading
        tx = self.facts.tx
        if tx is None:
            return []
        tx.energy_wh = max(reading.energy_wh, tx.meter_start_wh)
        if tx.energy_cap_wh is not None and tx.delivered_wh >= tx.energy_cap_wh:
            return self.stop_transaction(StopReason.DE_AUTHORIZED)  # MaxEnergyOnInvalidId
        return self._tx_energy(self.clock())

    def _tx_energy(self, now: datetime) -> list[Effect]:
        """The transaction again if its energy grew and the last publish is old enough."""
        tx = self.facts.tx
        if tx is None or tx.energy_wh == tx.published_wh or (
                tx.published_at is not None and now < tx.published_at + self.tx_refresh):
            return []
        return [self._publish_tx(now)]

    def _publish_tx(self, now: datetime) -> PublishTransaction:
        tx = self.facts.tx
        assert tx is not None
        tx.published_at, tx.published_wh = now, tx.energy_wh
        return PublishTransaction(self.connector_id, tx.view())

    def tx_energy_due(self) -> datetime | None:
        """When the tick owes the bus the transaction's grown energy (None: nothing owed)."""
        tx = self.facts.tx
        if tx is None or tx.energy_wh == tx.published_wh or tx.published_at is None:
            return None
        return tx.published_at + self.tx_refresh

    def invalidated(self, local_id: int) -> list[Effect]:
        """The central system did not accept the started transaction's id tag (OCPP 1.6 4.8).

        stop_on_invalid_id stops at once; otherwise charging goes on until
        max_energy_on_invalid_id_wh were delivered in the transaction, then stops (DeAuthorized).
        """
        tx = self.facts.tx
        if tx is None or tx.local_id != local_id:
            return []
        cap = float(self.config.max_energy_on_invalid_id_wh)
        if self.config.stop_on_invalid_id or tx.delivered_wh >= cap:
            return self.stop_transaction(StopReason.DE_AUTHORIZED)
        tx.energy_cap_wh = cap
        return []

    def on_fault(self, code: ChargePointErrorCode, info: str | None) -> list[Effect]:
        """A hardware fault that blocks energy delivery stops a running transaction (EVSE safety
        first); a warning-class error is only reported."""
        self.facts.fault, self.facts.fault_info = code, info
        if blocking_fault(self.facts) and self.facts.tx is not None:
            return self.stop_transaction(StopReason.OTHER)
        return []

    def next_due(self, now: datetime, *, relay: bool = True) -> datetime | None:
        """The next instant on_tick (or refresh) has something to do for this connector; now if
        overdue, None if nothing is in sight. relay: count the relay re-send."""
        f = self.facts
        dues = [f.waiting.until if f.waiting is not None else None,
                f.reservation.expiry if f.reservation is not None else None,
                self.pending_stop.deadline if self.pending_stop is not None else None,
                self.next_sample_at if f.tx is not None and f.meter is not None else None,
                self.closing_until, self.tx_energy_due(),
                self.relay.next_due(now, self._relay_verdict())
                if relay and not f.recovering else None]
        aligned = self.config.clock_aligned_interval_s
        if aligned > 0:
            dues.append(self.next_clock_at or now)
        elif self.next_clock_at is not None:
            dues.append(now)  # the tick forgets it
        return min((d for d in dues if d is not None), default=None)

    def on_tick(self) -> list[Effect]:
        """ConnectionTimeOut, reservation expiry and meter sampling."""
        now = self.clock()
        f = self.facts
        effects: list[Effect] = []
        if f.waiting is not None and now >= f.waiting.until:
            f.waiting = None
        if f.reservation is not None and now >= f.reservation.expiry:
            effects.append(ReservationExpired(self.connector_id, f.reservation.reservation_id))
            f.reservation = None
        if self.pending_stop is not None and now >= self.pending_stop.deadline:
            effects += self.flush_stop(timed_out=True)
        effects += self._tx_energy(now)
        if self.next_sample_at is not None and self.config.sample_interval_s <= 0:
            self.next_sample_at = None  # MeterValueSampleInterval set to 0: no more samples
        if f.tx is not None and f.tx.ev_deadline is not None and now >= f.tx.ev_deadline:
            effects += self.stop_transaction(StopReason.OTHER, timed_out=True)  # no EV came
        if f.tx is not None and f.meter is not None and self.next_sample_at is not None and (
                now >= self.next_sample_at):
            interval = timedelta(seconds=self.config.sample_interval_s)
            while self.next_sample_at <= now:
                self.next_sample_at += interval
            effects.append(SendMeterValues(self.connector_id, f.tx.local_id, f.meter, now,
                                           charging_state=f.tx.charging_state))
            if self.config.stop_sampled_measurands:
                f.tx.samples.append(Sample(now, f.meter, ReadingContext.PERIODIC))
        return effects + self._clock_aligned(now)

    def _clock_aligned(self, now: datetime) -> list[Effect]:
        """Clock-aligned meter values at every whole interval since midnight UTC, in and outside
        transactions (OCPP 1.6 3.12.2)."""
        aligned = self.config.clock_aligned_interval_s
        if aligned <= 0:
            self.next_clock_at = None
            return []
        if self.next_clock_at is None:
            self.next_clock_at = _next_aligned(now, aligned)
            return []
        if now < self.next_clock_at:
            return []
        due = self.next_clock_at  # the values are stamped with the interval boundary
        self.next_clock_at = _next_aligned(now, aligned)
        f = self.facts
        if f.meter is None:
            return []
        effects: list[Effect] = []
        if self.config.aligned_measurands:
            effects.append(SendMeterValues(self.connector_id, f.tx.local_id if f.tx else None,
                                           f.meter, due, ReadingContext.CLOCK,
                                           f.tx.charging_state if f.tx else None))
        if f.tx is not None and self.config.stop_aligned_measurands:
            f.tx.samples.append(Sample(due, f.meter, ReadingContext.CLOCK))
        return effects

    def authorised(self, id_tag: IdToken, *, limit_a: float | None = None,
                   remote_start_id: int | None = None) -> list[Effect]:
        """An idTag may charge here: start now if plugged in (or, with TxStart.AUTHORIZED, now
        anyway), else wait for the plug; a transaction started at plug-in gets its token.
        remote_start_id (a remote start's): the first transaction event this causes carries it
        (the Started, or the Updated giving a running transaction its token; kept while
        waiting for the EV or for the energy)."""
        tx = self.facts.tx
        if tx is not None:
            if tx.id_tag is not None:
                return []
            if limit_a is not None:
                self.facts.profile_limit_a = limit_a
            tx.id_tag = id_tag
            return self._power_up(tx, TxUpdate.AUTHORIZED, remote_start_id)
        reservation = self.facts.reservation
        reservation_id = reservation.reservation_id if reservation else None
        if limit_a is not None:
            self.facts.profile_limit_a = limit_a
        if self.plugged and self.config.tx_start_points == {TxStart.ENERGY_TRANSFER}:
            return self.arm(id_tag, reservation_id, limit_a, remote_start_id)
        if self.plugged:
            return self.start_transaction(id_tag, self.new_local_id(),
                                          reservation_id=reservation_id,
                                          remote_start_id=remote_start_id)
        if TxStart.AUTHORIZED in self.config.tx_start_points:
            return self.start_transaction(id_tag, self.new_local_id(),
                                          reservation_id=reservation_id, powered=False,
                                          remote_start_id=remote_start_id)
        timeout = timedelta(seconds=self.config.connection_timeout_s)
        self.facts.waiting = Waiting(id_tag, self.clock() + timeout, limit_a, remote_start_id)
        return []

    def resume(self, tx: Transaction) -> list[Effect]:
        """A transaction the gateway was restarted in the middle of goes on: the hardware kept
        the relay closed for the same plug-in (station.py `_recover`). Nothing is sent to the
        central system for it (OCPP 2.0.1 has no trigger reason for a resumed transaction;
        2.1's TxResumed is not in 2.0.1): its meter values simply continue. The relay is not
        commanded (it is closed: a command would be a new switch, with a switch reading)."""
        f = self.facts
        f.recovering = False
        tx.powered = True
        tx.transferring = self.flowing or tx.transferring
        f.tx, f.waiting, f.finishing, f.reservation, f.armed = tx, None, False, None, None
        now = self.clock()
        self._schedule_samples(now)
        self.limit_sent_a = None
        tx.charging_state = self.charging_state_now()  # as it is now; not an event of its own
        return [*self.push_limit(), self._publish_tx(now)]

    def answered(self, local_id: int, transaction_id: str) -> list[Effect]:
        """The central system answered the start: the running transaction gets its real id."""
        tx = self.facts.tx
        if tx is None or tx.local_id != local_id:
            return []
        self.facts.tx = replace(tx, transaction_id=transaction_id)
        return [self._publish_tx(self.clock())]


def _next_aligned(now: datetime, interval_s: int) -> datetime:
    """The next instant after now that is a whole multiple of interval_s since midnight (3.12)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (now - midnight).total_seconds()
    return midnight + timedelta(seconds=(int(elapsed // interval_s) + 1) * interval_s)
