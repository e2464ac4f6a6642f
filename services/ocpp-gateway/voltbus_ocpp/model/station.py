"""The station: its connectors, the RFID reader shared by them, authorisation and remote requests.

`StationModel.handle(event)` is the only entry point: it routes the event through `HANDLERS`,
then lets every connector report a changed status. It returns the effects to carry out, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from voltbus_common.enums import CommandName, CommandStatus, ConnectorStatus, StopReason
from voltbus_common.models import IdTag
from voltbus_ocpp.model.authorisation import AuthEntry, Authoriser, Decision
from voltbus_ocpp.model.config import ChargePointConfig
from voltbus_ocpp.model.connector import (
    TX_ENERGY_REFRESH_S,
    Connector,
    Reservation,
    Transaction,
)
from voltbus_ocpp.model.energy_limit import (
    EnergyGuard,
    EnergyLimit,
    EnergyManagerStatus,
    SiteLinkChanged,
)
from voltbus_ocpp.model.events import (
    AnswerCommand,
    AuthorizeAnswered,
    BayChanged,
    CardPresented,
    ChangeAvailability,
    Command,
    ConfigLimitChanged,
    Effect,
    Event,
    HardwareFault,
    HardwareStatus,
    LinkChanged,
    MeterUpdated,
    PilotChanged,
    ProfileLimit,
    PublishCharging,
    PublishSession,
    PublishTransaction,
    Recovered,
    RelayChanged,
    RemoteStart,
    RemoteStop,
    Reply,
    Reset,
    RestartRequested,
    Resumed,
    SendAuthorize,
    SendMeterValues,
    SendStatus,
    SendStopTransaction,
    SendTransactionUpdate,
    StartAnswered,
    Tick,
    TransactionView,
    TriggerTransaction,
    Unlock,
)
from voltbus_ocpp.model.external_limits import ExternalLimits
from voltbus_ocpp.model.metering import SwitchRead
from voltbus_ocpp.model.offpeak import OffPeak, OffPeakChanged
from voltbus_ocpp.model.results import AuthStatus, Outcome, ReadingContext, TxUpdate
from voltbus_ocpp.model.tokens import IdToken

# Events whose handler changes the facts of their own connector only (and station-wide
# counters such as the next local id, which no status is derived from). Anything that changes
# other connectors' facts out of band (reservations, availability, restarts) dispatches a Tick,
# which re-derives every connector.
log = logging.getLogger(__name__)
_ID_TAG: TypeAdapter[str] = TypeAdapter(IdTag)


def _carried(tag: IdToken) -> bool:
    """The bus contract can carry this id token (TransactionState, SessionSummary: IdTag, 1..36
    printable characters; a NoAuthorization token, empty, is shown as no id tag)."""
    if tag.free:
        return True
    try:
        _ID_TAG.validate_python(tag.value)
    except ValidationError:
        return False
    return True


ONE_CONNECTOR: frozenset[type[Event]] = frozenset({
    PilotChanged, BayChanged, MeterUpdated, RelayChanged, SwitchRead, HardwareFault, ProfileLimit,
    EnergyLimit, ConfigLimitChanged})
# Events that set or release a limit of a system outside the central system (K11-K13): a
# transaction's charging rate they move is reported as ChargingRateChanged.
EXTERNAL_LIMIT_EVENTS: frozenset[type[Event]] = frozenset({EnergyLimit, OffPeakChanged,
                                                           EnergyManagerStatus, SiteLinkChanged})


@dataclass(frozen=True)
class Pending:
    """An Authorize in flight, and who asked for it."""

    connector: int
    request_id: str | None
    command: CommandName | None
    limit_a: float | None = None
    stop_for_parent: str | None = None  # authorising a tag to stop a transaction of this group
    remote_start_id: int | None = None  # a remote start's (2.0.1 remoteStartId)


class StationModel:
    """All connectors of one station."""

    def __init__(self, connectors: int, config: ChargePointConfig, authoriser: Authoriser, *,
                 max_current_a: float, clock: Callable[[], datetime], first_local_id: int = 1,
                 unlock_supported: bool = False, relay_grace_s: float = 3.0,
                 time_scale: float = 1.0, energy_guard: EnergyGuard | None = None) -> None:
        self.config = config
        # the energy manager's limits hold while refreshed (model/energy_limit.py)
        self.energy = energy_guard or EnergyGuard()
        self.authoriser = authoriser
        self.clock = clock
        self.max_current_a = max_current_a
        self.unlock_supported = unlock_supported
        self.online = False
        self.hardware_online: bool | None = None  # service/hardware/status; None: not heard
        self.pending: dict[IdToken, Pending] = {}
        self.offpeak = OffPeak()  # off-peak charging policy (model/offpeak.py)
        self.external = ExternalLimits()  # what external limits were reported (K11-K13)
        # ChangeAvailability of connector 0 (OCPP 1.6 5.2): the station as a whole, beside each
        # connector's own availability; a change waits for running transactions (scheduled)
        self.station_operative = True
        self.station_scheduled: bool | None = None
        self._next_local_id = first_local_id
        self.connectors = {
            n: Connector(n, config, max_current_a, clock, self.new_local_id)
            for n in range(1, connectors + 1)}
        for c in self.connectors.values():
            c.relay.grace_s = relay_grace_s
            c.tx_refresh = timedelta(seconds=TX_ENERGY_REFRESH_S * time_scale)
        self.HANDLERS: dict[type[Event], Callable[[Any], list[Effect]]] = {
            PilotChanged: self._on_pilot,
            BayChanged: lambda e: self.connectors[e.connector].on_bay(e.occupied),
            MeterUpdated: lambda e: self.connectors[e.connector].on_meter(e.reading),
            RelayChanged: self._on_relay,
            SwitchRead: lambda e: self.connectors[e.connector].on_switch_reading(e),
            HardwareFault: lambda e: self.connectors[e.connector].on_fault(e.code, e.info),
            CardPresented: self._on_card,
            AuthorizeAnswered: self._on_authorize_answer,
            StartAnswered: self._on_start_answer,
            Command: self._on_command,
            RemoteStart: self._on_remote_start,
            RemoteStop: self._on_remote_stop,
            TriggerTransaction: self._on_trigger_transaction,
            ChangeAvailability: self._on_change_availability,
            Unlock: self._on_unlock,
            Reset: self._on_reset,
            ProfileLimit: self._on_profile_limit,
            ConfigLimitChanged: lambda e: self._charging(self.connectors[e.connector]),
            LinkChanged: self._on_link,
            HardwareStatus: self._on_hardware_status,
            Tick: self._on_tick,
            Recovered: self._on_recovered,
            Resumed: self._on_resumed,
            OffPeakChanged: lambda e: self.offpeak.apply(e, self.connectors.values()),
            EnergyLimit: lambda e: self.energy.heard(self.connectors[e.connector], e,
                                                     self.clock()),
            EnergyManagerStatus: lambda e: self.energy.on_status(self.connectors, e),
            SiteLinkChanged: lambda e: self.energy.on_site_link(self.connectors, e),
        }

    def new_local_id(self) -> int:
        """The next local transaction number (persisted by the caller through the effects)."""
        value = self._next_local_id
        self._next_local_id += 1
        return value

    def handle(self, event: Event) -> list[Effect]:
        """Apply one event; the effects to carry out, in order. An event of one connector
        (ONE_CONNECTOR) re-derives only that connector's status: the others' facts did not
        move (issue 14: a meter reading cost O(connectors) per station). A scheduled station
        availability can reach every connector when a transaction ends: then all are."""
        scheduled = self.station_scheduled is not None
        one = self.connectors.get(event.connector) if (  # type: ignore[attr-defined]
            type(event) in ONE_CONNECTOR and not scheduled) else None
        scope = list(self.connectors.values()) if one is None else [one]
        rates = {c.connector_id: c.effective_limit_a for c in scope if c.facts.tx is not None}
        self.energy.moved = False
        effects = self.HANDLERS[type(event)](event)
        self._apply_scheduled_station()
        for connector in scope:
            effects += connector.refresh()
        pct, now = self.config.limit_change_significance_pct, self.clock()
        effects += self.external.reports(
            self.connectors.values(), self.offpeak.holding, pct, now,
            None if one is None else {one.connector_id})
        effects += self.external.rate_changes(  # after the limit's report (K11/K13 order)
            scope, rates, type(event) in EXTERNAL_LIMIT_EVENTS or self.energy.moved, pct, now)
        return self.offpeak.annotate(effects, self.connectors)

    def startup(self) -> list[Effect]:
        """The first statuses, charging state and (empty) transactions."""
        effects: list[Effect] = []
        for c in self.connectors.values():
            effects += c.refresh()
            effects += c.idle_limit(force=True)  # a limit restored from disk, at once
            effects.append(PublishCharging(c.connector_id, c.facts.enabled, c.effective_limit_a))
            if c.facts.tx is None:
                effects.append(PublishTransaction(c.connector_id, None))
        return self.offpeak.annotate(effects, self.connectors)

    # --- local events --------------------------------------------------------------------------

    def _on_relay(self, event: RelayChanged) -> list[Effect]:
        return self.connectors[event.connector].on_relay(event.closed, event.ts, event.request_id)

    def _on_hardware_status(self, event: HardwareStatus) -> list[Effect]:
        """Commands sent while the hardware was away are lost (clean session): send them again."""
        self.hardware_online = event.online
        if not event.online:
            return []
        return [x for c in self.connectors.values() for x in c.resync()]

    def _on_tick(self, _event: Tick) -> list[Effect]:
        effects = [x for c in self.connectors.values() for x in c.on_tick()]
        effects += self.energy.on_tick(self.connectors, self.clock())
        if self.hardware_online is not False:  # re-sends to an absent service would be lost
            effects += [x for c in self.connectors.values() for x in c.reconcile_relay()]
        return effects

    def next_due(self, now: datetime) -> datetime | None:
        """The next instant a Tick has something to do (None: nothing in sight)."""
        relay = self.hardware_online is not False  # as _on_tick: no re-sends to an absent one
        dues = [c.next_due(now, relay=relay) for c in self.connectors.values()]
        dues.append(self.energy.next_due(self.connectors))
        return min((d for d in dues if d is not None), default=None)

    def _on_link(self, event: LinkChanged) -> list[Effect]:
        self.online = event.online
        return []

    def _on_profile_limit(self, event: ProfileLimit) -> list[Effect]:
        c = self.connectors[event.connector]
        c.facts.profile_limit_a = event.amps
        return [] if c.facts.tx is not None else [
            *c.idle_limit(), PublishCharging(c.connector_id, c.facts.enabled, c.effective_limit_a)]

    def _too_long(self, tag: IdToken) -> str | None:
        """Why the protocol spoken cannot carry this token (OCPP 1.6: idTag is CiString20), or
        None when it can."""
        limit = self.config.id_token_max_length
        if len(tag.value) <= limit:
            return None
        return (f"id tag {tag} has {len(tag.value)} characters; the central system's protocol "
                f"takes at most {limit}")

    def _on_card(self, event: CardPresented) -> list[Effect]:
        tag = event.id_tag
        if not self.config.id_token_types:  # 1.6: a card is a card, whatever its reader
            tag = IdToken(tag.value)
        too_long = self._too_long(tag)
        if too_long is not None:  # Authorize cannot carry it: rejected like an invalid card
            log.warning("card rejected: %s", too_long)
            return []
        for c in self.connectors.values():
            if c.facts.armed is not None and c.facts.armed.id_tag == tag:
                return c.disarm()  # presented again before the energy flowed
            if c.facts.tx is not None and c.facts.tx.id_tag == tag:
                return c.stop_transaction(StopReason.LOCAL, tag)
        for c in self.connectors.values():
            if c.facts.waiting is not None and c.facts.waiting.id_tag == tag:
                c.facts.waiting = None
                return []
        if tag in self.pending:
            return []
        target = self.choose_connector(tag)
        if target is not None:
            return self._authorise(tag, target, None, None)
        reserved = self._reserved_for_a_group(tag)
        if reserved is not None:  # Authorize tells its parent idTag (1.6 5.13)
            self.pending[tag] = Pending(reserved.connector_id, None, None)
            return [SendAuthorize(tag)]
        return self._stop_by_group(tag)

    def _asks_for_group(self, c: Connector, tag: IdToken) -> bool:
        """c is free but for a reservation with a parent idTag that the local list/cache cannot
        show the tag belongs to, and the central system can be asked: 1.6 5.13, the Charge
        Point SHALL send an Authorize.req for the incoming idTag to learn its parent; its
        answer decides (a RemoteStart or a bus start command as well as a tap)."""
        r = c.facts.reservation
        return (self.online and r is not None and bool(r.parent_id_tag) and tag != r.id_tag
                and tag not in self.pending and not self._reservation_allows(c, tag)
                and self._why_not_free(c, r.id_tag) is None)

    def _ask_parent(self, tag: IdToken, c: Connector, request_id: str | None,
                    command: CommandName | None, limit_a: float | None = None,
                    remote_start_id: int | None = None) -> list[Effect]:
        """Authorize the tag: its answer's status and parent idTag decide the reservation."""
        self.pending[tag] = Pending(c.connector_id, request_id, command, limit_a,
                                    remote_start_id=remote_start_id)
        return [SendAuthorize(tag)]

    def _reserved_for_a_group(self, tag: IdToken) -> Connector | None:
        """A free connector reserved with a parent idTag, for a tag whose parent is in neither
        the local list nor the cache, while the central system can be asked: OCPP 1.6 5.13
        "the Charge Point SHALL send an Authorize.req for the incoming idTag", whose answer
        carries the parent."""
        if not self.online or self.authoriser.known(tag) is not None:
            return None
        return next((c for c in self.connectors.values()
                     if c.usable and c.facts.waiting is None and c.facts.reservation is not None
                     and c.facts.reservation.parent_id_tag), None)

    def _stop_by_group(self, tag: IdToken) -> list[Effect]:
        """No free connector: a tag of the same group (parentIdTag) may stop a transaction."""
        for c in self.connectors.values():
            tx = c.facts.tx
            parent = self._parent_of(tx.id_tag) if tx is not None and tx.id_tag else None
            if parent is None:
                continue
            known = self.authoriser.known(tag)
            valid = known is not None and known.valid(self.clock())
            if not self.online or (valid and self.config.local_pre_authorize):
                if valid and known is not None and known.parent_id_tag == parent:
                    return c.stop_transaction(StopReason.LOCAL, tag)
                return []
            self.pending[tag] = Pending(c.connector_id, None, None, stop_for_parent=parent)
            return [SendAuthorize(tag)]
        return []

    def _parent_of(self, tag: IdToken) -> str | None:
        entry = self.authoriser.known(tag)
        return entry.parent_id_tag if entry is not None else None

    def choose_connector(self, tag: IdToken) -> Connector | None:
        """Where a tap (or a remote start without connector) goes: reserved, plugged, then free."""
        free = [c for c in self.connectors.values()
                if (c.usable or c.awaiting_token) and c.facts.waiting is None
                and self._reservation_allows(c, tag)]
        reserved = [c for c in free if c.facts.reservation is not None]
        awaiting = [c for c in free if c.awaiting_token]  # started at plug-in, no token yet
        plugged = [c for c in free if c.plugged]
        best = reserved or awaiting or plugged or free
        return best[0] if best else None

    def _reservation_allows(self, c: Connector, tag: IdToken | None,
                            parent: str | None = None) -> bool:
        """The reservation's own idTag, or one whose parent idTag (given, from an Authorize
        answer, else from the local list/cache) matches the reservation's parent."""
        r = c.facts.reservation
        if r is None or tag == r.id_tag:
            return True
        if parent is None:
            entry = self.authoriser.known(tag) if tag else None
            parent = entry.parent_id_tag if entry is not None else None
        return bool(r.parent_id_tag and parent == r.parent_id_tag)

    def _authorise(self, tag: IdToken, c: Connector, request_id: str | None,
                   command: CommandName | None, limit_a: float | None = None,
                   remote_start_id: int | None = None) -> list[Effect]:
        decision = self.authoriser.decide(tag, online=self.online, now=self.clock())
        pending = Pending(c.connector_id, request_id, command, limit_a,
                          remote_start_id=remote_start_id)
        if decision is Decision.ASK:
            self.pending[tag] = pending
            return [SendAuthorize(tag)]
        return self._authorised(tag, pending, decision is Decision.ACCEPT,
                                "not authorised locally")

    def _authorised(self, tag: IdToken, p: Pending, accepted: bool, why: str,
                    parent: str | None = None) -> list[Effect]:
        c = self.connectors[p.connector]
        if not accepted:
            return self._answer(p, CommandStatus.REJECTED, f"id tag {tag}: {why}")
        if not (c.usable or c.awaiting_token):
            return self._answer(p, CommandStatus.REJECTED,
                                f"connector {c.connector_id} is no longer free")
        if not self._reservation_allows(c, tag, parent):
            return self._answer(p, CommandStatus.REJECTED,
                                f"connector {c.connector_id} is reserved for another id tag")
        return (self._through_preparing(c) + c.authorised(
            tag, limit_a=p.limit_a, remote_start_id=p.remote_start_id)
                + self._answer(p, CommandStatus.ACCEPTED))

    def _through_preparing(self, c: Connector) -> list[Effect]:
        """A session about to start on a plugged connector that shows Finishing or Reserved
        reports Preparing first: neither may go to Charging or Suspended* (1.6 4.9)."""
        if c.facts.tx is not None or not c.plugged or c.status not in (
                ConnectorStatus.FINISHING, ConnectorStatus.RESERVED):
            return []
        c.facts.finishing = False
        c.status = ConnectorStatus.PREPARING
        return [SendStatus(c.connector_id, c.status, c.error_code, c.facts.fault_info,
                           self.clock()), c.led()]

    def _answer(self, p: Pending, status: CommandStatus, reason: str | None = None
                ) -> list[Effect]:
        if p.command is None:
            return []
        return [AnswerCommand(p.connector, p.request_id, p.command, status, reason)]

    def _on_authorize_answer(self, event: AuthorizeAnswered) -> list[Effect]:
        p = self.pending.pop(event.id_tag, None)
        if event.status is None:
            accepted = self.authoriser.offline(event.id_tag, self.clock()) is Decision.ACCEPT
            why = "central system unreachable and not authorised offline"
        else:
            self.authoriser.learn(event.id_tag, AuthEntry(event.status, event.expiry,
                                                          event.parent_id_tag))
            accepted, why = event.status is AuthStatus.ACCEPTED, event.status.label
        if p is not None and p.stop_for_parent is not None:
            c = self.connectors[p.connector]
            if accepted and c.facts.tx is not None and (
                    event.parent_id_tag == p.stop_for_parent):
                return c.stop_transaction(StopReason.LOCAL, event.id_tag)
            return []
        return [] if p is None else self._authorised(event.id_tag, p, accepted, why,
                                                     event.parent_id_tag)

    def _on_start_answer(self, event: StartAnswered) -> list[Effect]:
        effects: list[Effect] = []
        for c in self.connectors.values():
            tx = c.facts.tx
            if tx is None or tx.local_id != event.local_id:
                continue
            effects += c.answered(event.local_id, event.transaction_id)
            if event.status is not AuthStatus.ACCEPTED:
                if tx.id_tag is not None:
                    self.authoriser.learn(tx.id_tag, AuthEntry(event.status))
                effects += c.invalidated(event.local_id)
        return effects

    def _on_pilot(self, e: PilotChanged) -> list[Effect]:
        c = self.connectors[e.connector]
        c.facts.plugged_at = e.plugged_at
        return c.on_pilot(e.state)

    def _on_resumed(self, e: Resumed) -> list[Effect]:
        """A transaction the gateway was restarted in: the same plug-in, the relay still
        closed (station.py `_recover` checked): it goes on with its ids, tag and meterStart."""
        c = self.connectors[e.connector]
        energy = max(c.facts.meter.energy_wh if c.facts.meter else e.last_energy_wh,
                     e.last_energy_wh, e.meter_start_wh)
        tx = Transaction(e.local_id, e.id_tag, e.started_at, e.meter_start_wh, energy,
                         transaction_id=e.transaction_id)
        self._next_local_id = max(self._next_local_id, e.local_id + 1)
        return c.resume(tx)

    def _on_recovered(self, e: Recovered) -> list[Effect]:
        """A transaction cut short by a crash or power loss is stopped now (OCPP 1.6 4.10)."""
        now = self.clock()
        c = self.connectors[e.connector]
        c.facts.recovering = False
        # The retained reading may be older than the last MeterValues the transaction sent: a
        # broker restored after a power cut hands back its last autosave (every 5 s). The
        # register never goes back, so meterStop is at least what the central system saw.
        meter_stop = c.facts.meter.energy_wh if c.facts.meter else e.last_energy_wh
        meter_stop = max(meter_stop, e.last_energy_wh, e.meter_start_wh)
        view = TransactionView(e.local_id, e.transaction_id, e.id_tag, e.started_at,
                               e.meter_start_wh, meter_stop)
        self._next_local_id = max(self._next_local_id, e.local_id + 1)
        return [c.set_relay(False),
                SendStopTransaction(e.connector, e.local_id, None, meter_stop, now, e.reason,
                                    e.started_at, e.meter_start_wh, c.facts.meter),
                PublishTransaction(e.connector, None),
                PublishSession(e.connector, view, now, meter_stop, e.reason)]

    # --- bus commands --------------------------------------------------------------------------

    def _on_command(self, cmd: Command) -> list[Effect]:
        def answer(status: CommandStatus, reason: str | None = None) -> list[Effect]:
            return [AnswerCommand(cmd.connector, cmd.request_id, cmd.name, status, reason)]

        if cmd.name is CommandName.CHANGE_AVAILABILITY:
            assert cmd.operative is not None
            reply = self._on_change_availability(ChangeAvailability(cmd.connector, cmd.operative))
            outcome = reply[-1]
            assert isinstance(outcome, Reply)
            if outcome.status is Outcome.REJECTED:
                return answer(CommandStatus.REJECTED, f"unknown connector {cmd.connector}")
            note = "scheduled: applies when the running transaction ends" if (
                outcome.status is Outcome.SCHEDULED) else None
            return reply[:-1] + answer(CommandStatus.ACCEPTED, note)
        if cmd.name is CommandName.RESET:
            if cmd.connector != 0:
                return answer(CommandStatus.REJECTED, "reset is for the whole station: send it "
                                                      "to connector 0")
            reply = self._on_reset(Reset(cmd.hard))
            return reply[:-1] + answer(CommandStatus.ACCEPTED, (
                "hard: the gateway restarts" if cmd.hard else "soft: the OCPP session restarts")
                + " once the stopped transactions are delivered")
        if cmd.connector == 0:
            return answer(CommandStatus.REJECTED,
                          f"connector 0 is the whole station; {cmd.name.value} needs a connector")
        c = self.connectors.get(cmd.connector)
        if c is None:
            return answer(CommandStatus.REJECTED, f"unknown connector {cmd.connector}")
        f = c.facts
        if cmd.name is CommandName.START:
            assert cmd.id_tag is not None
            why = self._too_long(cmd.id_tag) or self._why_not_free(c, cmd.id_tag)
            if why and self._asks_for_group(c, cmd.id_tag):
                return self._ask_parent(cmd.id_tag, c, cmd.request_id, cmd.name)
            if why is None and cmd.id_tag in self.pending:
                why = f"id tag {cmd.id_tag} is already being authorised"
            if why:
                return answer(CommandStatus.REJECTED, why)
            return self._authorise(cmd.id_tag, c, cmd.request_id, cmd.name)
        if cmd.name is CommandName.STOP:
            if f.tx is not None:
                return c.stop_transaction(StopReason.LOCAL) + answer(CommandStatus.ACCEPTED)
            if f.waiting is not None:
                f.waiting = None
                return answer(CommandStatus.ACCEPTED, "cancelled the authorisation waiting for "
                                                      "the EV")
            return answer(CommandStatus.REJECTED,
                          f"no transaction running on connector {c.connector_id}")
        if cmd.name is CommandName.SET_CURRENT_LIMIT:
            assert cmd.amps is not None
            if cmd.amps > self.max_current_a:
                return answer(CommandStatus.REJECTED, f"amps {cmd.amps:g} above the station "
                                                      f"maximum {self.max_current_a:g} A")
            f.command_limit_a = cmd.amps
            return self._charging(c) + answer(CommandStatus.ACCEPTED)
        if cmd.name in (CommandName.ENABLE_CHARGING, CommandName.DISABLE_CHARGING):
            f.enabled = cmd.name is CommandName.ENABLE_CHARGING
            return self._charging(c) + answer(CommandStatus.ACCEPTED)
        if cmd.name is CommandName.OVERRIDE_OFFPEAK:
            effects, status, reason = self.offpeak.override(c)
            return effects + answer(status, reason)
        if cmd.name is CommandName.UNLOCK:  # the bus bridge answers it through the cable lock
            return answer(CommandStatus.NOT_SUPPORTED, "this station has no connector lock")
        return answer(CommandStatus.NOT_SUPPORTED, f"command {cmd.name.value} not supported")

    def _charging(self, c: Connector) -> list[Effect]:
        if c.facts.tx is not None:
            return c.push_limit()
        return [*c.idle_limit(), PublishCharging(c.connector_id, c.facts.enabled,
                                                 c.effective_limit_a)]

    def _why_not_free(self, c: Connector, tag: IdToken | None) -> str | None:
        f = c.facts
        n = c.connector_id
        if c.awaiting_token and f.waiting is None and self._reservation_allows(c, tag):
            return None  # its transaction started at plug-in and waits for an id token
        if f.tx is not None:
            return f"connector {n} already has a transaction"
        if not (f.operative and f.station_operative):
            return f"connector {n} is unavailable"
        if f.restarting:
            return f"connector {n} is unavailable: the station is about to restart"
        if not c.usable:
            return f"connector {n} is faulted"
        if f.waiting is not None:
            return f"connector {n} is already waiting for an EV (id tag {f.waiting.id_tag})"
        if not self._reservation_allows(c, tag):
            return f"connector {n} is reserved"
        return None

    # --- central-system requests ---------------------------------------------------------------

    def _on_remote_start(self, e: RemoteStart) -> list[Effect]:
        """5.11; on a connector reserved with a parent idTag for another tag, the tag is
        Authorized and the answer's parent decides (5.13): Accepted means "will attempt". A
        token the bus contract cannot carry as a session's id tag (IdTag: 1..36 printable
        characters, no spaces; a NoAuthorization token, empty, is shown as none) or longer than
        the protocol spoken takes is Rejected. NoAuthorization (free charging) is not
        Authorized, whatever authorize_remote_start says: there is nobody to authorise."""
        if not _carried(e.id_tag) or self._too_long(e.id_tag):
            return [Reply(Outcome.REJECTED)]
        if e.connector is not None:
            c = self.connectors.get(e.connector)
            if c is not None and self._asks_for_group(c, e.id_tag):
                return [*self._ask_parent(e.id_tag, c, None, None, e.limit_a,
                                          e.remote_start_id), Reply(Outcome.ACCEPTED)]
            if c is None or self._why_not_free(c, e.id_tag):
                return [Reply(Outcome.REJECTED)]
        else:
            found = self.choose_connector(e.id_tag)
            if found is None:
                group = next((c for c in self.connectors.values()
                              if self._asks_for_group(c, e.id_tag)), None)
                if group is None:
                    return [Reply(Outcome.REJECTED)]
                return [*self._ask_parent(e.id_tag, group, None, None, e.limit_a,
                                          e.remote_start_id), Reply(Outcome.ACCEPTED)]
            c = found
        if self.config.authorize_remote_start and not e.id_tag.free:
            # NoAuthorization (free charging): nobody to authorise, no Authorize
            effects = self._authorise(e.id_tag, c, None, None, e.limit_a, e.remote_start_id)
        else:
            effects = self._through_preparing(c) + c.authorised(
                e.id_tag, limit_a=e.limit_a, remote_start_id=e.remote_start_id)
        return [*effects, Reply(Outcome.ACCEPTED)]

    def _on_remote_stop(self, e: RemoteStop) -> list[Effect]:
        for c in self.connectors.values():
            tx = c.facts.tx
            if tx is not None and (tx.transaction_id == e.transaction_id or (
                    e.local_id is not None and tx.local_id == e.local_id)):
                return [*c.stop_transaction(StopReason.REMOTE), Reply(Outcome.ACCEPTED)]
        return [Reply(Outcome.REJECTED)]

    def _on_trigger_transaction(self, e: TriggerTransaction) -> list[Effect]:
        """Each running transaction (of the connector asked, or all) reports itself now, in
        order with its other messages: its meter reading (context Trigger, the sampled
        measurands) and charging state, or without a reading only the state. Rejected when
        none runs there."""
        now = self.clock()
        effects: list[Effect] = []
        for c in self.connectors.values():
            tx = c.facts.tx
            if tx is None or e.connector not in (None, c.connector_id):
                continue
            if c.facts.meter is not None:
                effects.append(SendMeterValues(c.connector_id, tx.local_id, c.facts.meter, now,
                                               ReadingContext.TRIGGER, tx.charging_state))
            else:
                effects.append(SendTransactionUpdate(c.connector_id, tx.local_id,
                                                     TxUpdate.TRIGGERED, now,
                                                     charging_state=tx.charging_state))
        return [*effects, Reply(Outcome.ACCEPTED if effects else Outcome.REJECTED)]

    def _on_change_availability(self, e: ChangeAvailability) -> list[Effect]:
        """Connector 0 is the station as a whole: its availability is kept apart from each
        connector's own, so a connector made Operative stays Unavailable while the station is
        Inoperative. A change waits for a running transaction on the connector (Scheduled)."""
        if e.connector == 0:
            return self._station_availability(e.operative)
        c = self.connectors.get(e.connector)
        if c is None:
            return [Reply(Outcome.REJECTED)]
        if c.facts.tx is not None and c.facts.operative != e.operative:
            c.facts.scheduled_operative = e.operative
            return [Reply(Outcome.SCHEDULED)]
        self._set_availability(c, operative=e.operative)
        c.facts.scheduled_operative = None
        return [Reply(Outcome.ACCEPTED)]

    def _station_availability(self, operative: bool) -> list[Effect]:
        scheduled = False
        for c in self.connectors.values():
            if c.facts.tx is not None and c.facts.station_operative != operative:
                scheduled = True
            elif operative:  # the whole station Operative: every connector with it (as before)
                self._set_availability(c, operative=True, station=True)
                c.facts.scheduled_operative = None
            else:
                self._set_availability(c, station=operative)
        if scheduled:
            self.station_scheduled = operative
            return [Reply(Outcome.SCHEDULED)]
        self.station_operative, self.station_scheduled = operative, None
        return [Reply(Outcome.ACCEPTED)]

    def _apply_scheduled_station(self) -> None:
        """A scheduled station availability reaches each connector as its transaction ends, and
        the station once none runs."""
        wanted = self.station_scheduled
        if wanted is None:
            return
        for c in self.connectors.values():
            if c.facts.tx is None:
                self._set_availability(c, station=wanted)
        if all(c.facts.tx is None for c in self.connectors.values()):
            self.station_operative, self.station_scheduled = wanted, None

    @staticmethod
    def _set_availability(c: Connector, *, operative: bool | None = None,
                          station: bool | None = None) -> None:
        f = c.facts
        was_available = f.operative and f.station_operative
        if operative is not None:
            f.operative = operative
        if station is not None:
            f.station_operative = station
        if not was_available and f.operative and f.station_operative:
            f.finishing = False  # Unavailable -> Finishing is no transition (4.9): Preparing

    def availability(self) -> tuple[bool, dict[int, bool]]:
        """What persists across a restart (5.2): the station's and each connector's
        availability, a scheduled change counted as done (its transaction will not survive)."""
        station = self.station_operative if self.station_scheduled is None else (
            self.station_scheduled)
        return station, {n: c.facts.operative if c.facts.scheduled_operative is None
                         else c.facts.scheduled_operative for n, c in self.connectors.items()}

    def operative(self, connector: int) -> tuple[bool, bool | None]:
        """(operative, scheduled change) as ChangeAvailability set them: a connector's own, or
        the station's for connector 0 (what the status topics carry)."""
        if connector == 0:
            return self.station_operative, self.station_scheduled
        f = self.connectors[connector].facts
        return f.operative, f.scheduled_operative

    def restore_availability(self, station: bool, connectors: dict[int, bool]) -> None:
        """The availability kept from before the restart."""
        self.station_operative = station
        for n, c in self.connectors.items():
            c.facts.station_operative = station
            c.facts.operative = connectors.get(n, True)

    def _on_unlock(self, e: Unlock) -> list[Effect]:
        """An unlock is due (cable_lock.py sends it to the lock and answers): stop first."""
        c = self.connectors.get(e.connector)
        if c is None:
            return [Reply(Outcome.NOT_SUPPORTED)]
        return [*c.stop_transaction(StopReason.UNLOCK_COMMAND), Reply(Outcome.ACCEPTED)]

    def _on_reset(self, e: Reset) -> list[Effect]:
        reason = StopReason.HARD_RESET if e.hard else StopReason.SOFT_RESET
        if e.connector is not None:  # one EVSE: its transaction ends, then it alone resets
            c = self.connectors.get(e.connector)
            if c is None:
                return [Reply(Outcome.REJECTED)]
            return [*c.stop_transaction(reason), *c.reset(), Reply(Outcome.ACCEPTED)]
        effects: list[Effect] = []
        for c in self.connectors.values():
            effects += c.stop_transaction(reason)
        self.restarting(True)  # no new session until the restart (5.14)
        return [*effects, RestartRequested(e.hard), Reply(Outcome.ACCEPTED)]

    def restarting(self, on: bool, *, booted: bool = False) -> None:
        """A restart is due (or no longer): no new session, idle connectors Unavailable; a
        transaction running goes on (the caller waits for it). booted: the restart was a soft
        Reset, which leaves the station "as just booted" (5.14): a plugged EV shows Preparing,
        not the Finishing of the transaction the reset stopped. The next handled event reports
        the statuses."""
        for c in self.connectors.values():
            c.facts.restarting = on
            if on:
                c.facts.waiting = None
            if booted:
                c.facts.finishing = False

    def reserve(self, connector: int, reservation: Reservation) -> Outcome:
        """A reservation: accepted, occupied, faulted, unavailable or rejected (OCPP 1.6 5.13)."""
        targets = ([self.connectors[connector]] if connector in self.connectors
                   else list(self.connectors.values()) if connector == 0 else [])
        if not targets:
            return Outcome.REJECTED
        for c in targets:
            if c.facts.reservation and c.facts.reservation.reservation_id == (
                    reservation.reservation_id):
                c.facts.reservation = reservation
                return Outcome.ACCEPTED
        for c in targets:
            f = c.facts
            if c.usable and f.reservation is None and f.waiting is None and not c.plugged:
                f.reservation = reservation
                return Outcome.ACCEPTED
        c = targets[0]
        if c.status is ConnectorStatus.FAULTED:
            return Outcome.FAULTED
        if c.status is ConnectorStatus.UNAVAILABLE:
            return Outcome.UNAVAILABLE
        return Outcome.OCCUPIED

    def cancel_reservation(self, reservation_id: int) -> bool:
        """CancelReservation: True when it existed."""
        for c in self.connectors.values():
            r = c.facts.reservation
            if r is not None and r.reservation_id == reservation_id:
                c.facts.reservation = None
                return True
        return False
