"""Payload models: every JSON object on the bus, defined once.

Models are frozen, ignore unknown fields (an older subscriber survives a newer publisher) and
carry their unit in each field name. Timestamps are aware UTC datetimes, ISO 8601 on the wire.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    model_validator,
)

from voltbus_common.enums import (
    CardType,
    ChargeMode,
    ChargePointErrorCode,
    CommandName,
    CommandStatus,
    ConnectorStatus,
    LedPattern,
    LimitSource,
    LockState,
    MessageFormat,
    MessagePriority,
    MessageState,
    MeterTrigger,
    PilotState,
    PlanObjective,
    RegistrationStatus,
    StopReason,
)


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    """Naive timestamps are taken as UTC; aware ones are converted to it."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
IdTag = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[\x21-\x7e]+$")]
"""An id token's value: 1..36 printable characters, no spaces (OCPP 2.0.1 IdTokenType.idToken is
up to 36, e.g. a UUID from an app; OCPP 1.6's idTag only 20: a gateway speaking 1.6 refuses a
longer one)."""
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
PhaseValues = Annotated[list[FiniteFloat], Field(min_length=1, max_length=3)]
Amps = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Watts = Annotated[float, Field(allow_inf_nan=False)]
WattHours = Annotated[float, Field(ge=0, allow_inf_nan=False)]

# Actuator and command fields are strict (issue 15): `"yes"`, `1`, `"on"` or `1.0` for a bool,
# `"16"` or `true` for a number, `5.0` for an integer are rejected, never coerced into an action.
# JSON numbers stay numbers: `16` is a valid float. Enums and strings are exact already.
CommandAmps = Annotated[float, Strict(), Field(ge=0, le=100, allow_inf_nan=False)]
CommandWattHours = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]


def _exact_int(value: object) -> object:
    """Only a true integer (not 3.0, "3" or true) may reach a Literal of integers."""
    if type(value) is not int:
        raise ValueError("Input should be an integer")
    return value


Phases = Annotated[Literal[1, 3], BeforeValidator(_exact_int)]


class Payload(BaseModel):
    """Base of every bus payload."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# --- hardware -> bus ---------------------------------------------------------------------------


class PilotEvent(Payload):
    """The control-pilot state the EVSE measured."""

    state: PilotState
    ts: UtcDatetime = Field(default_factory=utcnow)
    plugged_at: UtcDatetime | None = Field(
        default=None, description="the plug-in's identity: when this cable was plugged in (the "
        "pilot left A), the same on every state until it is pulled out; null when no cable is "
        "in, or when the hardware service started with the cable already in (it cannot know)")


class MeterReading(Payload):
    """One reading of a connector's energy meter; energy_wh is the meter's register."""

    energy_wh: WattHours
    power_w: Watts
    current_a: PhaseValues
    voltage_v: PhaseValues
    ts: UtcDatetime = Field(default_factory=utcnow)
    trigger: MeterTrigger = Field(
        default=MeterTrigger.PERIODIC,
        description="periodic, or the reading taken right after the relay switched (the same "
                    "reading as on hw/{connector}/relay/reading)")

    @model_validator(mode="after")
    def _one_or_three_phases(self) -> Self:
        for name in ("current_a", "voltage_v"):
            if len(getattr(self, name)) not in (1, 3):
                raise ValueError(f"{name} must hold 1 or 3 phase values")
        return self


RequestId = Annotated[str, Field(min_length=1, max_length=64)]
StationId = Annotated[str, Field(pattern=r"^[^/+# ]{1,48}$")]


class RelayState(Payload):
    """The relay position actually switched (not the one commanded)."""

    closed: bool
    ts: UtcDatetime = Field(default_factory=utcnow)
    request_id: RequestId | None = Field(
        default=None, description="the relay/set request_id this switch obeyed; null when the "
                                  "hardware switched by itself (unplug, fault, start-up)")


class SwitchReading(MeterReading):
    """The meter read right after a relay switch: meterStart when closed, meterStop when opened.

    relay_ts is the `ts` of the `relay` state it follows and request_id that state's: a
    subscriber matches it to the switch it waits for, never to an older one. settled: after an
    opening the meter already showed the current stopped (|power| <= a few W), so its register
    no longer moves; false only when the meter still showed power when the hardware gave up.
    """

    trigger: Literal[MeterTrigger.RELAY_CLOSED, MeterTrigger.RELAY_OPENED]
    relay_ts: UtcDatetime
    request_id: RequestId | None = None
    settled: bool = True


class BayOccupancy(Payload):
    """Whether the parking bay in front of a connector is occupied, as its detector (an
    inductive loop or ultrasonic sensor on a digital input) says."""

    occupied: bool
    ts: UtcDatetime = Field(default_factory=utcnow)


class LockStatus(Payload):
    """A connector's cable lock as its feedback confirms it (never as merely commanded).

    locked/unlocked: the feedback switch says so; failed: a move was not confirmed in time
    (jammed, no feedback) and the position is unknown; not_supported: no lock on this connector.
    request_id is the lock/set this state answers (null after start-up or a reconnect).
    """

    state: LockState
    request_id: RequestId | None = None
    reason: str | None = Field(default=None, max_length=100)
    ts: UtcDatetime = Field(default_factory=utcnow)


class PhaseState(Payload):
    """The phases a connector's supply has, as its phase switch confirms them.

    phases: 1 or 3 (null: no phase switch configured, the wiring decides); switchable: a phase
    switch is configured. request_id: the phases/set this state answers (null after start-up or
    a reconnect); reason: why a command was refused or failed (the phases stay as they were).
    """

    phases: Phases | None
    switchable: bool = False
    request_id: RequestId | None = None
    reason: str | None = Field(default=None, max_length=100)
    ts: UtcDatetime = Field(default_factory=utcnow)


class HardwareError(Payload):
    """A connector's hardware fault, as an OCPP error code; NoError clears it."""

    code: ChargePointErrorCode
    info: str | None = Field(default=None, max_length=50)
    ts: UtcDatetime = Field(default_factory=utcnow)


class RfidSeen(Payload):
    """A card presented to a reader (once per presentation, not once per poll).

    id_tag: up to 36 characters (OCPP 2.0.1's idToken; a gateway speaking 1.6, whose idTag is 20,
    refuses a longer card). card_type (optional, added later: publishers without it are still
    valid): what the reader reads, ISO14443 when omitted, ISO15693 from a reader of vicinity
    cards; OCPP 2.0.1 sends the card as an idToken of that type.
    """

    id_tag: IdTag
    reader: str = Field(default="default", min_length=1, max_length=64)
    ts: UtcDatetime = Field(default_factory=utcnow)
    card_type: CardType = Field(
        default=CardType.ISO14443, description="the kind of card, as the reader knows it: "
        "ISO14443 (Mifare, NFC-A; the default, also when omitted) or ISO15693 (vicinity "
        "cards); OCPP 2.0.1 sends the card as an idToken of this type")


# --- gateway -> hardware -----------------------------------------------------------------------


class RelayCommand(Payload):
    """Ask the hardware to open or close a connector's relay."""

    closed: StrictBool
    request_id: RequestId | None = Field(
        default=None, description="echoed on the relay state and the switch reading it causes")


class LockCommand(Payload):
    """Ask the hardware to lock or unlock a connector's cable; answered on `lock`."""

    locked: StrictBool
    request_id: RequestId | None = Field(
        default=None, description="echoed on the lock state that answers this command")


class PhaseCommand(Payload):
    """Ask the hardware to switch a connector's supply to 1 or 3 phases; answered on `phases`.

    The hardware refuses (and says why) while current may flow through the contactor: the
    relay is closed and the EVSE offers current, or the meter shows current flowing.
    """

    phases: Phases
    request_id: RequestId | None = Field(
        default=None, description="echoed on the phases state that answers this command")


class CurrentLimitCommand(Payload):
    """The current the EV may draw per phase; 0 pauses charging."""

    amps: CommandAmps


class LedCommand(Payload):
    """What a connector's indicator LED should show."""

    color: str = Field(pattern=r"^(#[0-9a-fA-F]{6}|[a-z]{1,20})$")
    pattern: LedPattern
    intensity_pct: StrictInt | None = Field(
        default=None, ge=0, le=100,
        description="brightness in % of the maximum (OCPP LightIntensity); null: 100")
    blink_repeat: StrictInt | None = Field(
        default=None, ge=0,
        description="with `blink`: blink this many times, then hold the colour solid (OCPP "
                    "BlinkRepeat); null or 0: blink until the next command")


# --- gateway -> bus ----------------------------------------------------------------------------


class OcppConnection(Payload):
    """The station's link to its central system.

    since: when the link last changed; a Heartbeat answer republishes it with last_heartbeat.
    """

    connected: bool
    registration: RegistrationStatus | None = None
    since: UtcDatetime = Field(default_factory=utcnow)
    firmware_version: str | None = None  # what the BootNotification sends
    last_heartbeat: UtcDatetime | None = None  # when a Heartbeat was last answered (since start)


class OcppConnectorStatus(Payload):
    """The connector status as last reported to the central system (connector 0: the station).

    operative: the availability ChangeAvailability set for this connector (connector 0: for
    the station as a whole), kept across restarts; a connector is Unavailable while it or the
    station is inoperative and no transaction runs. scheduled_operative: a change accepted as
    Scheduled, applied when the running transaction ends. Both null from a gateway before them.
    """

    status: ConnectorStatus
    error_code: ChargePointErrorCode = ChargePointErrorCode.NO_ERROR
    ts: UtcDatetime = Field(default_factory=utcnow)
    operative: bool | None = None
    scheduled_operative: bool | None = None


class TransactionState(Payload):
    """The running transaction (id_tag null: 2.0.1, started at plug-in, not authorised yet).

    transaction_id is None until the central system assigned one.

    transaction_ref: the OCPP transaction id as text, whatever the version (2.0.1's are UUIDs
    the station makes; transaction_id stays 1.6's integer, None in 2.0.1).

    id_tag: the card (id token) that authorised it. None only for an OCPP 2.0.1 transaction
    started at plug-in before anyone authorised it (TxCtrlr.TxStartPoint EVConnected): no
    energy flows then; the state is published again with the id_tag once authorised. Always
    set in 1.6 and with the default TxStartPoint.
    """

    transaction_id: int | None
    id_tag: IdTag | None = None
    started_at: UtcDatetime
    meter_start_wh: WattHours
    energy_wh: WattHours = 0.0
    transaction_ref: str | None = Field(default=None, max_length=64)


class SessionSummary(Payload):
    """A finished transaction (transaction_ref: as on TransactionState; id_tag may be null).

    id_tag: the card that authorised it; None when it was never authorised (an OCPP 2.0.1
    transaction started at plug-in, TxStartPoint EVConnected, whose EV left before a card or a
    remote start came; it delivered no energy).
    """

    transaction_id: int | None
    id_tag: IdTag | None = None
    started_at: UtcDatetime
    stopped_at: UtcDatetime
    meter_start_wh: WattHours
    meter_stop_wh: WattHours
    energy_wh: WattHours
    stop_reason: StopReason
    transaction_ref: str | None = Field(default=None, max_length=64)


class ChargingState(Payload):
    """Whether charging is enabled on the connector and the current limit in force.

    command_limit_a: the limit the set_current_limit command set (None: none set); the limit in
    force is the lowest of it, the profiles, off-peak and the energy manager.

    Off-peak charging: offpeak_waiting when the running transaction is held at 0 A until the
    off-peak window opens at offpeak_until (set whenever off-peak is enabled and the window is
    closed); offpeak_override when an admin let this transaction charge regardless.

    The site energy manager: energy_limit_a is its limit in force. The gateway holds it only
    while it is refreshed: when none came within VOLTBUS_ENERGY_LIMIT_TIMEOUT_S, or the energy
    manager's status says offline (its Will), energy_fail_safe is true with the reason, and the
    gateway's fail-safe limit VOLTBUS_ENERGY_LIMIT_FAILSAFE_A takes its place until the energy
    manager's next limit. limit_source names the input that sets current_limit_a.
    """

    enabled: bool
    current_limit_a: Amps | None = None
    ts: UtcDatetime = Field(default_factory=utcnow)
    offpeak_waiting: bool = False
    offpeak_until: UtcDatetime | None = None
    offpeak_override: bool = False
    command_limit_a: Amps | None = None  # set by set_current_limit (kept across restarts)
    limit_source: LimitSource | None = Field(
        default=None, description="which input sets current_limit_a (the lowest in force)")
    energy_limit_a: Amps | None = Field(
        default=None, description="the energy manager's limit in force, or the fail-safe limit "
                                  "while energy_fail_safe; null: none (no energy manager heard)")
    energy_fail_safe: bool = Field(
        default=False, description="the energy manager is lost (its limit was not refreshed "
                                   "within VOLTBUS_ENERGY_LIMIT_TIMEOUT_S, or its status went "
                                   "offline): energy_limit_a is VOLTBUS_ENERGY_LIMIT_FAILSAFE_A")
    energy_fail_safe_reason: str | None = Field(default=None, max_length=100,
                                                description="why, while energy_fail_safe")


class DisplayMessage(Payload):
    """One display message the central system set (OCPP 2.0.1 SetDisplayMessage).

    id: the central system's message id. connector: the display of that connector (EVSE) only;
    null: the station's. state: shown only in that state (null: in any); transaction_ref: shown
    only during that transaction (it goes when the transaction ends). starts_at/ends_at: its
    window (it goes at ends_at). content is text in `format` (URI: an address, shown as text).
    """

    id: int = Field(ge=0)
    priority: MessagePriority
    format: MessageFormat
    content: str = Field(max_length=512)
    language: str | None = Field(default=None, max_length=8)
    state: MessageState | None = None
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    transaction_ref: str | None = Field(default=None, max_length=64)
    connector: int | None = Field(default=None, ge=1)


class DisplayMessages(Payload):
    """The display messages the station shows now, in display order: the AlwaysFront one on
    top (only the newest, OCPP 2.0.1: a newer one replaces it), then InFront, then NormalCycle,
    each priority oldest first. Messages set for later, for another state or for a transaction
    not running are not in it; an empty list: none."""

    messages: list[DisplayMessage] = Field(default_factory=list, max_length=1000)
    ts: UtcDatetime = Field(default_factory=utcnow)


class GatewayCommand(Payload):
    """A command to the gateway; request_id, when given, comes back in the result.

    Fields by command: start needs id_tag; set_current_limit needs amps;
    change_availability needs operative; reset takes hard (true: the gateway restarts, as
    OCPP Reset Hard; false or omitted: Soft, the OCPP session restarts). The others take none.
    """

    command: CommandName
    request_id: str | None = Field(default=None, max_length=64)
    id_tag: IdTag | None = None
    amps: CommandAmps | None = None
    operative: StrictBool | None = None
    hard: StrictBool | None = None

    @model_validator(mode="after")
    def _fields_for_command(self) -> Self:
        needed = {
            CommandName.START: "id_tag",
            CommandName.SET_CURRENT_LIMIT: "amps",
            CommandName.CHANGE_AVAILABILITY: "operative",
        }.get(self.command)
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"command {self.command.value!r} needs field {needed!r}")
        return self


class CommandResult(Payload):
    """The gateway's answer to a GatewayCommand."""

    request_id: str | None
    command: CommandName | None
    status: CommandStatus
    reason: str | None = None
    ts: UtcDatetime = Field(default_factory=utcnow)


# --- any service -> bus ------------------------------------------------------------------------


class RejectedMessage(Payload):
    """A message a service dropped, and why: so a script author sees their mistake."""

    topic: str
    reason: str
    ts: UtcDatetime = Field(default_factory=utcnow)


class RecorderHealth(Payload):
    """The recorder's state: is InfluxDB taking writes, how full the spool is, what was lost."""

    ok: bool = Field(description="writing to InfluxDB, spool below 80 %, nothing dropped")
    influx_reachable: bool | None = Field(description="null until the first write was tried")
    target: str = Field(max_length=300, description="API generation and URL written to")
    spooled: int = Field(ge=0, description="points waiting in the on-disk spool")
    spool_max: int = Field(ge=0, description="the spool's cap (VOLTBUS_RECORDER_SPOOL_MAX_POINTS)")
    spool_near_full: bool
    dropped: int = Field(ge=0, description="oldest points dropped because the spool was full")
    spool_bytes: int = Field(default=0, ge=0, description="disk the spool uses (database and log)")
    dead_letters: int = Field(ge=0, description="points InfluxDB rejected, kept aside")
    written: int = Field(ge=0, description="points written since the recorder started")
    last_write_at: UtcDatetime | None = None
    last_error: str | None = Field(default=None, max_length=600)
    ts: UtcDatetime = Field(default_factory=utcnow)


# --- simulator control (voltbus sim, tests) ----------------------------------------------------


class SimBay(Payload):
    """A vehicle drives into (or out of) the simulated parking bay."""

    occupied: StrictBool


class SimPlug(Payload):
    """Plug the simulated EV in or out."""

    plugged: StrictBool


class SimTap(Payload):
    """Present a card to the simulated reader."""

    id_tag: IdTag
    reader: str = Field(default="sim", min_length=1, max_length=64)


class SimEv(Payload):
    """Change how the simulated EV behaves; unset fields stay as they are."""

    max_current_a: CommandAmps | None = None
    phases: Phases | None = None
    full: StrictBool | None = Field(default=None,
                                    description="a full battery stops drawing current")


class SimFault(Payload):
    """Inject a hardware fault on a simulated connector; NoError clears it."""

    code: ChargePointErrorCode
    info: str | None = Field(default=None, max_length=50)


# --- energy manager (site) ---------------------------------------------------------------------


class SiteState(Payload):
    """The site's grid connection as the energy manager sees it; power > 0 is import."""

    grid_power_w: Watts | None = Field(description="null while the grid meter is silent")
    grid_current_a: PhaseValues | None = Field(default=None, description="per phase, > 0 import")
    pv_power_w: Watts | None = None
    battery_power_w: Watts | None = Field(default=None, description="> 0: the battery discharges")
    battery_soc_pct: float | None = Field(default=None, ge=0, le=100)
    battery_status: str | None = Field(default=None, max_length=200, description="why the "
                                       "battery has no reading (a rejected payload, a failed "
                                       "read, silent); null while it reports or none is set up")
    charge_power_w: Watts = Field(default=0.0, description="all controlled connectors together")
    surplus_w: Watts = Field(default=0.0, description="export the cars could take (PV modes)")
    fuse_limit_a: Amps = Field(description="the grid connection's limit per phase")
    max_import_w: Watts | None = Field(default=None, description="the import power cap, if any")
    price_per_kwh: FiniteFloat | None = Field(default=None, description="tariff in force now")
    price_status: str | None = Field(default=None, max_length=200,
                                     description="the price feed's state, e.g. a fetch error")
    co2_g_per_kwh: FiniteFloat | None = Field(default=None, description="grid CO2 intensity now")
    fail_safe: bool = Field(default=False,
                            description="the grid meter is silent: the fail-safe limit rules")
    unreachable_stations: list[StationId] = (
        Field(default_factory=list, max_length=1000,
              description="stations whose bridge to the site broker is down "
                          "({station}/bridge/state 0): their gateways are in fail-safe, "
                          "their last limits stay reserved in the fuse share"))
    ts: UtcDatetime = Field(default_factory=utcnow)

    def house_power_w(self) -> float | None:
        """What the rest of the house uses: grid + PV + battery - the cars (None: grid unknown)."""
        if self.grid_power_w is None:
            return None
        return (self.grid_power_w + (self.pv_power_w or 0.0) + (self.battery_power_w or 0.0)
                - self.charge_power_w)


class SessionCost(Payload):
    """A transaction's cost at the tariff in force while it charged: each interval between two
    meter readings costs its energy at the price of its time (split where the price changes)."""

    transaction_ref: str | None = Field(default=None, max_length=64,
                                        description="as on TransactionState")
    transaction_id: int | None = None
    started_at: UtcDatetime
    stopped_at: UtcDatetime | None = Field(default=None, description="set when final")
    energy_wh: WattHours = Field(description="counted so far (the meter's register moves)")
    cost: FiniteFloat = Field(description="the priced energy's cost (tariff currency)")
    unpriced_wh: WattHours = Field(default=0.0,
                                   description="energy at times the tariff had no price for")
    price_per_kwh: FiniteFloat | None = Field(default=None, description="the price now")
    final: bool = Field(default=False, description="the transaction ended: this is its cost")
    ts: UtcDatetime = Field(default_factory=utcnow)


class EnergyLimitCommand(Payload):
    """The energy manager's current limit for one connector; below 6 A it is 0 (pause).

    Valid only while it is refreshed: the energy manager sends it again every
    VOLTBUS_ENERGY_RESEND_S, and a gateway that heard none for VOLTBUS_ENERGY_LIMIT_TIMEOUT_S
    applies its fail-safe limit. site: the energy manager's VOLTBUS_ENERGY_SITE, whose
    `service/energy/status` the gateway then follows (offline: fail-safe at once)."""

    amps: CommandAmps
    reason: str | None = Field(default=None, max_length=100)
    site: str | None = Field(default=None, pattern=r"^[^/+# ]{1,48}$",
                             description="the energy manager's site id")
    ts: UtcDatetime = Field(default_factory=utcnow)


class ChargeModeSetting(Payload):
    """A connector's charge mode and plan, as a user sets it."""

    mode: ChargeMode
    priority: StrictInt = Field(default=0, ge=0, le=9, description="higher is served first")
    plan_energy_wh: CommandWattHours | None = Field(default=None,
                                                    description="Plan: energy to add")
    plan_departure: UtcDatetime | None = Field(default=None, description="Plan: ready by")
    plan_objective: PlanObjective = Field(default=PlanObjective.COST,
                                          description="Plan: lowest cost or lowest CO2")


class PlanSlot(Payload):
    """One chosen hour (or window) of a charge plan, at the tariff's price."""

    start: UtcDatetime
    end: UtcDatetime
    price_per_kwh: FiniteFloat | None = Field(description="null: the tariff has no price yet")
    co2_g_per_kwh: FiniteFloat | None = None
    energy_wh: WattHours | None = Field(default=None, description="planned in this slot")


class ChargeModeState(ChargeModeSetting):
    """The charge mode in force on a connector, with what the energy manager does about it."""

    limit_a: Amps | None = Field(default=None, description="the limit last sent")
    status: str | None = Field(default=None, max_length=200, description="why, in words")
    plan_slots: list[PlanSlot] = Field(default_factory=list, max_length=200)
    plan_cost: FiniteFloat | None = Field(default=None, description="the plan's slots at the "
                                          "tariff (currency); null if a price is unknown")
    plan_co2_g: FiniteFloat | None = Field(default=None, description="the plan's grid CO2 (g)")
    plan_added_wh: WattHours | None = Field(default=None, description="added since the plan")
    plan_missing_wh: WattHours | None = Field(default=None,
                                              description="what cannot be added by departure")
    plan_meter_start_wh: WattHours | None = Field(
        default=None, description="the connector meter's register when the plan began")
    phases: Phases | None = Field(
        default=None, description="the phases the connector charges on, as its hardware "
                                  "confirms (null: no phase switch; the configured phases)")
    phase_switching: bool = Field(
        default=False, description="a 1p/3p switch is in progress (charging paused)")
    ts: UtcDatetime = Field(default_factory=utcnow)
