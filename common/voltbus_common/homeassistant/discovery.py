"""Home Assistant MQTT discovery configs built from the topic contract: pure, no I/O.

One HA device per station, announced with device-based discovery
(`<prefix>/device/<object_id>/config`, one retained message holding every entity as a
component). Every state and command topic comes from `voltbus_common.channels`, so the HA
entities follow the contract when it changes. Commands from HA are ordinary `GatewayCommand`
payloads on the COMMAND channel: the gateway validates and answers them as it does the API's.
Why device-based rather than one message per entity: docs/homeassistant.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from voltbus_common.channels import (
    CHARGING,
    COMMAND,
    DEFAULT_ROOT,
    METER,
    OCPP_CONNECTION,
    OCPP_STATUS,
    PILOT,
    RFID,
    SERVICE_STATUS,
    TRANSACTION,
)
from voltbus_common.enums import CommandName, ConnectorStatus, PilotState, Service
from voltbus_common.models import GatewayCommand

DEFAULT_PREFIX = "homeassistant"
DEFAULT_REMOTE_ID_TAG = "HA-REMOTE"
REQUEST_ID = "homeassistant"
"""request_id on every command HA sends, so command results and logs show where it came from."""

_PLUGGED = [s.value for s in (PilotState.B, PilotState.C, PilotState.D)]
_SAFE = re.compile(r"[^a-zA-Z0-9_-]")

Component = dict[str, Any]


def object_id(station: str, root: str = DEFAULT_ROOT) -> str:
    """The device discovery object id: stable, and only [a-zA-Z0-9_-] as HA requires."""
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


def command_payload(command: CommandName, **fields: object) -> str:
    """A GatewayCommand as HA sends it; validated here so a bad template cannot be published."""
    body: dict[str, object] = {"command": command.value, "request_id": REQUEST_ID, **fields}
    GatewayCommand.model_validate(body)
    return json.dumps(body, separators=(",", ":"))


@dataclass(frozen=True)
class StationDiscovery:
    """Everything HA needs to know about one station; `config()` is the discovery payload."""

    station: str
    connectors: tuple[int, ...]
    max_current_a: float
    min_current_a: float
    sw_version: str
    model: str
    configuration_url: str | None = None
    root: str = DEFAULT_ROOT
    remote_id_tag: str = DEFAULT_REMOTE_ID_TAG
    phases: int = 3
    removed_connectors: frozenset[int] = field(default_factory=frozenset)

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
        """The device's discovery object id."""
        return object_id(self.station, self.root)

    def _availability(self, *services: Service) -> Component:
        topics = [{"topic": SERVICE_STATUS.topic(self.root, station=self.station, service=s.value)}
                  for s in services]
        return {"availability": topics, "availability_mode": "all"}

    def _entity(self, key: str, platform: str, name: str, *services: Service,
                **options: Any) -> tuple[str, Component]:
        """One component: platform, a name without the device's name, a stable unique_id."""
        # qos per component too: not every HA version merges a device-level qos into them, and
        # commands must travel at the COMMAND channel's QoS 1.
        return key, {"platform": platform, "name": name,
                     "unique_id": f"{self.object_id}_{key}", "qos": COMMAND.qos,
                     **self._availability(*services), **options}

    def _station_entities(self) -> list[tuple[str, Component]]:
        args = {"station": self.station}
        return [
            self._entity(
                "ocpp_connected", "binary_sensor", "OCPP connected", Service.GATEWAY,
                device_class="connectivity", entity_category="diagnostic",
                state_topic=OCPP_CONNECTION.topic(self.root, **args),
                value_template="{{ 'ON' if value_json.connected else 'OFF' }}"),
            self._entity(
                "last_rfid", "sensor", "Last RFID tag", Service.HARDWARE,
                icon="mdi:card-account-details",
                state_topic=RFID.topic(self.root, **args),
                value_template="{{ value_json.id_tag }}"),
        ]

    def _connector_entities(self, n: int) -> list[tuple[str, Component]]:
        args: dict[str, str | int] = {"station": self.station, "connector": n}
        hw, gw = Service.HARDWARE, Service.GATEWAY
        meter = METER.topic(self.root, **args)
        command = COMMAND.topic(self.root, **args)
        charging = CHARGING.topic(self.root, **args)
        c = f"c{n}_"
        label = f"Connector {n}"
        entities = [
            self._entity(
                c + "status", "sensor", f"{label} status", gw, device_class="enum",
                options=[s.value for s in ConnectorStatus],
                state_topic=OCPP_STATUS.topic(self.root, **args),
                value_template="{{ value_json.status }}"),
            self._entity(
                c + "power", "sensor", f"{label} power", hw, device_class="power",
                unit_of_measurement="W", state_class="measurement", state_topic=meter,
                value_template="{{ value_json.power_w }}"),
            self._entity(
                c + "energy", "sensor", f"{label} energy", hw, device_class="energy",
                unit_of_measurement="kWh", state_class="total_increasing", state_topic=meter,
                suggested_display_precision=2,
                value_template="{{ (value_json.energy_wh / 1000) | round(4) }}"),
        ]
        for phase in range(self.phases):
            entities.append(self._entity(
                c + f"current_l{phase + 1}", "sensor", f"{label} current L{phase + 1}", hw,
                device_class="current", unit_of_measurement="A", state_class="measurement",
                state_topic=meter,
                # A single-phase meter sends one value: the other phases are unknown ("None").
                value_template=(f"{{{{ value_json.current_a[{phase}] "
                                f"if value_json.current_a | length > {phase} else 'None' }}}}")))
        entities += [
            self._entity(
                # The transaction topic is an empty retained payload between sessions: show 0,
                # which total_increasing reads as the start of a new cycle.
                c + "session_energy", "sensor", f"{label} session energy", gw,
                device_class="energy", unit_of_measurement="kWh",
                state_class="total_increasing", suggested_display_precision=2,
                state_topic=TRANSACTION.topic(self.root, **args),
                value_template="{{ (value_json.energy_wh / 1000) | round(4) if value else 0 }}"),
            self._entity(
                c + "plugged_in", "binary_sensor", f"{label} plugged in", hw, device_class="plug",
                state_topic=PILOT.topic(self.root, **args),
                value_template=f"{{{{ 'ON' if value_json.state in {_PLUGGED} else 'OFF' }}}}"),
            self._entity(
                c + "charging_enabled", "switch", f"{label} charging enabled", gw, hw,
                icon="mdi:ev-station", state_topic=charging, command_topic=command,
                value_template="{{ 'ON' if value_json.enabled else 'OFF' }}",
                state_on="ON", state_off="OFF",
                payload_on=command_payload(CommandName.ENABLE_CHARGING),
                payload_off=command_payload(CommandName.DISABLE_CHARGING)),
            self._entity(
                c + "current_limit", "number", f"{label} current limit", gw, hw,
                device_class="current", unit_of_measurement="A", mode="slider",
                min=self.min_current_a, max=self.max_current_a, step=1,
                state_topic=charging, command_topic=command,
                # null (no limit set) renders "None", HA's payload_reset: the value is unknown.
                value_template="{{ value_json.current_limit_a if value_json.current_limit_a "
                               "is not none else 'None' }}",
                command_template=('{"command":"set_current_limit","request_id":"'
                                  + REQUEST_ID + '","amps":{{ value }}}')),
            self._entity(
                c + "start", "button", f"{label} start", gw, hw, icon="mdi:play",
                command_topic=command,
                payload_press=command_payload(CommandName.START, id_tag=self.remote_id_tag)),
            self._entity(
                c + "stop", "button", f"{label} stop", gw, hw, icon="mdi:stop",
                command_topic=command, payload_press=command_payload(CommandName.STOP)),
        ]
        return entities

    def components(self) -> dict[str, Component]:
        """Every component by id; a removed connector's entities are reduced to their platform."""
        out = dict(self._station_entities())
        for n in sorted(set(self.connectors)):
            out.update(self._connector_entities(n))
        for n in sorted(self.removed_connectors - set(self.connectors)):
            # HA removes a component whose config holds only its platform.
            out.update((key, {"platform": comp["platform"]})
                       for key, comp in self._connector_entities(n))
        return out

    def config(self) -> dict[str, Any]:
        """The device discovery payload."""
        device: dict[str, Any] = {
            "identifiers": [self.object_id], "name": f"voltbus {self.station}",
            "manufacturer": "voltbus", "model": self.model, "sw_version": self.sw_version,
            "serial_number": self.station,
        }
        if self.configuration_url:
            device["configuration_url"] = self.configuration_url
        return {"device": device, "origin": {"name": "voltbus", "sw_version": self.sw_version},
                "qos": COMMAND.qos, "components": self.components()}


def configured_connectors(config: dict[str, Any]) -> set[int]:
    """Connectors that have live (not removal-stub) entities in a published device config."""
    found = set()
    for key, comp in (config.get("components") or config.get("cmps") or {}).items():
        match = re.fullmatch(r"c(\d+)_\w+", key)
        if match and isinstance(comp, dict) and len(comp) > 1:
            found.add(int(match.group(1)))
    return found
