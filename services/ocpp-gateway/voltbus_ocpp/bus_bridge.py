"""Bus messages -> model events, and the model's bus effects -> bus messages.

Relies only on the topic contract. Hardware topics for a connector this station does not have are
rejected with a reason; every command gets an answer on command/result, even an unreadable one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.channels import PayloadError
from voltbus_common.enums import (
    BridgeState,
    ChargePointErrorCode,
    CommandName,
    CommandStatus,
    ConnectorStatus,
    LimitSource,
    ServiceState,
)
from voltbus_common.models import (
    BayOccupancy,
    ChargingState,
    CommandResult,
    CurrentLimitCommand,
    EnergyLimitCommand,
    GatewayCommand,
    HardwareError,
    LedCommand,
    LockStatus,
    MeterReading,
    OcppConnectorStatus,
    PilotEvent,
    RelayCommand,
    RelayState,
    RfidSeen,
    SessionSummary,
    SwitchReading,
    TransactionState,
    utcnow,
)
from voltbus_ocpp.cable_lock import CableLocks
from voltbus_ocpp.model.energy_limit import EnergyLimit, EnergyManagerStatus, SiteLinkChanged
from voltbus_ocpp.model.events import (
    AnswerCommand,
    BayChanged,
    CardPresented,
    Command,
    Effect,
    Event,
    HardwareFault,
    HardwareStatus,
    MeterSnapshot,
    MeterUpdated,
    PilotChanged,
    PublishCharging,
    PublishSession,
    PublishTransaction,
    RelayChanged,
    SendStatus,
    SetCurrentLimit,
    SetLed,
    SetRelay,
)
from voltbus_ocpp.model.metering import SwitchRead
from voltbus_ocpp.model.results import Outcome
from voltbus_ocpp.model.tokens import IdToken, TokenType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnergyState:
    """What ocpp/{c}/charging says of the limit's source and the energy manager."""

    limit_source: LimitSource | None = None
    energy_limit_a: float | None = None
    fail_safe: bool = False
    reason: str | None = None


class BusBridge:
    """Subscribes a station's hardware and command topics; publishes its state."""

    def __init__(self, bus: Bus, connectors: int, dispatch: Callable[[Event], object], *,
                 command_limit: Callable[[int], float | None] = lambda _n: None,
                 energy_state: Callable[[int], EnergyState] = lambda _n: EnergyState(),
                 unlock_on_ev_disconnect: Callable[[], bool] = lambda: True,
                 operative: Callable[[int], tuple[bool | None, bool | None]] = (
                     lambda _n: (None, None)),
                 after_reset: Callable[[], None] = lambda: None) -> None:
        self.bus = bus
        self.unlock_on_ev_disconnect = unlock_on_ev_disconnect
        self.command_limit = command_limit  # ChargingState.command_limit_a per connector
        self.energy_state = energy_state  # ChargingState's limit source and energy fields
        self.operative = operative  # OcppConnectorStatus.operative, scheduled_operative
        self.after_reset = after_reset  # a reset command's answer is out: restart
        self.connectors = connectors
        self.dispatch = dispatch
        # Newest ts seen per (topic): a broker restored from an old save re-delivers retained
        # state older than what we know (a pilot `A` from before the plug-in stopped sessions).
        self._newest: dict[str, datetime] = {}
        self.locks = CableLocks(bus, dispatch)
        self._unlocks: set[asyncio.Task[None]] = set()

    def attach(self) -> None:
        """Register the handlers (before bus.run())."""
        self.bus.on(ch.PILOT, self._pilot)
        self.bus.on(ch.BAY, self._bay)
        self.bus.on(ch.METER, self._meter)
        self.bus.on(ch.RELAY, self._relay)
        self.bus.on(ch.SWITCH_READING, self._switch_reading)
        self.bus.on(ch.LOCK, self._lock)
        self.bus.on(ch.HW_ERROR, self._error)
        self.bus.on(ch.RFID, self._rfid)
        self.bus.on(ch.SERVICE_STATUS, self._hardware_status, service="hardware")
        self.bus.on(ch.ENERGY_LIMIT, self._energy_limit)
        # every site's energy manager: the model follows the one whose limits name its site
        self.bus.on(ch.SERVICE_STATUS, self._energy_status, station="+", service="energy")
        # this broker's bridge to the site broker, if any (its stations in the station level)
        self.bus.on(ch.BRIDGE_STATE, self._bridge_state, station="+")
        self.bus.on_raw(ch.COMMAND.filter(self.bus.root, station=self.bus.station), self._command)

    def _known(self, msg: Received[Any]) -> bool:
        if 1 <= msg.connector <= self.connectors:
            return True
        self.bus.reject(msg.topic, f"unknown connector {msg.connector} (this station has "
                                   f"{self.connectors})")
        return False

    def _stale(self, msg: Received[PilotEvent] | Received[RelayState]
               | Received[BayOccupancy]) -> bool:
        """A retained message older than the newest one already seen on its topic."""
        assert msg.payload is not None
        newest = self._newest.get(msg.topic)
        if msg.retain and newest is not None and msg.payload.ts < newest:
            log.warning("ignored stale retained %s from %s (already know %s)", msg.topic,
                        msg.payload.ts.isoformat(), newest.isoformat())
            return True
        if newest is None or msg.payload.ts > newest:
            self._newest[msg.topic] = msg.payload.ts
        return False

    async def _pilot(self, msg: Received[PilotEvent]) -> None:
        if self._known(msg) and msg.payload is not None and not self._stale(msg):
            self.dispatch(PilotChanged(msg.connector, msg.payload.state, msg.payload.plugged_at))

    async def _bay(self, msg: Received[BayOccupancy]) -> None:
        if self._known(msg) and msg.payload is not None and not self._stale(msg):
            self.dispatch(BayChanged(msg.connector, msg.payload.occupied))

    async def _meter(self, msg: Received[MeterReading]) -> None:
        if self._known(msg) and msg.payload is not None:
            p = msg.payload
            self.dispatch(MeterUpdated(msg.connector, MeterSnapshot(
                p.energy_wh, p.power_w, tuple(p.current_a), tuple(p.voltage_v), p.ts)))

    async def _relay(self, msg: Received[RelayState]) -> None:
        if self._known(msg) and msg.payload is not None and not self._stale(msg):
            p = msg.payload
            self.locks.on_relay(msg.connector, p.closed)
            self.dispatch(RelayChanged(msg.connector, p.closed, p.ts, p.request_id))

    async def _lock(self, msg: Received[LockStatus]) -> None:
        if self._known(msg) and msg.payload is not None:
            self.locks.on_lock(msg.connector, msg.payload)

    async def _switch_reading(self, msg: Received[SwitchReading]) -> None:
        if self._known(msg) and msg.payload is not None:
            p = msg.payload
            self.dispatch(SwitchRead(msg.connector, MeterSnapshot(
                p.energy_wh, p.power_w, tuple(p.current_a), tuple(p.voltage_v), p.ts),
                p.trigger, p.relay_ts, p.request_id, p.settled))

    async def _error(self, msg: Received[HardwareError]) -> None:
        if self._known(msg) and msg.payload is not None:
            self.dispatch(HardwareFault(msg.connector, msg.payload.code, msg.payload.info))

    async def _hardware_status(self, msg: Received[ServiceState]) -> None:
        self.dispatch(HardwareStatus(msg.payload is ServiceState.ONLINE))

    async def _energy_limit(self, msg: Received[EnergyLimitCommand]) -> None:
        if self._known(msg) and msg.payload is not None:
            self.dispatch(EnergyLimit(msg.connector, msg.payload.amps, msg.payload.site))

    async def _energy_status(self, msg: Received[ServiceState]) -> None:
        if msg.payload is not None:
            self.dispatch(EnergyManagerStatus(msg.station, msg.payload is ServiceState.ONLINE))

    async def _bridge_state(self, msg: Received[BridgeState]) -> None:
        """Only the bridge that carries this station: on a site broker, the gateways of its own
        stations see every Pi's bridge state too."""
        if msg.payload is not None and self.bus.station in msg.station.split(","):
            self.dispatch(SiteLinkChanged(msg.payload is BridgeState.UP))

    async def _rfid(self, msg: Received[RfidSeen]) -> None:
        if msg.payload is not None and not self.locks.presented(msg.payload.id_tag):
            # the reader kind is the token's type (ISO14443 when the payload does not say)
            self.dispatch(CardPresented(IdToken(msg.payload.id_tag,
                                                TokenType(msg.payload.card_type.value))))

    async def _command(self, topic: str, raw: bytes, retain: bool) -> None:
        args = ch.COMMAND.match(self.bus.root, topic)
        if args is None:
            return
        connector = args["connector"]
        request_id, name = _salvage(raw)
        if retain:
            return self._refuse(topic, connector, request_id, name,
                                "retained commands are ignored (publish without retain)")
        if not connector.isdigit():
            return self._refuse(topic, connector, request_id, name,
                                f"connector {connector!r} is not a number")
        try:
            cmd = ch.COMMAND.decode(raw)
        except PayloadError as exc:
            return self._refuse(topic, connector, request_id, name, str(exc))
        assert isinstance(cmd, GatewayCommand)
        if cmd.command is CommandName.UNLOCK and 1 <= int(connector) <= self.connectors:
            task = asyncio.create_task(self._unlock(int(connector), cmd.request_id))
            self._unlocks.add(task)
            task.add_done_callback(self._unlocks.discard)
            return None
        # a start command's id tag is a card's uid (ISO14443), as the station always sent it
        tag = None if cmd.id_tag is None else IdToken(cmd.id_tag)
        self.dispatch(Command(int(connector), cmd.command, cmd.request_id, tag, cmd.amps,
                              cmd.operative, hard=bool(cmd.hard)))
        if cmd.command is CommandName.RESET:
            self.after_reset()  # restarts only if the model accepted it

    async def _unlock(self, connector: int, request_id: str | None) -> None:
        """The `unlock` command through the cable lock, answered with what it confirmed."""
        outcome = await self.locks.unlock(connector)
        status, reason = {
            Outcome.UNLOCKED: (CommandStatus.ACCEPTED, None),
            Outcome.NOT_SUPPORTED: (CommandStatus.NOT_SUPPORTED,
                                    "this station has no connector lock"),
        }.get(outcome, (CommandStatus.REJECTED, "the cable lock did not confirm the unlock"))
        self.bus.publish(ch.COMMAND_RESULT, CommandResult(
            request_id=request_id, command=CommandName.UNLOCK, status=status, reason=reason,
            ts=utcnow()), connector=connector)

    def _refuse(self, topic: str, connector: str, request_id: str | None,
                name: CommandName | None, reason: str) -> None:
        self.bus.reject(topic, reason)
        self.bus.publish(ch.COMMAND_RESULT, CommandResult(
            request_id=request_id, command=name, status=CommandStatus.REJECTED, reason=reason,
            ts=utcnow()),
            connector=connector)

    # --- effects -> bus ------------------------------------------------------------------------

    def publish_status(self, connector: int, status: ConnectorStatus,
                       code: ChargePointErrorCode, ts: datetime) -> None:
        """A connector's status (connector 0: the station's) with its availability."""
        operative, scheduled = self.operative(connector)
        self.bus.publish(ch.OCPP_STATUS, OcppConnectorStatus(
            status=status, error_code=code, ts=ts, operative=operative,
            scheduled_operative=scheduled), connector=connector)

    def publish(self, effect: Effect) -> bool:
        """Publish a bus effect; False if the effect is not for the bus."""
        bus = self.bus
        match effect:
            case SetRelay(connector=n, closed=closed, request_id=rid):
                command = RelayCommand(closed=closed, request_id=rid)
                self.locks.relay(n, closed, lambda: bus.publish(ch.RELAY_SET, command,
                                                                connector=n))
            case SetCurrentLimit(connector=n, amps=amps):
                bus.publish(ch.CURRENT_LIMIT_SET, CurrentLimitCommand(amps=amps), connector=n)
            case SetLed(connector=n, color=color, pattern=pattern, intensity_pct=pct,
                        blink_repeat=repeat):
                bus.publish(ch.LED_SET, LedCommand(color=color, pattern=pattern,
                                                   intensity_pct=pct, blink_repeat=repeat),
                            connector=n)
            case SendStatus(connector=n, status=status, error_code=code, ts=ts):
                self.publish_status(n, status, code, ts)
            case PublishTransaction(connector=n, transaction=tx):
                bus.publish(ch.TRANSACTION, None if tx is None else TransactionState(
                    transaction_id=_bus_transaction_id(tx.transaction_id),
                    id_tag=_bus_tag(tx.id_tag),
                    started_at=tx.started_at, meter_start_wh=tx.meter_start_wh,
                    energy_wh=max(0.0, tx.energy_wh - tx.meter_start_wh),
                    transaction_ref=tx.transaction_id), connector=n)
            case PublishSession(connector=n, transaction=tx, stopped_at=at, meter_stop_wh=stop,
                                reason=reason):
                summary = SessionSummary(
                    transaction_id=_bus_transaction_id(tx.transaction_id),
                    id_tag=_bus_tag(tx.id_tag),
                    started_at=tx.started_at,
                    stopped_at=at, meter_start_wh=tx.meter_start_wh, meter_stop_wh=stop,
                    energy_wh=max(0.0, stop - tx.meter_start_wh), stop_reason=reason,
                    transaction_ref=tx.transaction_id)
                bus.publish(ch.SESSION, summary, connector=n)
                bus.publish(ch.LAST_SESSION, summary, connector=n)  # retained
                self.locks.session_ended(n, _bus_tag(tx.id_tag), reason,
                                         self.unlock_on_ev_disconnect())
            case PublishCharging(connector=n, enabled=enabled, limit_a=limit):
                energy = self.energy_state(n)
                bus.publish(ch.CHARGING, ChargingState(
                    enabled=enabled, current_limit_a=limit, ts=utcnow(),
                    offpeak_waiting=effect.offpeak_waiting, offpeak_until=effect.offpeak_until,
                    offpeak_override=effect.offpeak_override,
                    command_limit_a=self.command_limit(n), limit_source=energy.limit_source,
                    energy_limit_a=energy.energy_limit_a, energy_fail_safe=energy.fail_safe,
                    energy_fail_safe_reason=energy.reason), connector=n)
            case AnswerCommand(connector=n, request_id=rid, command=name, status=status,
                               reason=reason):
                bus.publish(ch.COMMAND_RESULT, CommandResult(request_id=rid, command=name,
                                                             status=status, reason=reason,
                                                             ts=utcnow()), connector=n)
            case _:
                return False
        return True


def _bus_tag(tag: IdToken | None) -> str | None:
    """A token's value as the bus shows it; None for none yet and for NoAuthorization (free
    charging: its value is empty, nobody's card)."""
    return None if tag is None or tag.free else tag.value


def _bus_transaction_id(value: str | None) -> int | None:
    """transaction_id carries the central system's id as an integer (what OCPP 1.6 gives); a
    non-numeric one (2.0.1) is only in transaction_ref, which carries every id as text."""
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _salvage(raw: bytes) -> tuple[str | None, CommandName | None]:
    """request_id and command from a payload that may be invalid, so the answer can carry them."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # deep nesting too
        return None, None
    if not isinstance(data, dict):
        return None, None
    rid = data.get("request_id")
    request_id = rid if isinstance(rid, str) and len(rid) <= 64 else None
    try:
        name = CommandName(str(data.get("command")))
    except ValueError:
        name = None
    return request_id, name
