"""Home Assistant MQTT discovery configs built from the topic contract: pure, no I/O.

One HA device per station and one per connector (`via_device` to its station, as the HA OCPP
integration lbbrhzn/ocpp does), each announced with device-based discovery (one retained
message holding every entity of the device as a component). Every state and command topic
comes from `voltbus_common.channels`, so the entities follow the contract when it changes; the
session entities read the publisher's own retained session view (`mirror`), because the
contract's transaction topic is empty between sessions and its session topic is not retained.
Commands from HA are ordinary `GatewayCommand` payloads on the COMMAND channel: the gateway
validates and answers them as it does the API's. Why device-based: docs/homeassistant.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from voltbus_common.channels import (
    CHARGING,
    COMMAND,
    DEFAULT_ROOT,
    ENERGY_COST,
    ENERGY_MODE,
    ENERGY_SITE,
    HW_ERROR,
    METER,
    OCPP_CONNECTION,
    OCPP_STATUS,
    PHASES,
    PILOT,
    RELAY,
    SERVICE_STATUS,
)
from voltbus_common.enums import (
    ChargeMode,
    ChargePointErrorCode,
    CommandName,
    ConnectorStatus,
    LimitSource,
    PilotState,
    RegistrationStatus,
    Service,
    StopReason,
)
from voltbus_common.models import GatewayCommand

DEFAULT_PREFIX = "homeassistant"
DEFAULT_REMOTE_ID_TAG = "HA-REMOTE"
REQUEST_ID = "homeassistant"
"""request_id on every command HA sends, so command results and logs show where it came from."""

_PLUGGED = [s.value for s in (PilotState.B, PilotState.C, PilotState.D)]
_SAFE = re.compile(r"[^a-zA-Z0-9_-]")
_NONE = "'None'"  # what HA takes as "unknown" (a sensor's and a number's payload_reset)

Component = dict[str, Any]


def object_id(station: str, root: str = DEFAULT_ROOT) -> str:
    """The station device's discovery object id: stable, and only [a-zA-Z0-9_-] as HA requires."""
    safe = _SAFE.sub("_", station)
    suffix = ""
    if safe != station or root != DEFAULT_ROOT:
        # Two stations that differ only in a replaced character, or two installations with
        # different roots on one broker, must not share a device.
        suffix = "_" + hashlib.sha1(f"{root}|{station}".encode()).hexdigest()[:6]
    return f"voltbus_{safe}{suffix}"


def discovery_topic(station: str, *, root: str = DEFAULT_ROOT,
                    prefix: str = DEFAULT_PREFIX) -> str:
    """Where the station's device config is published (retained)."""
    return f"{prefix}/device/{object_id(station, root)}/config"


def connector_topic(station: str, connector: int, *, root: str = DEFAULT_ROOT,
                    prefix: str = DEFAULT_PREFIX) -> str:
    """Where a connector's device config is published (retained).

    The station's object id is the topic's node id: `<prefix>/device/<node>/c<n>/config`, so
    no station name can collide with another station's connector, and one subscription
    (`connector_filter`) finds every connector announced for the station.
    """
    return f"{prefix}/device/{object_id(station, root)}/c{connector}/config"


def connector_filter(station: str, *, root: str = DEFAULT_ROOT,
                     prefix: str = DEFAULT_PREFIX) -> str:
    """Subscription filter for every connector config of the station."""
    return f"{prefix}/device/{object_id(station, root)}/+/config"


def connector_of(topic: str) -> int | None:
    """The connector number of a connector config topic, else None."""
    match = re.fullmatch(r".*/c(\d+)/config", topic)
    return int(match.group(1)) if match else None


def mirror_topic(station: str, connector: int | None = None, *, root: str = DEFAULT_ROOT,
                 prefix: str = DEFAULT_PREFIX) -> str:
    """The publisher's retained view for HA: the station's (connector None) or a connector's.

    Under the HA prefix, where the publisher may write, but not where HA looks for configs
    (`<prefix>/<component>/.../config`); see `mirror.py`.
    """
    base = f"{prefix}/voltbus/{object_id(station, root)}"
    return f"{base}/station" if connector is None else f"{base}/c{connector}/session"


def energy_view_topic(station: str, connector: int, *, root: str = DEFAULT_ROOT,
                      prefix: str = DEFAULT_PREFIX) -> str:
    """The publisher's retained plan draft of a connector (target, departure) for HA."""
    return f"{prefix}/voltbus/{object_id(station, root)}/c{connector}/energy"


def energy_set_topic(station: str, connector: int, *, root: str = DEFAULT_ROOT,
                     prefix: str = DEFAULT_PREFIX) -> str:
    """Where HA sends one field of a connector's charge mode; the publisher merges it with the
    mode in force and sends the whole setting on `energy/{connector}/mode/set` (energy.py)."""
    return energy_view_topic(station, connector, root=root, prefix=prefix) + "/set"


def command_payload(command: CommandName, **fields: object) -> str:
    """A GatewayCommand as HA sends it; validated here so a bad template cannot be published."""
    body: dict[str, object] = {"command": command.value, "request_id": REQUEST_ID, **fields}
    GatewayCommand.model_validate(body)
    return json.dumps(body, separators=(",", ":"))


def _on_off(expression: str) -> str:
    return f"{{{{ 'ON' if {expression} else 'OFF' }}}}"


# ChangeAvailability's state from a status payload (`operative`, `scheduled_operative`; .get:
# a gateway from before them omits them). The switch falls back to the status.
_OPERATIVE = "value_json.get('operative')"
_AVAILABLE_STATE = ("{% set o = " + _OPERATIVE + " %}"
                    "{{ 'ON' if (o if o is not none else value_json.status != '"
                    + ConnectorStatus.UNAVAILABLE + "') else 'OFF' }}")
AVAILABILITY_OPTIONS = ["Operative", "Inoperative"]
_AVAILABILITY_STATE = ("{% set o = " + _OPERATIVE + " %}"
                       "{{ 'None' if o is none else ('Operative' if o else 'Inoperative') }}")
_AVAILABILITY_ATTRIBUTES = ("{% set s = value_json.get('scheduled_operative') %}"
                            "{{ {'scheduled': none if s is none else "
                            "('Operative' if s else 'Inoperative')} | tojson }}")


def _or_none(expression: str) -> str:
    """A template that renders expression, or HA's unknown when it is null or missing."""
    return f"{{{{ {expression} if {expression} is not none else {_NONE} }}}}"


@dataclass(frozen=True)
class StationDiscovery:
    """Everything HA needs to know about one station; `configs()` are the discovery payloads."""

    station: str
    connectors: tuple[int, ...]
    max_current_a: float
    min_current_a: float
    sw_version: str
    model: str
    configuration_url: str | None = None
    root: str = DEFAULT_ROOT
    prefix: str = DEFAULT_PREFIX
    remote_id_tag: str = DEFAULT_REMOTE_ID_TAG
    phases: int = 3
    price_per_kwh: float | None = None
    currency: str = "EUR"
    energy_site: str | None = None  # the energy manager's site id: its tariff price too

    def __post_init__(self) -> None:
        if not self.min_current_a <= self.max_current_a:
            raise ValueError(f"min_current_a {self.min_current_a} > max_current_a "
                             f"{self.max_current_a}")
        if self.phases not in (1, 3):
            raise ValueError(f"phases must be 1 or 3, not {self.phases}")
        if any(c < 1 for c in self.connectors):
            raise ValueError(f"connector ids start at 1: {self.connectors}")
        # Fails early (ValueError) on an id tag the gateway would reject.
        command_payload(CommandName.START, id_tag=self.remote_id_tag)

    @property
    def object_id(self) -> str:
        """The station device's discovery object id."""
        return object_id(self.station, self.root)

    @property
    def topic(self) -> str:
        """The station device's discovery topic."""
        return discovery_topic(self.station, root=self.root, prefix=self.prefix)

    def connector_device_id(self, n: int) -> str:
        """The connector device's identifier (a '/' no station object id can contain)."""
        return f"{self.object_id}/c{n}"

    # --- building blocks -----------------------------------------------------------------------

    def _availability(self, *services: Service, station: str | None = None) -> Component:
        if not services:
            return {}
        topics = [{"topic": SERVICE_STATUS.topic(self.root, station=station or self.station,
                                                 service=s.value)} for s in services]
        return {"availability": topics, "availability_mode": "all"}

    def _entity(self, key: str, platform: str, name: str, *services: Service,
                **options: Any) -> tuple[str, Component]:
        """One component: platform, a name without the device's name, a stable unique_id."""
        # qos per component too: not every HA version merges a device-level qos into them, and
        # commands must travel at the COMMAND channel's QoS 1.
        return key, {"platform": platform, "name": name,
                     "unique_id": f"{self.object_id}_{key}", "qos": COMMAND.qos,
                     **self._availability(*services), **options}

    def _device(self, identifier: str, name: str, model: str, **extra: Any) -> dict[str, Any]:
        device: dict[str, Any] = {"identifiers": [identifier], "name": name,
                                  "manufacturer": "voltbus", "model": model,
                                  "sw_version": self.sw_version, **extra}
        if self.configuration_url:
            device["configuration_url"] = self.configuration_url
        return device

    def _payload(self, device: dict[str, Any], components: dict[str, Component]) -> dict[str, Any]:
        return {"device": device, "origin": {"name": "voltbus", "sw_version": self.sw_version},
                "qos": COMMAND.qos, "components": components}

    @property
    def _price_unit(self) -> str:
        return f"{self.currency}/kWh"

    # --- the station device -------------------------------------------------------------------

    def station_components(self) -> dict[str, Component]:
        """The station device's components by id."""
        args = {"station": self.station}
        gw, hw = Service.GATEWAY, Service.HARDWARE
        connection = OCPP_CONNECTION.topic(self.root, **args)
        view = mirror_topic(self.station, root=self.root, prefix=self.prefix)
        entities = [
            self._entity(
                "ocpp_connected", "binary_sensor", "OCPP connected", gw,
                device_class="connectivity", entity_category="diagnostic",
                state_topic=connection, value_template=_on_off("value_json.connected")),
            self._entity(
                "ocpp_registration", "sensor", "OCPP registration", gw, device_class="enum",
                entity_category="diagnostic", options=[s.value for s in RegistrationStatus],
                state_topic=connection, value_template=_or_none("value_json.registration")),
            self._entity(
                "ocpp_since", "sensor", "OCPP link changed", gw, device_class="timestamp",
                entity_category="diagnostic", state_topic=connection,
                value_template="{{ value_json.since }}"),
            # .get: a gateway from before these fields omits them (unknown then).
            self._entity(
                "firmware_version", "sensor", "Firmware version", gw, icon="mdi:chip",
                entity_category="diagnostic", state_topic=connection,
                value_template=_or_none("value_json.get('firmware_version')")),
            self._entity(
                "last_heartbeat", "sensor", "Last heartbeat", gw, device_class="timestamp",
                entity_category="diagnostic", state_topic=connection,
                value_template=_or_none("value_json.get('last_heartbeat')")),
            # RFID events are not retained: the publisher keeps the last one (mirror.py).
            self._entity(
                "last_rfid", "sensor", "Last RFID tag", hw, icon="mdi:card-account-details",
                state_topic=view,
                value_template=("{{ value_json.last_rfid.id_tag if value_json.last_rfid "
                                "else 'None' }}"),
                json_attributes_topic=view,
                json_attributes_template="{{ (value_json.last_rfid or {}) | tojson }}"),
        ]
        entities += self._station_controls()
        if self.price_per_kwh is not None:
            entities.append(self._entity(
                "price", "sensor", "Energy price", icon="mdi:cash",
                unit_of_measurement=self._price_unit, suggested_display_precision=2,
                state_topic=view, value_template="{{ value_json.price_per_kwh }}"))
        if self.energy_site is not None:
            site = ENERGY_SITE.topic(self.root, station=self.energy_site)
            key, comp = self._entity(
                "tariff_price", "sensor", "Tariff price now", icon="mdi:cash-clock",
                unit_of_measurement=self._price_unit, suggested_display_precision=3,
                state_topic=site, value_template=_or_none("value_json.price_per_kwh"),
                json_attributes_topic=site,
                json_attributes_template="{{ {'status': value_json.price_status} | tojson }}")
            comp.update(self._availability(Service.ENERGY, station=self.energy_site))
            entities.append((key, comp))
            entities += self._site_entities(site)
        return dict(entities)

    def _station_controls(self) -> list[tuple[str, Component]]:
        """The station as a whole: its availability (ChangeAvailability of connector 0, on
        `ocpp/0/status`) and the reset buttons (the `reset` command, OCPP Reset)."""
        gw = Service.GATEWAY
        args: dict[str, str | int] = {"station": self.station, "connector": 0}
        status = OCPP_STATUS.topic(self.root, **args)
        command = COMMAND.topic(self.root, **args)
        return [
            self._entity(
                # station_*: no key here may equal a connector's (c<n>_<key>) on a station
                # named <station>_c<n> (unique_ids are <object id>_<key>).
                "station_available", "switch", "Available", gw, icon="mdi:ev-station",
                entity_category="config", state_topic=status, command_topic=command,
                value_template=_AVAILABLE_STATE, state_on="ON", state_off="OFF",
                payload_on=command_payload(CommandName.CHANGE_AVAILABILITY, operative=True),
                payload_off=command_payload(CommandName.CHANGE_AVAILABILITY, operative=False)),
            self._availability_sensor("station_availability", status),
            self._entity(
                "station_reset", "button", "Reset", gw, device_class="restart",
                entity_category="config", command_topic=command,
                payload_press=command_payload(CommandName.RESET, hard=False)),
            # A hard reset restarts the gateway process: off until a user enables it.
            self._entity(
                "station_reset_hard", "button", "Hard reset", gw, device_class="restart",
                entity_category="config", enabled_by_default=False, command_topic=command,
                payload_press=command_payload(CommandName.RESET, hard=True)),
        ]

    def _availability_sensor(self, key: str, status_topic: str) -> tuple[str, Component]:
        """Operative/Inoperative as the central system (or a command) set it, with the change
        scheduled for the end of the running transaction as an attribute."""
        return self._entity(
            key, "sensor", "Availability", Service.GATEWAY, device_class="enum",
            entity_category="diagnostic", icon="mdi:power-plug-off-outline",
            options=AVAILABILITY_OPTIONS, state_topic=status_topic,
            value_template=_AVAILABILITY_STATE, json_attributes_topic=status_topic,
            json_attributes_template=_AVAILABILITY_ATTRIBUTES)

    def _energy_entity(self, key: str, platform: str, name: str,
                       **options: Any) -> tuple[str, Component]:
        """An entity of the energy manager: available while the energy service is online."""
        key, comp = self._entity(key, platform, name, **options)
        comp.update(self._availability(Service.ENERGY, station=self.energy_site))
        return key, comp

    def _site_entities(self, site: str) -> list[tuple[str, Component]]:
        """The site's grid connection as the energy manager sees it (energy/site)."""
        power = {"device_class": "power", "unit_of_measurement": "W",
                 "state_class": "measurement", "suggested_display_precision": 0,
                 "state_topic": site}
        entities = [
            self._energy_entity(key, "sensor", name, icon=icon,
                                value_template=_or_none(f"value_json.{field}"), **power)
            for key, name, field, icon in (
                ("site_grid_power", "Grid power", "grid_power_w", "mdi:transmission-tower"),
                ("site_pv_power", "PV power", "pv_power_w", "mdi:solar-power"),
                ("site_surplus", "PV surplus", "surplus_w", "mdi:solar-power-variant"),
                ("site_charge_power", "Charge power (site)", "charge_power_w", "mdi:ev-station"),
                # > 0 discharging, as on energy/site; None without a battery
                ("site_battery_power", "Battery power", "battery_power_w", "mdi:home-battery"),
            )
        ]
        entities.append(self._energy_entity(
            "site_battery_soc", "sensor", "Battery state of charge", device_class="battery",
            unit_of_measurement="%", state_class="measurement", state_topic=site,
            value_template=_or_none("value_json.battery_soc_pct"),
            json_attributes_topic=site,
            json_attributes_template="{{ {'status': value_json.battery_status} | tojson }}"))
        entities += [
            self._energy_entity(
                "site_fuse_limit", "sensor", "Site limit", icon="mdi:fuse",
                device_class="current", unit_of_measurement="A", state_class="measurement",
                state_topic=site, value_template="{{ value_json.fuse_limit_a }}",
                json_attributes_topic=site,
                json_attributes_template="{{ {'max_import_w': value_json.max_import_w} "
                                         "| tojson }}"),
            self._energy_entity(
                "site_fail_safe", "binary_sensor", "Energy fail-safe", device_class="problem",
                state_topic=site, value_template=_on_off("value_json.fail_safe")),
        ]
        return entities

    def station_config(self) -> dict[str, Any]:
        """The station device's discovery payload."""
        device = self._device(self.object_id, f"voltbus {self.station}", self.model,
                              serial_number=self.station)
        return self._payload(device, self.station_components())

    # --- a connector device -------------------------------------------------------------------

    def connector_components(self, n: int) -> dict[str, Component]:
        """Connector n's components by id (ids and unique_ids as when they were on the station)."""
        entities = (self._measurements(n) + self._session(n) + self._controls(n)
                    + self._diagnostics(n))
        if self.energy_site is not None:
            entities += self._energy(n)
        return dict(entities)

    def _energy(self, n: int) -> list[tuple[str, Component]]:
        """The charge mode and the plan (energy manager); HA's commands go to the publisher,
        which sends the whole setting on energy/{n}/mode/set (energy.py)."""
        c = f"c{n}_"
        mode = ENERGY_MODE.topic(self.root, **self._args(n))
        view = energy_view_topic(self.station, n, root=self.root, prefix=self.prefix)
        command = energy_set_topic(self.station, n, root=self.root, prefix=self.prefix)
        return [
            self._energy_entity(
                c + "charge_mode", "select", "Charge mode", icon="mdi:solar-power-variant",
                options=[m.value for m in ChargeMode], state_topic=mode,
                value_template="{{ value_json.mode }}", command_topic=command,
                command_template='{"mode":"{{ value }}"}'),
            self._energy_entity(
                c + "plan_energy", "number", "Plan energy", icon="mdi:battery-charging-high",
                device_class="energy", unit_of_measurement="kWh", mode="box", min=0.5,
                max=200.0, step=0.5, state_topic=view,
                value_template=("{{ (value_json.plan_energy_wh / 1000) | round(1) "
                                f"if value_json.plan_energy_wh is not none else {_NONE} }}}}"),
                command_topic=command,
                command_template='{"plan_energy_wh":{{ (value | float * 1000) | round(0) }}}'),
            self._energy_entity(
                # HA's MQTT integration has no datetime entity: a text taking HH:MM (the next
                # such time) or an ISO 8601 time.
                c + "plan_departure", "text", "Plan departure", icon="mdi:clock-end",
                min=0, max=40, pattern=r"^(\d{1,2}:\d{2}|\d{4}-\d{2}-\d{2}[T ].+)?$",
                state_topic=view, value_template="{{ value_json.plan_departure or '' }}",
                command_topic=command,
                command_template="{{ {'plan_departure': value} | tojson }}"),
            self._energy_entity(
                c + "energy_status", "sensor", "Energy manager", icon="mdi:home-lightning-bolt",
                state_topic=mode, value_template=_or_none("value_json.status"),
                json_attributes_topic=mode,
                json_attributes_template=(
                    "{{ {'limit_a': value_json.limit_a, 'plan_cost': value_json.plan_cost, "
                    "'plan_added_wh': value_json.plan_added_wh, "
                    "'plan_missing_wh': value_json.plan_missing_wh, "
                    "'plan_slots': value_json.plan_slots} | tojson }}")),
            self._energy_entity(
                c + "phase_switching", "binary_sensor", "Phase switching",
                icon="mdi:swap-horizontal", state_topic=mode,
                value_template=_on_off("value_json.phase_switching")),
            self._energy_entity(
                c + "energy_limit", "sensor", "Energy manager limit", icon="mdi:speedometer",
                device_class="current", unit_of_measurement="A", state_class="measurement",
                state_topic=mode, value_template=_or_none("value_json.limit_a")),
            self._tariff_cost(n),
        ]

    def _tariff_cost(self, n: int) -> tuple[str, Component]:
        """The running (then the last) session's cost at the tariff in force while it charged
        (the energy manager's energy/{n}/cost). monetary allows only state_class `total`; with
        last_reset at the session's start HA's statistics begin a new cycle at each session,
        so their sum is the money spent on charging (the energy dashboard can use it)."""
        cost = ENERGY_COST.topic(self.root, **self._args(n))
        return self._energy_entity(
            f"c{n}_tariff_cost", "sensor", "Session cost (tariff)", icon="mdi:cash-clock",
            device_class="monetary", unit_of_measurement=self.currency, state_class="total",
            suggested_display_precision=2, state_topic=cost,
            value_template="{{ value_json.cost | round(4) }}",
            last_reset_value_template="{{ value_json.started_at }}",
            json_attributes_topic=cost,
            json_attributes_template=(
                "{{ {'final': value_json.final, 'energy_wh': value_json.energy_wh, "
                "'unpriced_wh': value_json.unpriced_wh, "
                "'price_per_kwh': value_json.price_per_kwh, "
                "'started_at': value_json.started_at, 'stopped_at': value_json.stopped_at, "
                "'transaction_id': value_json.transaction_ref} | tojson }}"))

    def connector_config(self, n: int) -> dict[str, Any]:
        """Connector n's device discovery payload."""
        device = self._device(self.connector_device_id(n), f"voltbus {self.station} Connector {n}",
                              "voltbus connector", via_device=self.object_id)
        return self._payload(device, self.connector_components(n))

    def _args(self, n: int) -> dict[str, str | int]:
        return {"station": self.station, "connector": n}

    def _measurements(self, n: int) -> list[tuple[str, Component]]:
        hw, c = Service.HARDWARE, f"c{n}_"
        meter = METER.topic(self.root, **self._args(n))
        entities = [
            self._entity(
                c + "power", "sensor", "Power", hw, device_class="power",
                unit_of_measurement="W", state_class="measurement", state_topic=meter,
                value_template="{{ value_json.power_w }}"),
            self._entity(
                c + "energy", "sensor", "Energy", hw, device_class="energy",
                unit_of_measurement="kWh", state_class="total_increasing", state_topic=meter,
                suggested_display_precision=2,
                value_template="{{ (value_json.energy_wh / 1000) | round(4) }}"),
        ]
        for field, kind, unit in (("current_a", "current", "A"), ("voltage_v", "voltage", "V")):
            prefix = c + kind + "_l"
            for phase in range(self.phases):
                entities.append(self._entity(
                    f"{prefix}{phase + 1}", "sensor", f"{kind.capitalize()} L{phase + 1}", hw,
                    device_class=kind, unit_of_measurement=unit, state_class="measurement",
                    state_topic=meter,
                    # A single-phase meter sends one value: the other phases are unknown.
                    value_template=(f"{{{{ value_json.{field}[{phase}] if value_json.{field} "
                                    f"| length > {phase} else {_NONE} }}}}")))
        # The phases the supply has as the phase switch confirms them (hw/{n}/phases); unknown
        # without a phase switch (the wiring decides, `switchable` false). No select: the
        # energy manager chooses the phases itself and obeys no phase command from HA.
        phases = PHASES.topic(self.root, **self._args(n))
        entities.append(self._entity(
            c + "phases", "sensor", "Phases", hw, icon="mdi:sine-wave", state_topic=phases,
            value_template=_or_none("value_json.phases"), json_attributes_topic=phases,
            json_attributes_template=("{{ {'switchable': value_json.switchable, "
                                      "'reason': value_json.reason} | tojson }}")))
        entities.append(self._entity(
            c + "plugged_in", "binary_sensor", "Plugged in", hw, device_class="plug",
            state_topic=PILOT.topic(self.root, **self._args(n)),
            value_template=_on_off(f"value_json.state in {_PLUGGED}")))
        return entities

    def _session(self, n: int) -> list[tuple[str, Component]]:
        gw, c = Service.GATEWAY, f"c{n}_"
        view = mirror_topic(self.station, n, root=self.root, prefix=self.prefix)
        last = "value_json.last"

        def sensor(key: str, name: str, template: str, **options: Any) -> tuple[str, Component]:
            return self._entity(c + key, "sensor", name, gw, state_topic=view,
                                value_template=template, **options)

        energy = {"device_class": "energy", "unit_of_measurement": "kWh",
                  "suggested_display_precision": 2}
        duration = {"device_class": "duration", "unit_of_measurement": "s",
                    "suggested_display_precision": 0}
        entities = [
            self._entity(
                c + "status", "sensor", "Status", gw, device_class="enum",
                options=[s.value for s in ConnectorStatus],
                state_topic=OCPP_STATUS.topic(self.root, **self._args(n)),
                value_template="{{ value_json.status }}"),
            # 0 between sessions (total_increasing reads the drop as a new cycle).
            sensor("session_energy", "Session energy",
                   "{{ (value_json.energy_wh / 1000) | round(4) }}",
                   state_class="total_increasing", **energy),
            sensor("session_time", "Session time", "{{ value_json.duration_s | round(0) }}",
                   **duration),
            sensor("session_start", "Session start", _or_none("value_json.started_at"),
                   device_class="timestamp"),
            # transaction_ref: the id as text in both versions (2.0.1's UUIDs too); .get: a
            # mirror from before it.
            sensor("transaction_id", "Transaction id",
                   _or_none("(value_json.get('transaction_ref') or value_json.transaction_id)"),
                   icon="mdi:identifier"),
            sensor("session_tag", "Session tag", _or_none("value_json.id_tag"),
                   icon="mdi:card-account-details"),
            sensor("last_tag", "Last tag",
                   f"{{{{ value_json.id_tag or ({last}.id_tag if {last} else {_NONE}) }}}}",
                   icon="mdi:card-account-details-outline"),
            sensor("last_session_energy", "Last session energy",
                   f"{{{{ ({last}.energy_wh / 1000) | round(4) if {last} else {_NONE} }}}}",
                   json_attributes_topic=view,
                   json_attributes_template=f"{{{{ ({last} or {{}}) | tojson }}}}", **energy),
            sensor("last_session_duration", "Last session duration",
                   f"{{{{ {last}.duration_s | round(0) if {last} else {_NONE} }}}}", **duration),
            sensor("last_session_stop_reason", "Last session stop reason",
                   f"{{{{ {last}.stop_reason if {last} else {_NONE} }}}}",
                   device_class="enum", options=[r.value for r in StopReason]),
        ]
        if self.price_per_kwh is not None:
            money = {"device_class": "monetary", "unit_of_measurement": self.currency,
                     "suggested_display_precision": 2}
            entities += [
                # No state_class: monetary allows only `total`, whose statistics would count
                # the drop to 0 at the next session as money coming back.
                sensor("session_cost", "Session cost", "{{ value_json.cost | round(2) }}",
                       **money),
                sensor("last_session_cost", "Last session cost",
                       f"{{{{ {last}.cost | round(2) if {last} else {_NONE} }}}}", **money),
            ]
        return entities

    def _controls(self, n: int) -> list[tuple[str, Component]]:
        gw, hw, c = Service.GATEWAY, Service.HARDWARE, f"c{n}_"
        command = COMMAND.topic(self.root, **self._args(n))
        charging = CHARGING.topic(self.root, **self._args(n))
        low, high = f"{self.min_current_a:g}", f"{self.max_current_a:g}"

        def button(key: str, name: str, icon: str, payload: str) -> tuple[str, Component]:
            return self._entity(c + key, "button", name, gw, hw, icon=icon,
                                command_topic=command, payload_press=payload)

        return [
            self._entity(
                c + "charging_enabled", "switch", "Charging enabled", gw, hw,
                icon="mdi:ev-station", state_topic=charging, command_topic=command,
                value_template=_on_off("value_json.enabled"), state_on="ON", state_off="OFF",
                payload_on=command_payload(CommandName.ENABLE_CHARGING),
                payload_off=command_payload(CommandName.DISABLE_CHARGING)),
            self._entity(
                c + "current_limit", "number", "Current limit", gw, hw,
                device_class="current", unit_of_measurement="A", mode="slider",
                min=self.min_current_a, max=self.max_current_a, step=1,
                state_topic=charging, command_topic=command,
                # The limit a command set (command_limit_a, kept by the gateway across its
                # restarts), else the limit in force. Always a value in range: the limit in
                # force is 0 while charging is disabled or paused (the switch and the status
                # show that), and null when none is set; the number shows the configured limit
                # then (issue 13). .get: a gateway from before command_limit_a omits it.
                value_template=("{% set c = value_json.get('command_limit_a') %}"
                                f"{{% set a = c if c is not none and c >= {low} "
                                "else value_json.current_limit_a %}"
                                f"{{{{ ([a, {high}] | min) if a is not none and a >= {low} "
                                f"else {high} }}}}"),
                command_template=('{"command":"set_current_limit","request_id":"'
                                  + REQUEST_ID + '","amps":{{ value }}}')),
            self._entity(
                # The connector's own availability (ChangeAvailability): it shows Unavailable
                # once no transaction runs; a change during one is scheduled (the Availability
                # sensor's attribute). A gateway from before `operative`: from the status.
                c + "available", "switch", "Available", gw, hw, icon="mdi:power-plug-outline",
                entity_category="config", state_topic=OCPP_STATUS.topic(self.root, **self._args(n)),
                command_topic=command, value_template=_AVAILABLE_STATE,
                state_on="ON", state_off="OFF",
                payload_on=command_payload(CommandName.CHANGE_AVAILABILITY, operative=True),
                payload_off=command_payload(CommandName.CHANGE_AVAILABILITY, operative=False)),
            button("start", "Start", "mdi:play",
                   command_payload(CommandName.START, id_tag=self.remote_id_tag)),
            button("stop", "Stop", "mdi:stop", command_payload(CommandName.STOP)),
            button("unlock", "Unlock", "mdi:lock-open-variant",
                   command_payload(CommandName.UNLOCK)),
            self._entity(
                c + "offpeak_waiting", "binary_sensor", "Waiting for off-peak", gw,
                icon="mdi:clock-outline", state_topic=charging,
                value_template=_on_off("value_json.offpeak_waiting"),
                json_attributes_topic=charging,
                json_attributes_template=("{{ {'until': value_json.offpeak_until, "
                                          "'override': value_json.offpeak_override} | tojson }}")),
            button("offpeak_override", "Charge now (skip off-peak)", "mdi:clock-fast",
                   command_payload(CommandName.OVERRIDE_OFFPEAK)),
            self._entity(
                # The energy manager is lost (its limit not refreshed, or its status offline):
                # the gateway's fail-safe limit rules. .get: a gateway from before omits it.
                c + "energy_fail_safe", "binary_sensor", "Energy manager lost (fail-safe)", gw,
                device_class="problem", state_topic=charging,
                value_template=_on_off("value_json.get('energy_fail_safe')"),
                json_attributes_topic=charging,
                json_attributes_template=(
                    "{{ {'reason': value_json.get('energy_fail_safe_reason'), "
                    "'limit_a': value_json.get('energy_limit_a')} | tojson }}")),
            self._entity(
                c + "limit_source", "sensor", "Current limit set by", gw, device_class="enum",
                icon="mdi:speedometer-slow", options=[x.value for x in LimitSource],
                state_topic=charging, value_template=_or_none("value_json.get('limit_source')")),
        ]

    def _diagnostics(self, n: int) -> list[tuple[str, Component]]:
        gw, hw, c = Service.GATEWAY, Service.HARDWARE, f"c{n}_"
        return [
            self._entity(
                c + "error_code", "sensor", "Error code", gw, device_class="enum",
                entity_category="diagnostic", options=[e.value for e in ChargePointErrorCode],
                state_topic=OCPP_STATUS.topic(self.root, **self._args(n)),
                value_template="{{ value_json.error_code }}",
                # The hardware's own report of the fault, with its text.
                json_attributes_topic=HW_ERROR.topic(self.root, **self._args(n)),
                json_attributes_template=("{{ {'hardware_code': value_json.code, "
                                          "'info': value_json.info, 'since': value_json.ts} "
                                          "| tojson }}")),
            self._entity(
                c + "relay", "binary_sensor", "Relay closed", hw, device_class="power",
                entity_category="diagnostic", state_topic=RELAY.topic(self.root, **self._args(n)),
                value_template=_on_off("value_json.closed")),
            self._availability_sensor(c + "availability",
                                      OCPP_STATUS.topic(self.root, **self._args(n))),
        ]

    # --- all of it ----------------------------------------------------------------------------

    def configs(self) -> dict[str, dict[str, Any]]:
        """Every discovery payload by topic: the station's first, then each connector's."""
        out = {self.topic: self.station_config()}
        for n in sorted(set(self.connectors)):
            out[connector_topic(self.station, n, root=self.root, prefix=self.prefix)] = (
                self.connector_config(n))
        return out

    def config(self) -> dict[str, Any]:
        """The station device's discovery payload (connectors: `configs()`)."""
        return self.station_config()


def configured_connectors(configs: dict[str, dict[str, Any]]) -> set[int]:
    """Connectors that have a live device config among published configs (by topic)."""
    found = set()
    for topic, config in configs.items():
        n = connector_of(topic)
        components = (config or {}).get("components") or (config or {}).get("cmps") or {}
        if n is not None and any(isinstance(c, dict) and len(c) > 1
                                 for c in components.values()):
            found.add(n)
    return found
