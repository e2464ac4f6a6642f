"""Home Assistant's MQTT discovery schema, written down as data, and a checker for it.

Transcribed from HA core (homeassistant/components/mqtt/{schemas,sensor,binary_sensor,switch,
number,button}.py, homeassistant/components/sensor/const.py: DEVICE_CLASS_UNITS and
DEVICE_CLASS_STATE_CLASSES) and the MQTT integration docs (device-based discovery: `device`,
`origin` and `components` are required, each component needs `platform` and, for entities, a
`unique_id`; a component holding only `platform` is a removal). Newer HA rejects what older HA
only warned about, so every rule here is an error.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

# --- options every entity component may carry (MQTT_ENTITY_COMMON_SCHEMA + availability) ------
COMMON = {
    "platform", "name", "unique_id", "object_id", "default_entity_id", "device", "origin",
    "availability", "availability_mode", "availability_topic", "availability_template",
    "payload_available", "payload_not_available", "enabled_by_default", "entity_category",
    "entity_picture", "icon", "json_attributes_topic", "json_attributes_template", "encoding",
    "qos",
}
AVAILABILITY_MODES = {"all", "any", "latest"}
ENTITY_CATEGORIES = {"config", "diagnostic"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}

# --- per platform: required keys and the keys it knows besides COMMON --------------------------
_RO = {"state_topic", "value_template"}
_RW = {"command_topic", "state_topic", "retain", "value_template", "optimistic"}
PLATFORMS: dict[str, dict[str, set[str]]] = {
    "sensor": {
        "required": {"state_topic"},
        "optional": _RO | {"device_class", "expire_after", "force_update",
                           "last_reset_value_template", "options",
                           "suggested_display_precision", "state_class",
                           "unit_of_measurement"},
    },
    "binary_sensor": {
        "required": {"state_topic"},
        "optional": _RO | {"device_class", "expire_after", "force_update", "off_delay",
                           "payload_on", "payload_off"},
    },
    "switch": {
        "required": {"command_topic"},
        "optional": _RW | {"command_template", "device_class", "payload_on", "payload_off",
                           "state_on", "state_off"},
    },
    "number": {
        "required": {"command_topic"},
        "optional": _RW | {"command_template", "device_class", "min", "max", "mode",
                           "payload_reset", "step", "unit_of_measurement"},
    },
    "select": {  # homeassistant/components/mqtt/select.py
        "required": {"command_topic", "options"},
        "optional": _RW | {"command_template"},
    },
    "text": {  # homeassistant/components/mqtt/text.py
        "required": {"command_topic"},
        "optional": _RW | {"command_template", "min", "max", "mode", "pattern"},
    },
    "button": {
        "required": {"command_topic"},
        "optional": {"command_topic", "command_template", "device_class", "payload_press",
                     "retain"},
    },
}

# --- device classes ---------------------------------------------------------------------------
SENSOR_DEVICE_CLASSES = {
    "apparent_power", "aqi", "area", "atmospheric_pressure", "battery",
    "blood_glucose_concentration", "co", "co2", "conductivity", "current", "data_rate",
    "data_size", "date", "distance", "duration", "energy", "energy_distance", "energy_storage",
    "enum", "frequency", "gas", "humidity", "illuminance", "irradiance", "moisture", "monetary",
    "nitrogen_dioxide", "nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1", "pm10",
    "pm25", "power_factor", "power", "precipitation", "precipitation_intensity", "pressure",
    "reactive_power", "signal_strength", "sound_pressure", "speed", "sulphur_dioxide",
    "temperature", "temperature_delta", "timestamp", "volatile_organic_compounds",
    "volatile_organic_compounds_parts", "voltage", "volume", "volume_flow_rate",
    "volume_storage", "water", "weight", "wind_direction", "wind_speed",
}
BINARY_SENSOR_DEVICE_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
}
SWITCH_DEVICE_CLASSES = {"outlet", "switch"}
BUTTON_DEVICE_CLASSES = {"identify", "restart", "update"}
NUMBER_DEVICE_CLASSES = SENSOR_DEVICE_CLASSES - {"date", "enum", "timestamp"}
DEVICE_CLASSES = {
    "sensor": SENSOR_DEVICE_CLASSES, "binary_sensor": BINARY_SENSOR_DEVICE_CLASSES,
    "switch": SWITCH_DEVICE_CLASSES, "button": BUTTON_DEVICE_CLASSES,
    "number": NUMBER_DEVICE_CLASSES, "select": set(), "text": set(),
}

# Units allowed per device class (sensor/const.py DEVICE_CLASS_UNITS), for the classes an EV
# charger uses; number shares these for the same classes.
UNITS: dict[str, set[str | None]] = {
    "energy": {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal",
               "Mcal", "Gcal"},
    "power": {"W", "kW", "MW", "GW", "TW"},
    "current": {"A", "mA"},
    "voltage": {"V", "mV", "µV", "kV", "MV"},
    "apparent_power": {"VA"},
    "frequency": {"Hz", "kHz", "MHz", "GHz"},
    "duration": {"d", "h", "min", "s", "ms", "µs"},
}
# Any currency for monetary (HA's currency list): an ISO 4217 code here.
CURRENCY = re.compile(r"^[A-Z]{3}$")
# sensor/const.py DEVICE_CLASS_STATE_CLASSES (an empty set: no state class allowed).
STATE_CLASSES_FOR: dict[str, set[str]] = {
    "energy": {"total", "total_increasing"},
    "power": {"measurement"},
    "current": {"measurement"},
    "voltage": {"measurement"},
    "apparent_power": {"measurement"},
    "frequency": {"measurement"},
    "duration": {"measurement", "total", "total_increasing"},
    "monetary": {"total"},
    "enum": set(),
    "timestamp": set(),
    "date": set(),
}
NUMERIC_SENSOR_CLASSES = set(UNITS) | {"monetary"}
NON_NUMERIC_SENSOR_CLASSES = {"date", "enum", "timestamp"}

_TOPIC_WILDCARD = re.compile(r"[+#]")
_ICON = re.compile(r"^[a-z0-9_-]+:[a-z0-9_-]+$")


def _check_topic(name: str, topic: object, *, publish: bool) -> list[str]:
    if not isinstance(topic, str) or not topic or len(topic.encode()) > 65535:
        return [f"{name}: not a topic: {topic!r}"]
    if "\0" in topic:
        return [f"{name}: NUL in topic"]
    if publish and _TOPIC_WILDCARD.search(topic):
        return [f"{name}: wildcard in a publish topic {topic!r}"]
    return []


def check_url(url: object) -> list[str]:
    """cv.configuration_url: http(s) with a host, or a homeassistant:// path."""
    if not isinstance(url, str):
        return [f"configuration_url: not a string: {url!r}"]
    parts = urlparse(url)
    if parts.scheme == "homeassistant":
        return []
    if parts.scheme in ("http", "https") and parts.netloc:
        return []
    return [f"configuration_url: invalid URL {url!r}"]


def check_component(key: str, comp: dict[str, Any]) -> list[str]:
    """Errors HA would raise for one component of a device discovery payload."""
    errors: list[str] = []
    where = f"component {key}"
    platform = comp.get("platform")
    if platform not in PLATFORMS:
        return [f"{where}: unsupported platform {platform!r}"]
    if set(comp) == {"platform"}:
        return []  # a removal
    spec = PLATFORMS[platform]
    if "unique_id" not in comp:
        errors.append(f"{where}: unique_id is required with device discovery")
    for req in spec["required"]:
        if req not in comp:
            errors.append(f"{where}: {platform} requires {req}")
    unknown = set(comp) - COMMON - spec["optional"] - spec["required"]
    if unknown:
        errors.append(f"{where}: unknown options {sorted(unknown)}")
    for name in ("state_topic", "availability_topic", "json_attributes_topic"):
        if name in comp:
            errors += [f"{where}: {e}" for e in _check_topic(name, comp[name], publish=False)]
    if "command_topic" in comp:
        errors += [f"{where}: {e}" for e in _check_topic("command_topic", comp["command_topic"],
                                                         publish=True)]
    errors += [f"{where}: {e}" for e in _check_availability(comp)]
    if "json_attributes_template" in comp and "json_attributes_topic" not in comp:
        errors.append(f"{where}: json_attributes_template without json_attributes_topic")
    if "entity_category" in comp:
        category = comp["entity_category"]
        if category not in ENTITY_CATEGORIES:
            errors.append(f"{where}: entity_category {category!r}")
        if category == "config" and platform in ("sensor", "binary_sensor"):
            errors.append(f"{where}: a read-only entity cannot have entity_category config")
    if "icon" in comp and not _ICON.match(str(comp["icon"])):
        errors.append(f"{where}: icon {comp['icon']!r} is not prefix:name")
    device_class = comp.get("device_class")
    if device_class is not None and device_class not in DEVICE_CLASSES[platform]:
        errors.append(f"{where}: {platform} has no device_class {device_class!r}")
    if platform == "sensor":
        errors += [f"{where}: {e}" for e in _check_sensor(comp)]
    if platform == "number":
        errors += [f"{where}: {e}" for e in _check_number(comp)]
    return errors


def _check_availability(comp: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    if "availability" in comp and "availability_topic" in comp:
        errors.append("availability and availability_topic are exclusive")
    for entry in comp.get("availability", []):
        if not isinstance(entry, dict) or "topic" not in entry:
            errors.append(f"availability entry without topic: {entry!r}")
            continue
        errors += _check_topic("availability.topic", entry["topic"], publish=False)
    mode = comp.get("availability_mode")
    if mode is not None and mode not in AVAILABILITY_MODES:
        errors.append(f"availability_mode {mode!r}")
    return errors


def _check_units(comp: dict[str, Any]) -> list[str]:
    device_class = comp.get("device_class")
    unit = comp.get("unit_of_measurement")
    allowed = UNITS.get(device_class or "")
    if allowed is not None and unit not in allowed:
        return [f"unit {unit!r} is not valid for device class {device_class!r}"]
    return []


def _check_sensor(comp: dict[str, Any]) -> list[str]:
    errors = _check_units(comp)
    device_class = comp.get("device_class")
    if device_class == "monetary" and not CURRENCY.match(str(comp.get("unit_of_measurement"))):
        errors.append(f"monetary needs a currency unit, not {comp.get('unit_of_measurement')!r}")
    if device_class in NON_NUMERIC_SENSOR_CLASSES and (
            "unit_of_measurement" in comp or "state_class" in comp
            or "suggested_display_precision" in comp):
        errors.append(f"device class {device_class!r} is not numeric: no unit, state_class "
                      f"or precision")
    state_class = comp.get("state_class")
    if state_class is not None:
        if state_class not in STATE_CLASSES:
            errors.append(f"state_class {state_class!r}")
        allowed = STATE_CLASSES_FOR.get(device_class or "")
        if allowed is not None and state_class not in allowed:
            errors.append(f"state_class {state_class!r} is not valid for device class "
                          f"{device_class!r}")
    if "last_reset_value_template" in comp and state_class != "total":
        errors.append("last_reset_value_template needs state_class total")
    options = comp.get("options")
    if options is not None:
        if not options:
            errors.append("an empty options list is not allowed")
        if state_class or comp.get("unit_of_measurement"):
            errors.append("options cannot go with state_class or unit_of_measurement")
        if device_class != "enum":
            errors.append("options need device_class enum")
    elif device_class == "enum":
        errors.append("device_class enum needs options")
    if device_class in NUMERIC_SENSOR_CLASSES and "unit_of_measurement" not in comp:
        errors.append(f"device class {device_class!r} needs a unit")
    precision = comp.get("suggested_display_precision")
    if precision is not None and (not isinstance(precision, int) or precision < 0):
        errors.append(f"suggested_display_precision {precision!r}")
    return errors


def _check_number(comp: dict[str, Any]) -> list[str]:
    errors = _check_units(comp)
    low, high = comp.get("min", 1.0), comp.get("max", 100.0)
    if not all(isinstance(v, int | float) for v in (low, high)):
        return [*errors, f"min/max must be numbers: {low!r}/{high!r}"]
    if low > high:
        errors.append(f"max {high} must be >= min {low}")
    step = comp.get("step", 1.0)
    if not isinstance(step, int | float) or step < 1e-3:
        errors.append(f"step {step!r} must be >= 0.001")
    if comp.get("mode", "auto") not in ("auto", "box", "slider"):
        errors.append(f"mode {comp.get('mode')!r}")
    return errors


def check_device_config(config: dict[str, Any]) -> list[str]:
    """Errors HA would raise for a device discovery payload (schema and cross-entity rules)."""
    errors: list[str] = []
    for key in ("device", "origin", "components"):
        if key not in config:
            errors.append(f"{key} is required")
    if errors:
        return errors
    device = config["device"]
    if not (device.get("identifiers") or device.get("connections")):
        errors.append("device needs identifiers or connections")
    if "configuration_url" in device:
        errors += check_url(device["configuration_url"])
    if not isinstance(config["origin"].get("name"), str):
        errors.append("origin.name is required")
    if config.get("qos", 0) not in (0, 1, 2):
        errors.append(f"qos {config['qos']!r}")
    seen: dict[str, str] = {}
    device_name = str(device.get("name", "")).lower()
    for key, comp in config["components"].items():
        if not re.fullmatch(r"[a-zA-Z0-9_-]+", key):
            errors.append(f"component id {key!r} has characters HA does not allow")
        errors += check_component(key, comp)
        uid = comp.get("unique_id")
        if uid is not None:
            if uid in seen:
                errors.append(f"duplicate unique_id {uid!r} ({seen[uid]}, {key})")
            seen[uid] = key
        name = comp.get("name")
        if device_name and isinstance(name, str) and device_name in name.lower():
            errors.append(f"component {key}: name {name!r} repeats the device name")
    return errors


def check_devices(configs: dict[str, dict[str, Any]]) -> list[str]:
    """Errors for a set of device configs by topic: each one, plus the rules across them
    (a unique_id or device identifier used twice, a via_device no config announces)."""
    errors: list[str] = []
    uids: dict[str, str] = {}
    identifiers: dict[str, str] = {}
    for topic, config in configs.items():
        errors += [f"{topic}: {e}" for e in check_device_config(config)]
        for ident in config.get("device", {}).get("identifiers", []):
            if ident in identifiers:
                errors.append(f"device identifier {ident!r} on {identifiers[ident]} and {topic}")
            identifiers[ident] = topic
        for key, comp in config.get("components", {}).items():
            uid = comp.get("unique_id")
            if uid is not None:
                if uid in uids:
                    errors.append(f"duplicate unique_id {uid!r} ({uids[uid]}, {topic} {key})")
                uids[uid] = f"{topic} {key}"
    for topic, config in configs.items():
        via = config.get("device", {}).get("via_device")
        if via is not None and via not in identifiers:
            errors.append(f"{topic}: via_device {via!r} is not an announced device")
    return errors


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def check_state(comp: dict[str, Any], state: str) -> list[str]:
    """What HA logs (and newer HA refuses) for a rendered state: "None" is HA's unknown."""
    platform = comp["platform"]
    if state == "None":
        return []
    if platform == "sensor":
        device_class = comp.get("device_class")
        if device_class == "enum":
            return [] if state in comp["options"] else [f"{state!r} is not an option"]
        if device_class == "timestamp":
            try:
                when = datetime.fromisoformat(state)
            except ValueError:
                return [f"{state!r} is not an ISO 8601 timestamp"]
            return [] if when.tzinfo is not None else [f"{state!r} has no time zone"]
        numeric = (device_class in NUMERIC_SENSOR_CLASSES or "state_class" in comp
                   or "unit_of_measurement" in comp)
        if numeric and not _is_number(state):
            return [f"non-numeric state {state!r} on a numeric sensor"]
        return []
    if platform == "binary_sensor":
        allowed = {comp.get("payload_on", "ON"), comp.get("payload_off", "OFF")}
        return [] if state in allowed else [f"{state!r} matches neither payload_on nor _off"]
    if platform == "switch":
        allowed = {comp.get("state_on", comp.get("payload_on", "ON")),
                   comp.get("state_off", comp.get("payload_off", "OFF"))}
        return [] if state in allowed else [f"{state!r} matches neither state_on nor _off"]
    if platform == "select":
        return [] if state in comp["options"] else [f"{state!r} is not an option"]
    if platform == "text":
        low, high = comp.get("min", 0), comp.get("max", 255)
        if not low <= len(state) <= high:
            return [f"text {state!r} is not {low}..{high} long"]
        pattern = comp.get("pattern")
        return [] if pattern is None or re.fullmatch(pattern, state) else [
            f"text {state!r} does not match {pattern!r}"]
    if platform == "number":
        if not _is_number(state):
            return [f"number state {state!r} is not a number"]
        low, high = comp.get("min", 1.0), comp.get("max", 100.0)
        value = float(state)
        return [] if low <= value <= high else [
            f"Invalid value for number: {value} (range {low} - {high})"]
    return []


def check_last_reset(rendered: str) -> list[str]:
    """What HA's MQTT sensor does with a rendered last_reset_value_template: empty is ignored,
    anything dt_util.parse_datetime cannot read is logged ("Invalid last_reset message"); a
    time without a zone would be taken as local time."""
    if not rendered:
        return []
    try:
        when = datetime.fromisoformat(rendered)
    except ValueError:
        return [f"Invalid last_reset message {rendered!r}"]
    return [] if when.tzinfo is not None else [f"last_reset {rendered!r} has no time zone"]


def check_attributes(rendered: str) -> list[str]:
    """json_attributes_template must give a JSON object."""
    try:
        value = json.loads(rendered)
    except ValueError:
        return [f"attributes {rendered!r} are not JSON"]
    return [] if isinstance(value, dict) else [f"attributes {rendered!r} are not a dictionary"]
