"""String enums shared on the wire, spelled exactly as they travel (IEC 61851, OCPP 1.6, HA)."""

from __future__ import annotations

from enum import StrEnum


class PilotState(StrEnum):
    """IEC 61851 control-pilot state: A no EV, B EV connected, C/D charging, E/F fault."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"


class ChargePointErrorCode(StrEnum):
    """OCPP 1.6 ChargePointErrorCode; NoError clears a fault."""

    CONNECTOR_LOCK_FAILURE = "ConnectorLockFailure"
    EV_COMMUNICATION_ERROR = "EVCommunicationError"
    GROUND_FAILURE = "GroundFailure"
    HIGH_TEMPERATURE = "HighTemperature"
    INTERNAL_ERROR = "InternalError"
    LOCAL_LIST_CONFLICT = "LocalListConflict"
    NO_ERROR = "NoError"
    OTHER_ERROR = "OtherError"
    OVER_CURRENT_FAILURE = "OverCurrentFailure"
    OVER_VOLTAGE = "OverVoltage"
    POWER_METER_FAILURE = "PowerMeterFailure"
    POWER_SWITCH_FAILURE = "PowerSwitchFailure"
    READER_FAILURE = "ReaderFailure"
    RESET_FAILURE = "ResetFailure"
    UNDER_VOLTAGE = "UnderVoltage"
    WEAK_SIGNAL = "WeakSignal"


class ConnectorStatus(StrEnum):
    """OCPP 1.6 ChargePointStatus."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class RegistrationStatus(StrEnum):
    """OCPP 1.6 BootNotification answer."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class StopReason(StrEnum):
    """OCPP 1.6 StopTransaction reason."""

    DE_AUTHORIZED = "DeAuthorized"
    EMERGENCY_STOP = "EmergencyStop"
    EV_DISCONNECTED = "EVDisconnected"
    HARD_RESET = "HardReset"
    LOCAL = "Local"
    OTHER = "Other"
    POWER_LOSS = "PowerLoss"
    REBOOT = "Reboot"
    REMOTE = "Remote"
    SOFT_RESET = "SoftReset"
    UNLOCK_COMMAND = "UnlockCommand"


class MeterTrigger(StrEnum):
    """Why the hardware read the meter: its period, or a relay switch just before."""

    PERIODIC = "periodic"
    RELAY_CLOSED = "relay_closed"
    RELAY_OPENED = "relay_opened"


class LockState(StrEnum):
    """A connector's cable lock, as its position feedback confirms it."""

    LOCKED = "locked"
    UNLOCKED = "unlocked"
    FAILED = "failed"
    NOT_SUPPORTED = "not_supported"


class LedPattern(StrEnum):
    """How an indicator LED shows its colour."""

    OFF = "off"
    SOLID = "solid"
    BLINK = "blink"
    PULSE = "pulse"


class ServiceState(StrEnum):
    """A service's availability; Home Assistant's default payload words."""

    ONLINE = "online"
    OFFLINE = "offline"


class BridgeState(StrEnum):
    """A bridge's link as Mosquitto's bridge notifications publish it: `1` up, `0` down."""

    UP = "1"
    DOWN = "0"


class Service(StrEnum):
    """The services on the bus; their names appear in topics and as MQTT users."""

    HARDWARE = "hardware"
    GATEWAY = "gateway"
    RECORDER = "recorder"
    API = "api"
    ENERGY = "energy"


class CardType(StrEnum):
    """What kind of card a reader reads (the OCPP 2.0.1 IdTokenEnumType it is sent as)."""

    ISO14443 = "ISO14443"  # proximity: Mifare, NFC-A (MFRC522, PN532)
    ISO15693 = "ISO15693"  # vicinity cards (readers configured to say so)


class CommandName(StrEnum):
    """Commands the gateway takes from the API, Home Assistant and users' scripts."""

    START = "start"
    STOP = "stop"
    SET_CURRENT_LIMIT = "set_current_limit"
    ENABLE_CHARGING = "enable_charging"
    DISABLE_CHARGING = "disable_charging"
    CHANGE_AVAILABILITY = "change_availability"
    UNLOCK = "unlock"
    OVERRIDE_OFFPEAK = "override_offpeak"
    RESET = "reset"


class CommandStatus(StrEnum):
    """The gateway's answer to a command."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    FAILED = "Failed"
    NOT_SUPPORTED = "NotSupported"


class ChargeMode(StrEnum):
    """How the energy manager charges one connector (the modes evcc users know)."""

    OFF = "off"
    NOW = "now"
    MIN_PV = "minpv"
    PV = "pv"
    PLAN = "plan"


class LimitSource(StrEnum):
    """Which input sets a connector's effective current limit (ocpp/{c}/charging limit_source):
    the effective limit is the lowest of them; on a tie the first of this order is named."""

    DISABLED = "disabled"  # charging disabled (disable_charging, 0 A)
    ENERGY_FAIL_SAFE = "energy_fail_safe"  # the energy manager is lost: the gateway's safe limit
    OFF_PEAK = "off_peak"  # the off-peak window policy holds the session (0 A)
    HARDWARE = "hardware"  # the station's maximum (VOLTBUS_MAX_CURRENT_A)
    CONFIG = "config"  # a configured per-connector cap (2.0.1 EVSE Power maxSet)
    COMMAND = "command"  # set_current_limit
    PROFILE = "profile"  # the central system's charging profiles
    ENERGY_MANAGER = "energy_manager"  # the site energy manager's limit


class PlanObjective(StrEnum):
    """What a charge plan minimises: the cost at the tariff, or the grid's CO2 intensity."""

    COST = "cost"
    CO2 = "co2"


class MessagePriority(StrEnum):
    """A display message's priority (OCPP 2.0.1 MessagePriorityEnumType): AlwaysFront is shown
    on top of everything (a newer AlwaysFront message takes its place), InFront before the
    normal cycle, NormalCycle in turn with the others."""

    ALWAYS_FRONT = "AlwaysFront"
    IN_FRONT = "InFront"
    NORMAL_CYCLE = "NormalCycle"


class MessageState(StrEnum):
    """When a display message is shown (OCPP 2.0.1 MessageStateEnumType): while charging,
    faulted, idle (not charging) or unavailable."""

    CHARGING = "Charging"
    FAULTED = "Faulted"
    IDLE = "Idle"
    UNAVAILABLE = "Unavailable"


class MessageFormat(StrEnum):
    """A display message's format (OCPP 2.0.1 MessageFormatEnumType). voltbus takes ASCII,
    UTF8 and URI; HTML is refused (it would be markup from the central system on the page)."""

    ASCII = "ASCII"
    HTML = "HTML"
    URI = "URI"
    UTF8 = "UTF8"
