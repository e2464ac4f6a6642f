"""The topic contract: every topic pattern bound to its payload model, QoS, retain flag and writers.

This module is the single source of truth. `docs/topics.md` and the broker ACL are generated from
`CHANNELS`; no service formats a topic string by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property, lru_cache
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from voltbus_common import models as m
from voltbus_common.enums import BridgeState, ServiceState

DEFAULT_ROOT = "voltbus/v1"
P = TypeVar("P", bound=BaseModel | ServiceState | BridgeState)

# Who may publish on a channel: the four services plus the clients that send commands.
HARDWARE, GATEWAY, RECORDER, API = "hardware", "gateway", "recorder", "api"
HOMEASSISTANT, OPERATOR = "homeassistant", "operator"
ENERGY = "energy"
# Not a user of the Pi's broker: a Mosquitto bridge publishes its own link state (on the Pi's
# broker as the broker itself, on the site broker as its bridge user, voltbus_common.bridge).
BRIDGE = "bridge"
COMMANDERS = frozenset({API, HOMEASSISTANT, OPERATOR})
ALL_USERS = (HARDWARE, GATEWAY, RECORDER, API, HOMEASSISTANT, OPERATOR, ENERGY)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class PayloadError(ValueError):
    """A payload that does not fit its channel; the message says why."""


@dataclass(frozen=True)
class Channel(Generic[P]):
    """A topic pattern bound to its payload model, QoS, retain flag and the users that write it."""

    pattern: str
    model: type[P]
    qos: int
    retain: bool
    writers: frozenset[str]
    doc: str
    empty_clears: bool = False
    example: dict[str, object] | str = field(default_factory=dict)

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """The placeholders of the pattern besides root, in order."""
        return tuple(name for name in _PLACEHOLDER.findall(self.pattern) if name != "root")

    def topic(self, root: str, **args: str | int) -> str:
        """The concrete topic for these arguments (station, connector, service)."""
        values = {name: str(args[name]) for name in self.fields}
        for name, value in values.items():
            if not value or any(c in value for c in "/+#"):
                raise ValueError(f"{name} {value!r} is not a valid topic level")
        return self.pattern.format(root=root, **values)

    def filter(self, root: str, **args: str | int) -> str:
        """A subscription filter: unspecified placeholders become `+`."""
        return self.pattern.format(root=root, **{n: str(args.get(n, "+")) for n in self.fields})

    def match(self, root: str, topic: str) -> dict[str, str] | None:
        """The placeholder values if the topic belongs to this channel, else None."""
        found = _matcher(self.pattern, root).fullmatch(topic)
        return found.groupdict() if found else None

    def encode(self, payload: P | None) -> bytes:
        """Wire bytes: JSON for models, plain text for ServiceState and BridgeState, empty to
        clear."""
        if payload is None:
            if not self.empty_clears:
                raise ValueError(f"{self.pattern} cannot carry an empty payload")
            return b""
        if isinstance(payload, ServiceState | BridgeState):
            return payload.value.encode()
        return payload.model_dump_json(exclude_none=False).encode()

    def decode(self, raw: bytes) -> P | None:
        """Parse wire bytes; raises PayloadError with a reason a person can act on."""
        if not raw:
            if self.empty_clears:
                return None
            raise PayloadError("empty payload")
        if issubclass(self.model, Enum):
            text = raw.decode(errors="replace").strip()
            try:
                return self.model(text)  # type: ignore[return-value,unused-ignore]
            except ValueError:
                words = "/".join(str(v.value) for v in self.model)
                raise PayloadError(f"expected one of {words}, got {text[:40]!r}") from None
        try:
            return self.model.model_validate_json(raw)  # type: ignore[union-attr,return-value,unused-ignore]
        except ValidationError as exc:
            raise PayloadError(_describe(exc)) from None


@lru_cache(maxsize=256)
def _matcher(pattern: str, root: str) -> re.Pattern[str]:
    """The compiled regex of a pattern under a root: built once, not on every message."""
    regex = re.escape(pattern.replace("{root}", root))
    regex = regex.replace(r"\{", "{").replace(r"\}", "}")
    regex = _PLACEHOLDER.sub(lambda g: f"(?P<{g.group(1)}>[^/]+)", regex)
    return re.compile(regex)


def _describe(exc: ValidationError) -> str:
    """A one-line reason from a pydantic error: field path and message."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(x) for x in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _ch(
    pattern: str,
    model: type[P],
    *,
    qos: int = 1,
    retain: bool,
    writers: frozenset[str] | str,
    doc: str,
    empty_clears: bool = False,
    example: dict[str, object] | str,
) -> Channel[P]:
    who = frozenset({writers}) if isinstance(writers, str) else writers
    return Channel(
        "{root}/{station}/" + pattern, model, qos, retain, who, doc, empty_clears, example
    )


_TS = "2026-01-01T12:00:00Z"

# --- hardware: measured state and events ---------------------------------------------------------
PILOT = _ch("hw/{connector}/pilot", m.PilotEvent, retain=True, writers=HARDWARE,
            doc="IEC 61851 control-pilot state measured by the EVSE.",
            example={"state": "B", "ts": _TS})
METER = _ch("hw/{connector}/meter", m.MeterReading, retain=True, writers=HARDWARE,
            doc="A meter reading; energy_wh is the meter's register (never reset by voltbus); "
                "trigger says periodic or right after a relay switch.",
            example={"energy_wh": 12345.6, "power_w": 7360.0, "current_a": [10.7, 10.6, 10.7],
                     "voltage_v": [230.1, 229.8, 231.0], "ts": _TS, "trigger": "periodic"})
RELAY = _ch("hw/{connector}/relay", m.RelayState, retain=True, writers=HARDWARE,
            doc="The relay position actually switched. After a switch the pilot is re-read "
                "and published first: when this arrives, `pilot` already shows the state the "
                "new position settled to.",
            example={"closed": True, "ts": _TS, "request_id": "tx-42-start"})
SWITCH_READING = _ch(
    "hw/{connector}/relay/reading", m.SwitchReading, retain=True, writers=HARDWARE,
    doc="The meter read right after every relay switch (within about 1.5 s; the same reading "
        "also goes to `meter` with its trigger; a relay/set that changes nothing gets one only "
        "when it carries a request_id): energy_wh is the register when the relay "
        "closed (relay_closed) or after it opened (relay_opened). Match it to the `relay` "
        "state by relay_ts, or to your relay/set by request_id. Not published when the "
        "connector has no meter or the meter did not answer (`error` says PowerMeterFailure).",
    example={"energy_wh": 12345.6, "power_w": 0.0, "current_a": [0.0, 0.0, 0.0],
             "voltage_v": [230.1, 229.8, 231.0], "ts": _TS, "trigger": "relay_opened",
             "relay_ts": _TS, "request_id": "tx-42-stop", "settled": True})
LOCK = _ch("hw/{connector}/lock", m.LockStatus, retain=True, writers=HARDWARE,
           doc="The cable lock as its feedback confirms it: locked, unlocked, failed (a move "
               "not confirmed in time; ConnectorLockFailure on `error`), not_supported (no lock "
               "configured). Every lock/set is answered here with its request_id.",
           example={"state": "unlocked", "request_id": "unlock-7", "reason": None, "ts": _TS})
BAY = _ch("hw/{connector}/bay", m.BayOccupancy, retain=True, writers=HARDWARE,
          doc="The parking bay detector (loop or ultrasonic sensor on a digital input) in "
              "front of the connector: occupied while it detects a vehicle. Published at "
              "start-up and on every change; never published for a connector without one "
              "(2.0.1 TxStartPoint/TxStopPoint ParkingBayOccupancy need it).",
          example={"occupied": True, "ts": _TS})
PHASES = _ch("hw/{connector}/phases", m.PhaseState, retain=True, writers=HARDWARE,
             doc="The phases the connector's supply has (1 or 3) as its phase switch confirms "
                 "them; null phases and switchable false without a phase switch. Every "
                 "phases/set is answered here with its request_id (reason: why it was "
                 "refused).",
             example={"phases": 1, "switchable": True, "request_id": "energy-phases-3",
                      "reason": None, "ts": _TS})
HW_ERROR = _ch("hw/{connector}/error", m.HardwareError, retain=True, writers=HARDWARE,
               doc="A hardware fault as an OCPP 1.6 ChargePointErrorCode; NoError clears it.",
               example={"code": "PowerMeterFailure", "info": "no answer from meter 1", "ts": _TS})
RFID = _ch("hw/rfid", m.RfidSeen, retain=False, writers=HARDWARE,
           doc="A card presented to a reader, once per presentation.",
           example={"id_tag": "04A1B2C3", "reader": "front", "ts": _TS})
RFID_LAST = _ch("hw/rfid/last", m.RfidSeen, retain=True, writers=HARDWARE,
                doc="The last card presented to any reader of the station (the same payload "
                    "as its `hw/rfid` event), retained: a client that starts later sees it.",
                example={"id_tag": "04A1B2C3", "reader": "front", "ts": _TS})

# --- gateway -> hardware: commands ---------------------------------------------------------------
RELAY_SET = _ch("hw/{connector}/relay/set", m.RelayCommand, retain=False, writers=GATEWAY,
                doc="Open or close the relay; request_id (optional) comes back on `relay` and "
                    "`relay/reading`.", example={"closed": False, "request_id": "tx-42-stop"})
CURRENT_LIMIT_SET = _ch("hw/{connector}/current_limit/set", m.CurrentLimitCommand, retain=False,
                        writers=GATEWAY,
                        doc="Current the EV may draw per phase; 0 pauses charging.",
                        example={"amps": 16.0})
LOCK_SET = _ch("hw/{connector}/lock/set", m.LockCommand, retain=False, writers=GATEWAY,
               doc="Lock or unlock the cable; the answer is the next `lock` state with this "
                   "request_id. Unlocking while the relay is closed is refused (state stays "
                   "locked, reason says why).",
               example={"locked": False, "request_id": "unlock-7"})
PHASES_SET = _ch("hw/{connector}/phases/set", m.PhaseCommand, retain=False,
                 writers=frozenset({ENERGY, OPERATOR}),
                 doc="Switch the connector's supply to 1 or 3 phases (a contactor on L2/L3). "
                     "Refused while current may flow: the relay is closed and the EVSE offers "
                     "current or the meter shows current (pause at 0 A first); the answer is "
                     "the next `phases` state with this request_id.",
                 example={"phases": 3, "request_id": "energy-phases-3"})
LED_SET = _ch("hw/{connector}/led/set", m.LedCommand, retain=False, writers=GATEWAY,
              doc="What the connector's LED shows.", example={"color": "green", "pattern": "solid"})

# --- gateway: charge point state -----------------------------------------------------------------
OCPP_CONNECTION = _ch("ocpp/connection", m.OcppConnection, retain=True, writers=GATEWAY,
                      doc="The link to the central system and the BootNotification answer.",
                      example={"connected": True, "registration": "Accepted", "since": _TS,
                                "firmware_version": "0.1.0", "last_heartbeat": _TS})
OCPP_STATUS = _ch("ocpp/{connector}/status", m.OcppConnectorStatus, retain=True, writers=GATEWAY,
                  doc="Connector status (OCPP 1.6 ChargePointStatus) as reported to the central "
                      "system; connector 0 is the station as a whole (Available or "
                      "Unavailable). operative / scheduled_operative: the availability "
                      "ChangeAvailability set, and a change waiting for a transaction to end.",
                  example={"status": "Charging", "error_code": "NoError", "ts": _TS,
                           "operative": True, "scheduled_operative": None})
TRANSACTION = _ch("ocpp/{connector}/transaction", m.TransactionState, retain=True, writers=GATEWAY,
                  empty_clears=True,
                  doc="The running transaction; an empty retained payload when there is none. "
                      "Published at once when it starts, gets its central-system id and ends; "
                      "while it charges, a grown energy_wh at most every 10 s (the latest value "
                      "within 10 s of its reading; before issue 14: every reading). The live "
                      "energy is hw/{connector}/meter's energy_wh minus meter_start_wh.",
                  example={"transaction_id": 42, "id_tag": "04A1B2C3", "started_at": _TS,
                           "meter_start_wh": 12000.0, "energy_wh": 345.6})
SESSION = _ch("ocpp/{connector}/session", m.SessionSummary, retain=False, writers=GATEWAY,
              doc="A finished transaction, published once when it ends.",
              example={"transaction_id": 42, "id_tag": "04A1B2C3", "started_at": _TS,
                       "stopped_at": "2026-01-01T13:00:00Z", "meter_start_wh": 12000.0,
                       "meter_stop_wh": 19000.0, "energy_wh": 7000.0, "stop_reason": "Local"})
LAST_SESSION = _ch("ocpp/{connector}/last_session", m.SessionSummary, retain=True,
                   writers=GATEWAY,
                   doc="The connector's last finished transaction (the same payload as its "
                       "`session` event), retained: a client that starts later sees it.",
                   example={"transaction_id": 42, "id_tag": "04A1B2C3", "started_at": _TS,
                            "stopped_at": "2026-01-01T13:00:00Z", "meter_start_wh": 12000.0,
                            "meter_stop_wh": 19000.0, "energy_wh": 7000.0,
                            "stop_reason": "Local"})
CHARGING = _ch("ocpp/{connector}/charging", m.ChargingState, retain=True, writers=GATEWAY,
               doc="Whether charging is enabled and the current limit in force (null: none set); "
                   "offpeak_waiting/offpeak_until/offpeak_override: the off-peak policy; "
                   "limit_source: which input sets the limit; energy_limit_a: the energy "
                   "manager's limit in force; energy_fail_safe (with energy_fail_safe_reason): "
                   "the energy manager is lost (no limit within VOLTBUS_ENERGY_LIMIT_TIMEOUT_S, "
                   "or its status offline) and the gateway's fail-safe limit "
                   "VOLTBUS_ENERGY_LIMIT_FAILSAFE_A applies until its next limit.",
               example={"enabled": True, "current_limit_a": 6.0, "ts": _TS,
                        "offpeak_waiting": False, "offpeak_until": None,
                        "offpeak_override": False, "command_limit_a": None,
                        "limit_source": "energy_fail_safe", "energy_limit_a": 6.0,
                        "energy_fail_safe": True,
                        "energy_fail_safe_reason": "no energy manager limit for 30 s"})

DISPLAY = _ch("ocpp/display", m.DisplayMessages, retain=True, writers=GATEWAY,
              doc="The display messages the station shows now (OCPP 2.0.1 SetDisplayMessage; "
                  "1.6 has none: the list stays empty), in display order; republished when "
                  "one is set, cleared, starts, ends, or its state or transaction condition "
                  "changes. The web page shows them.",
              example={"messages": [{"id": 7, "priority": "AlwaysFront", "format": "UTF8",
                                     "content": "Free charging this weekend", "language": "en",
                                     "state": None, "starts_at": None,
                                     "ends_at": "2026-01-03T00:00:00Z",
                                     "transaction_ref": None, "connector": None}],
                       "ts": _TS})

# --- commands to the gateway, and its answers ----------------------------------------------------
COMMAND = _ch("ocpp/{connector}/command", m.GatewayCommand, retain=False, writers=COMMANDERS,
              doc="A command to the gateway (start, stop, set_current_limit, enable_charging, "
                  "disable_charging, change_availability, unlock, override_offpeak, reset). "
                  "Connector 0 means the station for change_availability; reset is sent to "
                  "connector 0 only. Answered on command/result.",
              example={"command": "start", "id_tag": "04A1B2C3", "request_id": "r-1"})
COMMAND_RESULT = _ch("ocpp/{connector}/command/result", m.CommandResult, retain=False,
                     writers=GATEWAY,
                     doc="The answer to each command, with its request_id (also for invalid ones).",
                     example={"request_id": "r-1", "command": "start", "status": "Accepted",
                              "reason": None, "ts": _TS})

# --- every service -----------------------------------------------------------------------------
SERVICE_STATUS = _ch("service/{service}/status", ServiceState, retain=True,
                     writers=frozenset({HARDWARE, GATEWAY, RECORDER, API, ENERGY}),
                     doc="`online` / `offline`; `offline` is the service's MQTT Last Will.",
                     example="online")
SERVICE_REJECTED = _ch("service/{service}/rejected", m.RejectedMessage, retain=False,
                       writers=frozenset({HARDWARE, GATEWAY, RECORDER, API, ENERGY}),
                       doc="A message the service dropped and why (invalid JSON, field out of "
                           "range, unknown connector).",
                       example={"topic": "voltbus/v1/CP1/hw/1/relay/set",
                                "reason": "closed: Input should be a valid boolean", "ts": _TS})

RECORDER_HEALTH = _ch("service/recorder/health", m.RecorderHealth, retain=True, writers=RECORDER,
                     doc="The recorder's health: InfluxDB reachable, spool fill, points dropped "
                         "at the spool cap, points InfluxDB rejected (dead letters).",
                     example={"ok": True, "influx_reachable": True,
                              "target": "InfluxDB 1.x API at http://127.0.0.1:8086",
                              "spooled": 0, "spool_max": 2000000, "spool_near_full": False,
                              "dropped": 0, "dead_letters": 0, "written": 1234,
                              "last_write_at": _TS, "last_error": None, "ts": _TS})

# --- several Pis on one site: the bridge's own link state ----------------------------------------
BRIDGE_STATE = _ch(
    "bridge/state", BridgeState, retain=True, writers=BRIDGE,
    doc="A Pi's bridge to the site broker (`voltbus bridge`; {station} is the Pi's stations, "
        "comma-separated: `P1` or `P1,P2`): `1` while the link is up, `0` when it is down. "
        "Mosquitto's bridge notifications publish it on both brokers: on the Pi's broker at "
        "once when the link drops, on the site broker as the bridge's Will (a Pi broker that "
        "crashes or is cut off, once the site broker notices) or before a clean stop. The "
        "gateway behind a bridge that is down goes to its energy fail-safe at once; the "
        "energy manager keeps reserving those stations' limits and lists them in "
        "`energy/site` unreachable_stations. Not bridged: each broker has its own copy.",
    example="0")

# --- simulated hardware control ----------------------------------------------------------------
SIM_PLUG = _ch("sim/{connector}/plug", m.SimPlug, retain=False,
               writers=frozenset({OPERATOR, API}),
               doc="Simulator only: plug the EV in or out.", example={"plugged": True})
SIM_BAY = _ch("sim/{connector}/bay", m.SimBay, retain=False,
              writers=frozenset({OPERATOR, API}),
              doc="Simulator only: a vehicle drives into or out of the bay of a connector with "
                  "a simulated bay detector (`bay: {type: sim}`); it shows on hw/{connector}/bay.",
              example={"occupied": True})
SIM_TAP = _ch("sim/rfid", m.SimTap, retain=False, writers=frozenset({OPERATOR, API}),
              doc="Simulator only: present a card.", example={"id_tag": "04A1B2C3"})
SIM_EV = _ch("sim/{connector}/ev", m.SimEv, retain=False, writers=frozenset({OPERATOR, API}),
             doc="Simulator only: EV's max current, phases, battery full.",
             example={"max_current_a": 16.0, "phases": 3, "full": False})
SIM_FAULT = _ch("sim/{connector}/fault", m.SimFault, retain=False,
                writers=frozenset({OPERATOR, API}),
                doc="Simulator only: inject a hardware fault (NoError clears).",
                example={"code": "GroundFailure", "info": "test"})

# --- energy manager (services/energy; {station} of ENERGY_SITE is the site's id) ----------------
ENERGY_SITE = _ch("energy/site", m.SiteState, retain=True, writers=ENERGY,
                  doc="The site: grid power and current per phase, PV, battery, surplus, fuse "
                      "limit, price in force, whether the fail-safe limit rules, and the "
                      "stations whose bridge is down (unreachable_stations).",
                  example={"grid_power_w": 3200.0, "grid_current_a": [5.1, 4.0, 4.8],
                           "pv_power_w": 1500.0, "battery_power_w": None,
                           "battery_soc_pct": None, "charge_power_w": 4100.0,
                           "surplus_w": 0.0, "fuse_limit_a": 25.0, "max_import_w": 17000.0,
                           "price_per_kwh": 0.31, "price_status": "ok", "co2_g_per_kwh": 310.0,
                           "fail_safe": False, "unreachable_stations": ["P3"], "ts": _TS})
ENERGY_LIMIT = _ch("energy/{connector}/limit/set", m.EnergyLimitCommand, retain=False,
                   writers=ENERGY,
                   doc="The energy manager's limit for a connector, sent when it changes, "
                       "again every VOLTBUS_ENERGY_RESEND_S and when the station's gateway "
                       "comes online; the gateway charges at min(OCPP profile, this, off-peak, "
                       "hardware maximum); below 6 A it pauses. Valid while refreshed: with none "
                       "for VOLTBUS_ENERGY_LIMIT_TIMEOUT_S, or the status of `site`'s energy "
                       "manager offline, the gateway applies its fail-safe limit instead.",
                   example={"amps": 10.0, "reason": "fuse share", "site": "home", "ts": _TS})
ENERGY_MODE = _ch("energy/{connector}/mode", m.ChargeModeState, retain=True, writers=ENERGY,
                  doc="A connector's charge mode (off, now, minpv, pv, plan), its plan and what "
                      "the energy manager does now.",
                  example={"mode": "plan", "priority": 0, "plan_energy_wh": 20000.0,
                           "plan_departure": "2026-01-02T07:00:00Z", "plan_objective": "cost",
                           "limit_a": 16.0, "status": "plan: 2 slots", "plan_slots": [
                               {"start": "2026-01-02T02:00:00Z", "end": "2026-01-02T03:00:00Z",
                                "price_per_kwh": 0.12, "co2_g_per_kwh": None,
                                "energy_wh": 11040.0},
                               {"start": "2026-01-02T03:00:00Z", "end": "2026-01-02T03:48:55Z",
                                "price_per_kwh": 0.13, "co2_g_per_kwh": None,
                                "energy_wh": 8960.0}],
                           "plan_cost": 2.49, "plan_co2_g": None, "plan_added_wh": 0.0,
                           "plan_missing_wh": 0.0, "plan_meter_start_wh": 12345.6, "ts": _TS})
ENERGY_COST = _ch("energy/{connector}/cost", m.SessionCost, retain=True, writers=ENERGY,
                  doc="The running (then the last) transaction's cost at the tariff in force "
                      "while it charged, from the energy manager's per-interval energy x "
                      "price; final once the session ended (stopped_at and energy as on "
                      "ocpp/{connector}/session).",
                  example={"transaction_ref": "42", "transaction_id": 42,
                           "started_at": "2026-01-01T10:00:00Z",
                           "stopped_at": "2026-01-01T12:00:00Z", "energy_wh": 22000.0,
                           "cost": 5.06, "unpriced_wh": 0.0, "price_per_kwh": 0.21,
                           "final": True, "ts": _TS})
ENERGY_MODE_SET = _ch("energy/{connector}/mode/set", m.ChargeModeSetting, retain=False,
                      writers=COMMANDERS,
                      doc="Set a connector's charge mode and plan; the result shows on "
                          "energy/{connector}/mode.",
                      example={"mode": "pv", "priority": 0})

CHANNELS: tuple[Channel, ...] = (  # type: ignore[type-arg]
    PILOT, METER, RELAY, SWITCH_READING, LOCK, HW_ERROR, RFID, RFID_LAST, RELAY_SET,
    CURRENT_LIMIT_SET, LOCK_SET, LED_SET, PHASES, PHASES_SET, BAY,
    OCPP_CONNECTION, OCPP_STATUS, TRANSACTION, SESSION, LAST_SESSION, CHARGING, COMMAND,
    COMMAND_RESULT, DISPLAY,
    SERVICE_STATUS, SERVICE_REJECTED, RECORDER_HEALTH, BRIDGE_STATE, SIM_PLUG, SIM_TAP, SIM_EV,
    SIM_FAULT, SIM_BAY,
    ENERGY_SITE, ENERGY_LIMIT, ENERGY_MODE, ENERGY_MODE_SET, ENERGY_COST,
)


def channel_for(root: str, topic: str) -> tuple[Channel, dict[str, str]] | None:  # type: ignore[type-arg]
    """The channel a concrete topic belongs to, with its placeholder values."""
    for channel in CHANNELS:
        args = channel.match(root, topic)
        if args is not None:
            return channel, args
    return None
