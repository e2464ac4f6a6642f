"""Version-neutral answers and reading kinds the model speaks; each protocol maps its own names.

Values are our own spelling, never a protocol's: `protocol/v16/convert.py` (and a later
`protocol/v201/`) translate them, so the model cannot depend on one OCPP version's vocabulary.
"""

from __future__ import annotations

from enum import StrEnum


class AuthStatus(StrEnum):
    """What the central system (or the local list/cache) says about an id token."""

    ACCEPTED = "accepted"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    INVALID = "invalid"
    CONCURRENT_TX = "concurrent_tx"

    @classmethod
    def _missing_(cls, value: object) -> AuthStatus | None:
        """Rows stored before the model was version-neutral hold the 1.6 spelling
        ("ConcurrentTx"): accept it, so an upgraded station keeps its cache and local list."""
        if isinstance(value, str):
            folded = value.replace("_", "").lower()
            for member in cls:
                if member.value.replace("_", "") == folded:
                    return member
        return None

    @property
    def label(self) -> str:
        """The status as people read it in a command's reason ("Invalid", "ConcurrentTx")."""
        return "".join(part.capitalize() for part in self.value.split("_"))


class Outcome(StrEnum):
    """The model's synchronous answer to a central-system request."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"  # applies when the running transaction ends
    NOT_SUPPORTED = "not_supported"
    UNLOCKED = "unlocked"
    UNLOCK_FAILED = "unlock_failed"  # the cable lock did not confirm the unlock
    OCCUPIED = "occupied"  # a reservation: the connector is in use
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"


class ReadingContext(StrEnum):
    """Why a meter reading was taken."""

    PERIODIC = "periodic"  # every sample interval during a transaction
    CLOCK = "clock"  # at whole clock-aligned intervals
    TRIGGER = "trigger"  # the central system asked for it
    BEGIN = "begin"  # the register at the start of a transaction
    END = "end"  # the register at the end of a transaction


class Measurand(StrEnum):
    """A quantity a meter value may carry (the unit is in the name)."""

    ENERGY_IMPORT_WH = "energy_import_wh"
    POWER_IMPORT_W = "power_import_w"
    CURRENT_IMPORT_A = "current_import_a"
    VOLTAGE_V = "voltage_v"
    CURRENT_OFFERED_A = "current_offered_a"


class TxStart(StrEnum):
    """Where a transaction may start (2.0.1 TxCtrlr.TxStartPoint, the first one reached).

    POWER_PATH_CLOSED: once an authorised id token and a plugged-in EV are both there, the relay
    closing with it (OCPP 1.6 always). EV_CONNECTED: at plug-in, before authorisation (the id
    token follows as an update). AUTHORIZED: at authorisation, before plug-in (the EV then has
    connection_timeout_s to connect, else the transaction ends timed out). ENERGY_TRANSFER:
    when the EV starts drawing power.
    """

    POWER_PATH_CLOSED = "power_path_closed"
    EV_CONNECTED = "ev_connected"
    AUTHORIZED = "authorized"
    # once energy flows: authorised, plugged in and the relay closed first (without a
    # transaction), the transaction starting when the EV draws (pilot C/D, relay closed, a
    # current offered); a point on its own only: any other one is reached before it
    ENERGY_TRANSFER = "energy_transfer"
    # the bay detector sees a vehicle (before plug-in and authorisation, which follow as
    # updates); needs a connector with a detector (hw/{c}/bay)
    PARKING_BAY = "parking_bay"


class TransferEnd(StrEnum):
    """How the energy transfer of a transaction ended, when that ends it (2.0.1 TxStopPoint
    EnergyTransfer): the EV stopped drawing (pilot back to B), the EVSE stopped offering (no
    current, or the relay opened without being told), or the EV was unplugged."""

    EV_SUSPENDED = "ev_suspended"
    EVSE_SUSPENDED = "evse_suspended"
    EV_DISCONNECTED = "ev_disconnected"


class TxUpdate(StrEnum):
    """Why a running transaction is reported between its start and its end (besides meter
    values): the id token arrived after a start at plug-in, the EV arrived after a start at
    authorisation, or an external limit set or released moved its charging rate by more than
    the significance (model/external_limits.py; 2.0.1 K11.FR.04/K13.FR.03), or its charging
    state changed with no other message to carry it (2.0.1 ChargingStateChanged, E02/E06)."""

    AUTHORIZED = "authorized"
    EV_CONNECTED = "ev_connected"
    CHARGING_RATE_CHANGED = "charging_rate_changed"
    CHARGING_STATE_CHANGED = "charging_state_changed"
    TRIGGERED = "triggered"  # the central system asked (no meter reading to send with it)


class ChargingState(StrEnum):
    """Where a running transaction's energy transfer is (2.0.1 ChargingStateEnumType), derived
    from the same facts as the connector status (model/connector.py `charging_state`): the EV
    draws (CHARGING), is connected but nothing flows yet or any more (EV_CONNECTED: not
    authorised, the relay still closing, after the stop), the EVSE offers and the EV takes
    nothing (SUSPENDED_EV), the EVSE offers nothing (SUSPENDED_EVSE), no EV is connected
    (IDLE)."""

    CHARGING = "charging"
    EV_CONNECTED = "ev_connected"
    SUSPENDED_EV = "suspended_ev"
    SUSPENDED_EVSE = "suspended_evse"
    IDLE = "idle"
