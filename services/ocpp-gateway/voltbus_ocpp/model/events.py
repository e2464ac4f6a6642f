"""Input events and output effects of the model: plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from voltbus_common.enums import (
    ChargePointErrorCode,
    CommandName,
    CommandStatus,
    ConnectorStatus,
    LedPattern,
    PilotState,
    StopReason,
)
from voltbus_ocpp.model.results import (
    AuthStatus,
    ChargingState,
    Outcome,
    ReadingContext,
    TransferEnd,
    TxStart,
    TxUpdate,
)
from voltbus_ocpp.model.tokens import IdToken, as_token


@dataclass(frozen=True)
class MeterSnapshot:
    """The latest meter reading of a connector (register in Wh, power in W, per-phase A and V)."""

    energy_wh: float
    power_w: float
    current_a: tuple[float, ...]
    voltage_v: tuple[float, ...]
    ts: datetime


def _typed(obj: object, name: str = "id_tag") -> None:
    """A plain str given for an id token (a caller from before token types) is an ISO14443
    card uid (`tokens.as_token`)."""
    value = getattr(obj, name)
    if isinstance(value, str):
        object.__setattr__(obj, name, as_token(value))


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something the model reacts to."""


@dataclass(frozen=True)
class PilotChanged(Event):
    """The EVSE measured a new control-pilot state."""

    connector: int
    state: PilotState
    plugged_at: datetime | None = None  # the plug-in's identity (PilotEvent.plugged_at)


@dataclass(frozen=True)
class BayChanged(Event):
    """The parking bay detector in front of a connector sees a vehicle or no longer does."""

    connector: int
    occupied: bool


@dataclass(frozen=True)
class MeterUpdated(Event):
    """A new meter reading."""

    connector: int
    reading: MeterSnapshot


@dataclass(frozen=True)
class RelayChanged(Event):
    """The relay actually switched (ts and request_id as the hardware's relay state says)."""

    connector: int
    closed: bool
    ts: datetime | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class HardwareFault(Event):
    """The hardware reports a fault (NoError clears it)."""

    connector: int
    code: ChargePointErrorCode
    info: str | None = None


@dataclass(frozen=True)
class CardPresented(Event):
    """An RFID card was tapped on the station's reader."""

    id_tag: IdToken

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True)
class Command(Event):
    """A command from the bus (API, Home Assistant, scripts)."""

    connector: int
    name: CommandName
    request_id: str | None = None
    id_tag: IdToken | None = None
    amps: float | None = None
    operative: bool | None = None
    hard: bool = False  # reset: Hard (the gateway restarts) rather than Soft

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True)
class AuthorizeAnswered(Event):
    """The central system's answer about an id tag; status None when it could not be asked."""

    id_tag: IdToken
    status: AuthStatus | None
    expiry: datetime | None = None
    parent_id_tag: str | None = None

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True)
class StartAnswered(Event):
    """The central system answered a transaction start (its id for it, and the id tag's status).
    """

    local_id: int
    transaction_id: str
    status: AuthStatus


@dataclass(frozen=True)
class RemoteStart(Event):
    """The central system asks to start a transaction."""

    id_tag: IdToken
    connector: int | None = None
    limit_a: float | None = None
    # the central system's id for this request (2.0.1 remoteStartId; 1.6 has none): the first
    # transaction event it causes carries it (F02.FR.01)
    remote_start_id: int | None = None

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True)
class RemoteStop(Event):
    """The central system asks to stop a transaction (its id for it; or, in 2.0.1 where the charge
    point names transactions, our local id while the start is not answered yet)."""

    transaction_id: str
    local_id: int | None = None


@dataclass(frozen=True)
class TriggerTransaction(Event):
    """The central system asks for the state of the running transactions now (2.0.1
    TriggerMessage TransactionEvent, F06): one connector's, or every one's (None)."""

    connector: int | None = None


@dataclass(frozen=True)
class ChangeAvailability(Event):
    """The central system changes availability (connector 0: the whole station)."""

    connector: int
    operative: bool


@dataclass(frozen=True)
class Unlock(Event):
    """The central system asks to unlock a connector."""

    connector: int


@dataclass(frozen=True)
class Reset(Event):
    """The central system asks for a reset: finish every transaction with the matching reason
    first. connector: only that connector's EVSE resets (a central system may ask for one): its
    transaction ends, it is reported Unavailable while its hardware is told its state again, then
    its status again; the station and the other connectors go on, nothing restarts."""

    hard: bool
    connector: int | None = None


@dataclass(frozen=True)
class ProfileLimit(Event):
    """Smart charging computed a new limit for a connector (None: no profile limits it)."""

    connector: int
    amps: float | None


@dataclass(frozen=True)
class ConfigLimitChanged(Event):
    """The configured cap of a connector (`ChargePointConfig.connector_limit_a`) changed: its
    effective limit goes to the EVSE at once."""

    connector: int


@dataclass(frozen=True)
class LinkChanged(Event):
    """The central system accepted us (online) or the link dropped."""

    online: bool


@dataclass(frozen=True)
class HardwareStatus(Event):
    """The hardware service said online (it may have missed commands: resync) or went away."""

    online: bool


@dataclass(frozen=True)
class Tick(Event):
    """Time passed: timeouts and meter sampling are checked against the clock."""


@dataclass(frozen=True)
class Recovered(Event):
    """At start-up, a transaction found on disk that was running when the process ended."""

    connector: int
    local_id: int
    id_tag: IdToken | None  # None: started at plug-in and not authorised before the end
    started_at: datetime
    meter_start_wh: float
    last_energy_wh: float
    transaction_id: str | None
    reason: StopReason


@dataclass(frozen=True)
class Resumed(Event):
    """At start-up, a transaction found on disk whose EV is still plugged in (the same plug-in)
    with the relay still closed: the hardware kept charging while the gateway was down, so the
    transaction goes on (no stop, no new start)."""

    connector: int
    local_id: int
    id_tag: IdToken | None
    started_at: datetime
    meter_start_wh: float
    last_energy_wh: float
    transaction_id: str | None


# --- effects -----------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True)
class Effect:
    """Something the model wants done."""


@dataclass(frozen=True)
class SetRelay(Effect):
    """Close or open the relay (request_id: echoed on the relay state and its switch reading)."""

    connector: int
    closed: bool
    request_id: str | None = field(default=None, compare=False)  # a correlation id only


@dataclass(frozen=True)
class RelayMismatch(Effect):
    """The reported relay state disagrees with the wanted one: it is commanded again (logged)."""

    connector: int
    wanted_closed: bool
    attempt: int
    last: bool  # no further re-sends in this disagreement


@dataclass(frozen=True)
class SetCurrentLimit(Effect):
    """Tell the EVSE how much current the EV may draw (0 pauses)."""

    connector: int
    amps: float


@dataclass(frozen=True)
class SetLed(Effect):
    """What the connector's LED shows."""

    connector: int
    color: str
    pattern: LedPattern
    intensity_pct: int | None = None  # LightIntensity
    blink_repeat: int | None = None  # BlinkRepeat, for the blink pattern


@dataclass(frozen=True)
class SendStatus(Effect):
    """Report a connector status (to the central system and the bus status topic)."""

    connector: int
    status: ConnectorStatus
    error_code: ChargePointErrorCode
    info: str | None
    ts: datetime


@dataclass(frozen=True)
class SendAuthorize(Effect):
    """Ask the central system about an idTag."""

    id_tag: IdToken

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True)
class SendStartTransaction(Effect):
    """A transaction started: tell the central system (queued durably). id_tag None: started at
    plug-in before authorisation (TxStart.EV_CONNECTED); the id token follows as a
    SendTransactionUpdate. plugged False: started at authorisation before the EV was there.
    point ENERGY_TRANSFER: started when the EV began drawing power (None: the other points, told
    apart by id_tag and plugged). charging_state: the transaction's state then (None: not
    reported by the protocol, or a record from before it was kept)."""

    connector: int
    local_id: int
    id_tag: IdToken | None
    meter_start_wh: float
    ts: datetime
    reservation_id: int | None = None
    plugged: bool = True
    point: TxStart | None = None
    charging_state: ChargingState | None = None
    # started by a remote start: its id (2.0.1 remoteStartId, triggerReason RemoteStart)
    remote_start_id: int | None = None

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True)
class SendTransactionUpdate(Effect):
    """A running transaction got its id token (AUTHORIZED, id_tag given) or its EV
    (EV_CONNECTED), or an external limit moved its charging rate (CHARGING_RATE_CHANGED), or its
    charging state changed (CHARGING_STATE_CHANGED): tell the central system (queued durably, in
    order with the transaction). charging_state: the transaction's state with it (None: not
    reported)."""

    connector: int
    local_id: int
    reason: TxUpdate
    ts: datetime
    id_tag: IdToken | None = None
    charging_state: ChargingState | None = None
    # the id token came by a remote start (AUTHORIZED): its id (2.0.1 remoteStartId,
    # triggerReason RemoteStart)
    remote_start_id: int | None = None

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True)
class Sample:
    """A reading taken during a transaction, kept to be reported with its end."""

    ts: datetime
    reading: MeterSnapshot
    context: ReadingContext  # PERIODIC or CLOCK


@dataclass(frozen=True)
class SendMeterValues(Effect):
    """Meter values: queued durably in a transaction (local_id), sent live outside one."""

    connector: int
    local_id: int | None
    reading: MeterSnapshot
    ts: datetime
    context: ReadingContext = ReadingContext.PERIODIC
    charging_state: ChargingState | None = None  # the transaction's, when reported with them


@dataclass(frozen=True)
class SendStopTransaction(Effect):
    """A transaction ended: tell the central system (queued durably)."""

    connector: int
    local_id: int
    id_tag: IdToken | None
    meter_stop_wh: float
    ts: datetime
    reason: StopReason
    started_at: datetime | None = None
    meter_start_wh: float | None = None
    reading: MeterSnapshot | None = None
    samples: tuple[Sample, ...] = ()
    timed_out: bool = False  # the EV was not connected within connection_timeout_s
    transfer_end: TransferEnd | None = None  # ended because its energy transfer did
    departed: bool = False  # ended because the vehicle left the bay (stop_on_bay_vacated)
    charging_state: ChargingState | None = None  # the state it ended in (None: not reported)

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True)
class TransactionView:
    """The running transaction as the bus shows it."""

    local_id: int
    transaction_id: str | None
    id_tag: IdToken | None  # None: started at plug-in, not authorised yet
    started_at: datetime
    meter_start_wh: float
    energy_wh: float

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True)
class PublishTransaction(Effect):
    """The running transaction changed (None: there is none)."""

    connector: int
    transaction: TransactionView | None


@dataclass(frozen=True)
class PublishSession(Effect):
    """A transaction ended."""

    connector: int
    transaction: TransactionView
    stopped_at: datetime
    meter_stop_wh: float
    reason: StopReason


@dataclass(frozen=True)
class PublishCharging(Effect):
    """Charging enabled/disabled or the current limit changed."""

    connector: int
    enabled: bool
    limit_a: float
    offpeak_waiting: bool = False  # filled in by model/offpeak.py
    offpeak_until: datetime | None = None
    offpeak_override: bool = False


@dataclass(frozen=True)
class AnswerCommand(Effect):
    """The answer to a bus command."""

    connector: int
    request_id: str | None
    command: CommandName | None
    status: CommandStatus
    reason: str | None = None


@dataclass(frozen=True)
class Reply(Effect):
    """The synchronous answer to a central-system request."""

    status: Outcome
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ReservationExpired(Effect):
    """A reservation reached its expiry unused and was dropped (2.0.1 reports it, H01)."""

    connector: int
    reservation_id: int


@dataclass(frozen=True)
class RestartRequested(Effect):
    """Every transaction is finished: the process may restart (Reset)."""

    hard: bool
