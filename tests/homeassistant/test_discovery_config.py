"""The discovery payloads against HA's documented schema, with their templates rendered by Jinja.

No broker here: these check what HA would do with the payloads (accept or reject each entity,
and what state it would compute from each contract payload, which must itself be valid for HA:
a number in its range, a number on a numeric sensor, an option of an enum, a timestamp).
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
import pytest
from pydantic import ValidationError

from tests.homeassistant import ha_schema
from voltbus_common import channels as ch
from voltbus_common.enums import (
    ChargePointErrorCode,
    CommandName,
    ConnectorStatus,
    PilotState,
    StopReason,
)
from voltbus_common.homeassistant import (
    StationDiscovery,
    configured_connectors,
    connector_topic,
    discovery_topic,
    mirror_topic,
    object_id,
)
from voltbus_common.homeassistant.mirror import (
    SessionView,
    StationView,
    last_session,
    running_view,
)
from voltbus_common.models import GatewayCommand, RfidSeen, SessionSummary, TransactionState

ROOT = ch.DEFAULT_ROOT
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

# The entities voltbus announced before connectors became devices of their own, with their
# names on the station device "voltbus CP1": existing users' unique_ids and entity ids.
LEGACY_STATION = {"ocpp_connected": "OCPP connected", "last_rfid": "Last RFID tag"}
LEGACY_CONNECTOR = {
    "status": "status", "power": "power", "energy": "energy", "current_l1": "current L1",
    "current_l2": "current L2", "current_l3": "current L3", "session_energy": "session energy",
    "plugged_in": "plugged in", "charging_enabled": "charging enabled",
    "current_limit": "current limit", "start": "start", "stop": "stop",
}


def station(**overrides: Any) -> StationDiscovery:
    args: dict[str, Any] = {
        "station": "CP1", "connectors": (1, 2), "max_current_a": 32.0, "min_current_a": 6.0,
        "sw_version": "0.1.0", "model": "voltbus simulated", "configuration_url":
        "http://voltbus.local:8080/", "price_per_kwh": 0.30, "currency": "EUR",
    }
    return StationDiscovery(**(args | overrides))


def all_components(s: StationDiscovery | None = None) -> dict[str, Any]:
    """Every component of every device of the station, by component id."""
    out: dict[str, Any] = {}
    for config in (s or station()).configs().values():
        out.update(config["components"])
    return out


def render(template: str, payload: bytes) -> str:
    """Render a template the way HA does: `value` is the text, `value_json` the JSON."""
    variables: dict[str, Any] = {"value": payload.decode()}
    with contextlib.suppress(ValueError):
        variables["value_json"] = json.loads(payload)
    return _JINJA.from_string(template).render(**variables).strip()


def state(comp: dict[str, Any], payload: bytes) -> str:
    """The state HA computes, after checking HA would accept it."""
    rendered = render(comp["value_template"], payload)
    assert ha_schema.check_state(comp, rendered) == [], (comp["unique_id"], rendered)
    if "last_reset_value_template" in comp:
        reset = render(comp["last_reset_value_template"], payload)
        assert ha_schema.check_last_reset(reset) == [], (comp["unique_id"], reset)
    if "json_attributes_template" in comp and comp["json_attributes_topic"] == comp["state_topic"]:
        attributes = render(comp["json_attributes_template"], payload)
        assert ha_schema.check_attributes(attributes) == [], (comp["unique_id"], attributes)
    return rendered


def example(channel: ch.Channel, **changes: Any) -> bytes:  # type: ignore[type-arg]
    """The channel's documented example payload, validated by its model, with changes."""
    data = dict(channel.example) | changes  # type: ignore[arg-type]
    return channel.encode(channel.model.model_validate(data))


def tx(**changes: Any) -> TransactionState:
    data = {"transaction_id": 42, "id_tag": "04A1B2C3", "started_at": T0,
            "meter_start_wh": 12000.0, "energy_wh": 3456.0} | changes
    return TransactionState.model_validate(data)


def summary(**changes: Any) -> SessionSummary:
    data = {"transaction_id": 42, "id_tag": "04A1B2C3", "started_at": T0,
            "stopped_at": T0 + timedelta(minutes=90), "meter_start_wh": 12000.0,
            "meter_stop_wh": 19000.0, "energy_wh": 7000.0, "stop_reason": "EVDisconnected"}
    return SessionSummary.model_validate(data | changes)


def view_bytes(view: SessionView | StationView) -> bytes:
    return view.model_dump_json().encode()


def slug(text: str) -> str:
    """HA's entity id from a friendly name (homeassistant.util.slugify, for these names)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# --- the schema -----------------------------------------------------------------------------


@pytest.mark.parametrize("price", [0.30, None])
@pytest.mark.parametrize("phases", [1, 3])
@pytest.mark.parametrize("connectors", [(1,), (1, 2), tuple(range(1, 11))])
def test_every_payload_passes_the_ha_schema(connectors: tuple[int, ...], phases: int,
                                            price: float | None) -> None:
    s = station(connectors=connectors, phases=phases, price_per_kwh=price)
    configs = s.configs()
    assert ha_schema.check_devices(configs) == []
    assert list(configs) == [discovery_topic("CP1")] + [connector_topic("CP1", n)
                                                         for n in connectors]
    # 25 with the Phases sensor (issue 12), 27 with the energy fail-safe and the limit source
    per_connector = 27 + 2 * phases + (2 if price is not None else 0)
    assert all(len(configs[connector_topic("CP1", n)]["components"]) == per_connector
               for n in connectors)
    assert len(configs[discovery_topic("CP1")]["components"]) == 10 + (price is not None)


def test_payload_is_valid_json_without_nan() -> None:
    for config in station().configs().values():
        assert json.loads(json.dumps(config, allow_nan=False)) == config


def test_one_device_per_connector_via_its_station() -> None:
    configs = station().configs()
    station_device = configs[discovery_topic("CP1")]["device"]
    assert station_device["identifiers"] == ["voltbus_CP1"]
    for n in (1, 2):
        device = configs[connector_topic("CP1", n)]["device"]
        assert device["via_device"] == "voltbus_CP1"
        assert device["name"] == f"voltbus CP1 Connector {n}"
        assert device["configuration_url"] == "http://voltbus.local:8080/"
    assert connector_topic("CP1", 2) == "homeassistant/device/voltbus_CP1/c2/config"
    # A station named like another's connector still gets a device of its own.
    other = station(station="CP1_c1").configs()
    assert ha_schema.check_devices({**configs, **other}) == []


def test_legacy_unique_ids_and_entity_ids_are_kept() -> None:
    """Existing users keep their entities: same unique_id, and the same entity id HA derives
    from device name + entity name ("voltbus CP1" + "Connector 1 power" before)."""
    configs = station().configs()
    by_uid = {comp["unique_id"]: (config["device"]["name"], comp["name"])
              for config in configs.values() for comp in config["components"].values()}
    legacy = {f"voltbus_CP1_{key}": f"voltbus CP1 {name}" for key, name in LEGACY_STATION.items()}
    legacy |= {f"voltbus_CP1_c{n}_{key}": f"voltbus CP1 Connector {n} {name}"
               for n in (1, 2) for key, name in LEGACY_CONNECTOR.items()}
    for uid, old_name in legacy.items():
        assert uid in by_uid, uid
        device_name, name = by_uid[uid]
        assert slug(f"{device_name} {name}") == slug(old_name), uid


def test_units_and_classes_fit_the_energy_dashboard() -> None:
    comps = all_components()
    energy = comps["c1_energy"]
    assert (energy["device_class"], energy["unit_of_measurement"], energy["state_class"]) == (
        "energy", "kWh", "total_increasing")
    power = comps["c1_power"]
    assert (power["device_class"], power["unit_of_measurement"], power["state_class"]) == (
        "power", "W", "measurement")
    for key in ("c1_current_l1", "c1_current_l2", "c1_current_l3"):
        assert (comps[key]["device_class"], comps[key]["unit_of_measurement"]) == ("current", "A")
    for key in ("c1_voltage_l1", "c1_voltage_l2", "c1_voltage_l3"):
        assert (comps[key]["device_class"], comps[key]["unit_of_measurement"]) == ("voltage", "V")
    assert comps["c1_session_energy"]["unit_of_measurement"] == "kWh"
    assert "state_class" not in comps["c1_last_session_energy"]  # not a running total
    assert comps["c1_status"]["options"] == [s.value for s in ConnectorStatus]
    assert (comps["c1_session_cost"]["device_class"],
            comps["c1_session_cost"]["unit_of_measurement"]) == ("monetary", "EUR")
    assert "state_class" not in comps["c1_session_cost"]  # it drops to 0 at each new session
    assert comps["price"]["unit_of_measurement"] == "EUR/kWh"
    for key in ("c1_error_code", "c1_relay", "ocpp_connected", "ocpp_registration"):
        assert comps[key]["entity_category"] == "diagnostic", key


def test_unique_ids_are_stable_and_unique_across_stations() -> None:
    a, b = station().configs(), station(station="CP2").configs()
    assert ha_schema.check_devices({**a, **b}) == []
    ids = {c["unique_id"] for c in all_components().values()}
    assert ids == {c["unique_id"] for c in all_components(station()).values()}


def test_object_id_is_safe_and_distinct() -> None:
    assert object_id("CP1") == "voltbus_CP1"
    odd = {object_id("CP.1"), object_id("CP:1"), object_id("CP_1")}
    assert len(odd) == 3
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", o) for o in odd)
    assert object_id("CP1", "site2/v1") != object_id("CP1")
    assert discovery_topic("CP1", prefix="ha") == "ha/device/voltbus_CP1/config"


def test_min_above_max_is_refused() -> None:
    with pytest.raises(ValueError, match="min_current_a"):
        station(min_current_a=20.0, max_current_a=16.0)


def test_bad_remote_id_tag_is_refused() -> None:
    with pytest.raises(ValidationError):
        station(remote_id_tag="has space")


def test_every_topic_belongs_to_the_contract_or_the_view() -> None:
    views = {mirror_topic("CP1"), mirror_topic("CP1", 1), mirror_topic("CP1", 2)}
    for key, comp in all_components().items():
        topics = [comp.get("state_topic"), comp.get("command_topic"),
                  comp.get("json_attributes_topic")]
        topics += [a["topic"] for a in comp.get("availability", [])]
        for topic in filter(None, topics):
            if topic in views:
                continue
            found = ch.channel_for(ROOT, topic)
            assert found is not None, f"{key}: {topic} is not a contract topic"
            channel, args = found
            assert args["station"] == "CP1"
            if topic == comp.get("command_topic"):
                assert channel is ch.COMMAND
                assert "homeassistant" in channel.writers
    # HA subscribes to <prefix>/<component>/.../config only: the views never look like one.
    assert not any(t.endswith("/config") for t in views)


def test_commands_and_states_travel_at_qos_1() -> None:
    for comp in all_components().values():
        assert comp["qos"] == ch.COMMAND.qos == 1


def test_availability_follows_the_service_that_owns_the_data() -> None:
    comps = all_components()

    def services(key: str) -> set[str]:
        return {a["topic"].split("/")[-2] for a in comps[key].get("availability", [])}

    assert services("c1_power") == {"hardware"}
    assert services("c1_plugged_in") == {"hardware"}
    assert services("c1_relay") == {"hardware"}
    assert services("c1_status") == {"gateway"}
    assert services("c1_session_energy") == {"gateway"}
    assert services("ocpp_connected") == {"gateway"}
    assert services("c1_charging_enabled") == {"gateway", "hardware"}
    assert services("c1_unlock") == {"gateway", "hardware"}
    assert services("station_reset") == {"gateway"}
    assert services("station_available") == {"gateway"}
    assert services("c1_availability") == {"gateway"}
    assert services("price") == set()  # configuration: always there
    assert all(c["availability_mode"] == "all" for c in comps.values() if "availability" in c)


# --- the checker itself must catch what HA rejects --------------------------------------------


@pytest.mark.parametrize(
    ("key", "change", "reason"),
    [
        ("c1_energy", {"unit_of_measurement": "W"}, "not valid for device class 'energy'"),
        ("c1_power", {"state_class": "total_increasing"}, "not valid for device class 'power'"),
        ("c1_charging_enabled", {"command_topic": None}, "requires command_topic"),
        ("c1_current_limit", {"min": 33.0}, "must be >= min"),
        ("c1_status", {"state_class": "measurement"}, "options cannot go with"),
        ("c1_plugged_in", {"device_class": "plugged"}, "no device_class 'plugged'"),
        ("c1_power", {"unique_id": "voltbus_CP1_c1_energy"}, "duplicate unique_id"),
        ("c1_power", {"name": "voltbus CP1 Connector 1 power"}, "repeats the device name"),
        ("c1_start", {"command_topic": "voltbus/v1/+/ocpp/1/command"}, "wildcard"),
        ("c1_power", {"unit_of_measurement": None}, "not valid for device class 'power'"),
        ("c1_session_cost", {"state_class": "measurement"}, "not valid for device class"),
        ("c1_session_cost", {"unit_of_measurement": "€"}, "currency unit"),
        ("c1_session_start", {"unit_of_measurement": "s"}, "is not numeric"),
        ("c1_last_session_energy", {"json_attributes_topic": None}, "without json_attributes"),
    ],
)
def test_checker_catches_what_ha_rejects(key: str, change: dict[str, Any], reason: str) -> None:
    config = station().connector_config(1)
    comp = config["components"][key]
    for name, value in change.items():
        if value is None:
            comp.pop(name)
        else:
            comp[name] = value
    errors = ha_schema.check_device_config(config)
    assert any(reason in e for e in errors), errors


def test_checker_catches_missing_origin_bad_url_and_dangling_via_device() -> None:
    config = station().station_config()
    del config["origin"]
    assert ha_schema.check_device_config(config) == ["origin is required"]
    assert ha_schema.check_url("voltbus.local:8080") != []
    alone = {connector_topic("CP1", 1): station().connector_config(1)}
    assert any("via_device" in e for e in ha_schema.check_devices(alone))


@pytest.mark.parametrize(
    ("platform", "extra", "rendered", "reason"),
    [
        ("number", {"min": 6.0, "max": 16.0}, "0.0", "Invalid value for number: 0.0"),
        ("sensor", {"device_class": "energy", "unit_of_measurement": "kWh"}, "", "non-numeric"),
        ("sensor", {"device_class": "timestamp"}, "2026-01-01T12:00:00", "no time zone"),
        ("sensor", {"device_class": "enum", "options": ["a"]}, "b", "not an option"),
        ("binary_sensor", {}, "on", "neither"),
    ],
)
def test_state_checker_catches_what_ha_logs(platform: str, extra: dict[str, Any],
                                            rendered: str, reason: str) -> None:
    errors = ha_schema.check_state({"platform": platform, **extra}, rendered)
    assert any(reason in e for e in errors), errors


# --- what HA computes from each contract payload ---------------------------------------------


def test_meter_templates_give_numbers() -> None:
    comps = all_components()
    three = example(ch.METER, energy_wh=12345.6, power_w=7360.0, current_a=[10.7, 10.6, 10.5],
                    voltage_v=[230.1, 229.8, 231.0])
    assert float(state(comps["c1_power"], three)) == 7360.0
    assert float(state(comps["c1_energy"], three)) == pytest.approx(12.3456)
    assert [float(state(comps[f"c1_current_l{p}"], three)) for p in (1, 2, 3)] == [
        10.7, 10.6, 10.5]
    assert [float(state(comps[f"c1_voltage_l{p}"], three)) for p in (1, 2, 3)] == [
        230.1, 229.8, 231.0]
    one = example(ch.METER, current_a=[15.9], voltage_v=[230.0])
    assert float(state(comps["c1_current_l1"], one)) == 15.9
    # HA's sensor takes the literal "None" as "unknown", not as a bad number.
    assert state(comps["c1_current_l2"], one) == "None"
    assert state(comps["c1_voltage_l3"], one) == "None"


@pytest.mark.parametrize("pilot", list(PilotState))
def test_plugged_in_from_pilot(pilot: PilotState) -> None:
    comp = all_components()["c1_plugged_in"]
    expected = "ON" if pilot in (PilotState.B, PilotState.C, PilotState.D) else "OFF"
    assert state(comp, example(ch.PILOT, state=pilot.value)) == expected


@pytest.mark.parametrize("status", list(ConnectorStatus))
def test_status_and_availability_from_the_status(status: ConnectorStatus) -> None:
    """A gateway from before `operative`: the switch follows the status, the sensor is
    unknown."""
    comps = all_components()
    payload = example(ch.OCPP_STATUS, status=status.value, operative=None)
    old = json.dumps({"status": status.value, "error_code": "NoError",
                      "ts": "2026-01-01T12:00:00Z"}).encode()
    for each in (payload, old):
        assert state(comps["c1_status"], each) == status.value
        assert state(comps["c1_available"], each) == (
            "OFF" if status is ConnectorStatus.UNAVAILABLE else "ON")
        assert state(comps["c1_availability"], each) == "None"


@pytest.mark.parametrize("key", ["c1", "station"])
@pytest.mark.parametrize(
    ("status", "operative", "scheduled", "switch", "shown", "pending"),
    [
        ("Available", True, None, "ON", "Operative", None),
        ("Unavailable", False, None, "OFF", "Inoperative", None),
        # Inoperative while a session runs: scheduled, the status stays Charging.
        ("Charging", True, False, "ON", "Operative", "Inoperative"),
        # The connector is operative but the station is not: Unavailable, the switch ON.
        ("Unavailable", True, None, "ON", "Operative", None),
    ],
)
def test_availability_as_changeavailability_set_it(
        key: str, status: str, operative: bool, scheduled: bool | None, switch: str,
        shown: str, pending: str | None) -> None:
    """Issue 13: the operative state per connector and for the station (connector 0)."""
    comps = all_components()
    switch_comp, sensor = comps[f"{key}_available"], comps[f"{key}_availability"]
    connector = 1 if key == "c1" else 0
    assert ch.OCPP_STATUS.match(ROOT, switch_comp["state_topic"]) == {
        "station": "CP1", "connector": str(connector)}
    assert sensor["state_topic"] == switch_comp["state_topic"]
    assert ch.COMMAND.match(ROOT, switch_comp["command_topic"]) == {
        "station": "CP1", "connector": str(connector)}
    assert (sensor["device_class"], sensor["entity_category"]) == ("enum", "diagnostic")
    payload = example(ch.OCPP_STATUS, status=status, operative=operative,
                      scheduled_operative=scheduled)
    assert state(switch_comp, payload) == switch
    assert state(sensor, payload) == shown
    attributes = render(sensor["json_attributes_template"], payload)
    assert ha_schema.check_attributes(attributes) == []
    assert json.loads(attributes) == {"scheduled": pending}


def test_reset_buttons_on_the_station() -> None:
    """Issue 13: a reset button (soft), and a hard one that is off until enabled."""
    station_comps = station().station_components()
    soft, hard = station_comps["station_reset"], station_comps["station_reset_hard"]
    for comp in (soft, hard):
        assert (comp["platform"], comp["device_class"]) == ("button", "restart")
        assert ch.COMMAND.match(ROOT, comp["command_topic"]) == {"station": "CP1",
                                                                  "connector": "0"}
        assert [a["topic"] for a in comp["availability"]] == [
            ch.SERVICE_STATUS.topic(ROOT, station="CP1", service="gateway")]
    soft_cmd = GatewayCommand.model_validate_json(soft["payload_press"])
    hard_cmd = GatewayCommand.model_validate_json(hard["payload_press"])
    assert (soft_cmd.command, soft_cmd.hard) == (CommandName.RESET, False)
    assert (hard_cmd.command, hard_cmd.hard) == (CommandName.RESET, True)
    assert "enabled_by_default" not in soft
    assert hard["enabled_by_default"] is False


@pytest.mark.parametrize("code", list(ChargePointErrorCode))
def test_error_code_with_the_hardware_detail(code: ChargePointErrorCode) -> None:
    comp = all_components()["c1_error_code"]
    assert state(comp, example(ch.OCPP_STATUS, error_code=code.value)) == code.value
    detail = render(comp["json_attributes_template"],
                    example(ch.HW_ERROR, code=code.value, info="meter silent"))
    assert ha_schema.check_attributes(detail) == []
    assert json.loads(detail)["info"] == "meter silent"


@pytest.mark.parametrize("closed", [True, False])
def test_relay(closed: bool) -> None:
    comp = all_components()["c1_relay"]
    assert state(comp, example(ch.RELAY, closed=closed)) == ("ON" if closed else "OFF")


@pytest.mark.parametrize("connected", [True, False])
def test_ocpp_link(connected: bool) -> None:
    comps = all_components()
    payload = example(ch.OCPP_CONNECTION, connected=connected,
                      registration="Accepted" if connected else None)
    assert state(comps["ocpp_connected"], payload) == ("ON" if connected else "OFF")
    assert state(comps["ocpp_registration"], payload) == ("Accepted" if connected else "None")
    assert datetime.fromisoformat(state(comps["ocpp_since"], payload)).tzinfo is not None


def test_firmware_and_heartbeat_are_diagnostic() -> None:
    """Issue 13: the gateway publishes both on ocpp/connection; a gateway from before them (or
    no heartbeat answered yet) shows unknown."""
    comps = all_components()
    firmware, heartbeat = comps["firmware_version"], comps["last_heartbeat"]
    assert (firmware["entity_category"], heartbeat["entity_category"]) == ("diagnostic",) * 2
    assert heartbeat["device_class"] == "timestamp"
    payload = example(ch.OCPP_CONNECTION)
    assert state(firmware, payload) == "0.1.0"
    assert datetime.fromisoformat(state(heartbeat, payload)).tzinfo is not None
    none_yet = example(ch.OCPP_CONNECTION, last_heartbeat=None)
    assert state(heartbeat, none_yet) == "None"
    old = b'{"connected": true, "registration": "Accepted", "since": "2026-01-01T12:00:00Z"}'
    assert (state(firmware, old), state(heartbeat, old)) == ("None", "None")


@pytest.mark.parametrize(
    ("enabled", "limit", "shown"),
    [
        (True, 16.0, 16.0),
        (True, 10.0, 10.0),
        (False, 0.0, 32.0),  # disabled: the limit in force is 0, the number stays in range
        (True, 0.0, 32.0),  # paused (energy manager, off-peak): the status shows it
        (True, None, 32.0),  # no limit set
        (True, 3.0, 32.0),
        (True, 40.0, 32.0),  # above what this configuration allows
    ],
)
def test_current_limit_is_always_in_range(enabled: bool, limit: float | None,
                                          shown: float) -> None:
    """Issue 13: `current_limit_a: 0` when disabled gave HA 'Invalid value ... 0.0 (range 6.0 -
    16.0)' errors on every switch-off and every HA start."""
    comps = all_components()
    payload = example(ch.CHARGING, enabled=enabled, current_limit_a=limit)
    assert float(state(comps["c1_current_limit"], payload)) == shown
    assert state(comps["c1_charging_enabled"], payload) == ("ON" if enabled else "OFF")


@pytest.mark.parametrize(
    ("enabled", "limit", "command", "shown"),
    [
        (True, 10.0, 10.0, 10.0),
        (False, 0.0, 10.0, 10.0),  # disabled: the number keeps the commanded limit
        (True, 8.0, 12.0, 12.0),  # a profile holds it lower: the number shows what was set
        (True, 0.0, 40.0, 32.0),  # capped at the number's max
        (True, 10.0, 3.0, 10.0),  # below the minimum: the limit in force
        (True, 10.0, None, 10.0),  # none commanded
    ],
)
def test_current_limit_shows_the_commanded_limit(enabled: bool, limit: float,
                                                 command: float | None, shown: float) -> None:
    """Issue 13: the number shows command_limit_a, which the gateway keeps across restarts."""
    comps = all_components()
    payload = example(ch.CHARGING, enabled=enabled, current_limit_a=limit, command_limit_a=command)
    assert float(state(comps["c1_current_limit"], payload)) == shown


def test_offpeak_waiting_with_its_window() -> None:
    comp = all_components()["c1_offpeak_waiting"]
    waiting = example(ch.CHARGING, offpeak_waiting=True, offpeak_until="2026-01-01T22:00:00Z")
    assert state(comp, waiting) == "ON"
    assert json.loads(render(comp["json_attributes_template"], waiting)) == {
        "until": "2026-01-01T22:00:00Z", "override": False}
    assert state(comp, example(ch.CHARGING)) == "OFF"


# --- the session view (mirror.py) ------------------------------------------------------------


def test_between_sessions_every_session_entity_has_a_state_or_is_unknown() -> None:
    """Issue 13: session energy was `unknown` between sessions and after every HA restart."""
    comps = all_components()
    idle = view_bytes(running_view(None, None, price_per_kwh=0.30, now=T0))
    assert float(state(comps["c1_session_energy"], idle)) == 0.0
    assert float(state(comps["c1_session_time"], idle)) == 0.0
    assert float(state(comps["c1_session_cost"], idle)) == 0.0
    for key in ("c1_session_start", "c1_transaction_id", "c1_session_tag", "c1_last_tag",
                "c1_last_session_energy", "c1_last_session_duration",
                "c1_last_session_stop_reason", "c1_last_session_cost"):
        assert state(comps[key], idle) == "None", key  # no session yet: unknown, no error


def test_running_session() -> None:
    comps = all_components()
    running = view_bytes(running_view(tx(), None, price_per_kwh=0.30,
                                      now=T0 + timedelta(minutes=30)))
    assert float(state(comps["c1_session_energy"], running)) == pytest.approx(3.456)
    assert float(state(comps["c1_session_time"], running)) == 1800
    assert float(state(comps["c1_session_cost"], running)) == pytest.approx(1.04)
    assert datetime.fromisoformat(state(comps["c1_session_start"], running)) == T0
    assert state(comps["c1_transaction_id"], running) == "42"
    assert state(comps["c1_session_tag"], running) == "04A1B2C3"
    assert state(comps["c1_last_tag"], running) == "04A1B2C3"
    unassigned = view_bytes(running_view(tx(transaction_id=None), None, price_per_kwh=0.3,
                                         now=T0))
    assert state(comps["c1_transaction_id"], unassigned) == "None"


def test_transaction_id_of_201_shows_its_uuid() -> None:
    """Issue 13: a 2.0.1 transaction has no integer id; transaction_ref carries it as text."""
    comps = all_components()
    ref = "8f0c7a52-3a4b-4c7e-9d2f-0123456789ab"
    running = view_bytes(running_view(tx(transaction_id=None, transaction_ref=ref), None,
                                      price_per_kwh=None, now=T0))
    assert state(comps["c1_transaction_id"], running) == ref
    last = last_session(summary(transaction_id=None, transaction_ref=ref), price_per_kwh=None)
    attributes = json.loads(render(comps["c1_last_session_energy"]["json_attributes_template"],
                                   view_bytes(running_view(None, last, price_per_kwh=None,
                                                           now=T0))))
    assert attributes["transaction_ref"] == ref


def test_last_session_stays_on_its_own_sensors() -> None:
    comps = all_components()
    last = last_session(summary(), price_per_kwh=0.30)
    after = view_bytes(running_view(None, last, price_per_kwh=0.30, now=T0))
    assert float(state(comps["c1_session_energy"], after)) == 0.0
    assert float(state(comps["c1_last_session_energy"], after)) == 7.0
    assert float(state(comps["c1_last_session_duration"], after)) == 5400
    assert state(comps["c1_last_session_stop_reason"], after) == "EVDisconnected"
    assert float(state(comps["c1_last_session_cost"], after)) == 2.1
    assert state(comps["c1_last_tag"], after) == "04A1B2C3"
    attributes = json.loads(render(comps["c1_last_session_energy"]["json_attributes_template"],
                                   after))
    assert attributes["stop_reason"] == "EVDisconnected"
    assert attributes["transaction_id"] == 42


@pytest.mark.parametrize("reason", list(StopReason))
def test_every_stop_reason_is_an_option(reason: StopReason) -> None:
    comp = all_components()["c1_last_session_stop_reason"]
    view = running_view(None, last_session(summary(stop_reason=reason), price_per_kwh=None),
                        price_per_kwh=None, now=T0)
    assert state(comp, view_bytes(view)) == reason.value


def test_last_rfid_and_price_from_the_station_view() -> None:
    comps = all_components()
    seen = RfidSeen(id_tag="04A1B2C3", reader="front", ts=T0)
    view = view_bytes(StationView(last_rfid=seen, price_per_kwh=0.3))
    assert state(comps["last_rfid"], view) == "04A1B2C3"
    assert json.loads(render(comps["last_rfid"]["json_attributes_template"], view))[
        "reader"] == "front"
    assert float(state(comps["price"], view)) == 0.3
    assert state(comps["last_rfid"], view_bytes(StationView(price_per_kwh=0.3))) == "None"
    # a 36-character OCPP 2.0.1 token and the card type shown whole
    long = RfidSeen(id_tag="0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19", card_type="ISO15693", ts=T0)
    view = view_bytes(StationView(last_rfid=long, price_per_kwh=0.3))
    assert state(comps["last_rfid"], view) == "0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19"
    assert json.loads(render(comps["last_rfid"]["json_attributes_template"], view))[
        "card_type"] == "ISO15693"


# --- what HA sends -----------------------------------------------------------------------------


def ha_commands(configs: dict[str, dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    """Every (component, topic, payload) HA can send, as HA renders it."""
    sent = []
    for config in configs.values():
        for key, comp in config["components"].items():
            if comp["platform"] == "switch":
                sent += [(key, comp["command_topic"], comp["payload_on"].encode()),
                         (key, comp["command_topic"], comp["payload_off"].encode())]
            elif comp["platform"] == "button":
                sent.append((key, comp["command_topic"], comp["payload_press"].encode()))
            elif comp["platform"] == "number":
                template = _JINJA.from_string(comp["command_template"])
                # HA passes an int when the value is whole (number.py async_set_native_value).
                for value in (comp["min"], comp["max"], 6.5):
                    value = int(value) if float(value).is_integer() else value
                    sent.append((key, comp["command_topic"],
                                 template.render(value=value).encode()))
    return sent


COMMANDS_PER_CONNECTOR = 2 + 2 + 3 + 4  # two switches x2, the number x3, four buttons
COMMANDS_PER_STATION = 2 + 2  # the availability switch x2, two reset buttons


def test_every_command_is_a_valid_gateway_command() -> None:
    sent = ha_commands(station().configs())
    assert len(sent) == 2 * COMMANDS_PER_CONNECTOR + COMMANDS_PER_STATION
    names = set()
    for key, topic, payload in sent:
        command = GatewayCommand.model_validate_json(payload)
        names.add(command.command)
        connector = "0" if key.startswith("station_") else key[1:key.index("_")]
        assert ch.COMMAND.match(ROOT, topic) == {"station": "CP1", "connector": connector}
        if command.command is CommandName.SET_CURRENT_LIMIT:
            assert command.amps in (6.0, 32.0, 6.5)
        if command.command is CommandName.START:
            assert command.id_tag == "HA-REMOTE"
    assert names == set(CommandName)


# --- which connectors a set of published configs announces -------------------------------------


def test_configured_connectors() -> None:
    configs = station().configs()
    assert configured_connectors(configs) == {1, 2}
    configs[connector_topic("CP1", 2)] = {"components": {"c2_power": {"platform": "sensor"}}}
    assert configured_connectors(configs) == {1}


# --- the energy manager's tariff (VOLTBUS_ENERGY_SITE) -----------------------------------------


def test_tariff_price_from_the_energy_manager() -> None:
    assert "tariff_price" not in all_components()  # only with the site id configured
    s = station(energy_site="home")
    assert ha_schema.check_devices(s.configs()) == []
    comp = s.station_components()["tariff_price"]
    assert ch.ENERGY_SITE.match(ROOT, comp["state_topic"]) == {"station": "home"}
    assert [a["topic"] for a in comp["availability"]] == [
        ch.SERVICE_STATUS.topic(ROOT, station="home", service="energy")]
    assert float(state(comp, example(ch.ENERGY_SITE, price_per_kwh=0.2873))) == 0.2873
    unknown = example(ch.ENERGY_SITE, price_per_kwh=None, price_status="feed unreachable")
    assert state(comp, unknown) == "None"
    assert json.loads(render(comp["json_attributes_template"], unknown)) == {
        "status": "feed unreachable"}


def test_energy_manager_lost_and_the_limit_source() -> None:
    """The gateway's fail-safe while the energy manager is lost, with why, and which input
    sets the limit; a gateway from before these fields leaves them OFF and unknown."""
    comps = all_components()
    lost, source = comps["c1_energy_fail_safe"], comps["c1_limit_source"]
    payload = example(ch.CHARGING, energy_fail_safe=True, energy_limit_a=6.0,
                      limit_source="energy_fail_safe",
                      energy_fail_safe_reason="energy manager offline")
    assert state(lost, payload) == "ON"
    assert json.loads(render(lost["json_attributes_template"], payload)) == {
        "reason": "energy manager offline", "limit_a": 6.0}
    assert state(source, payload) == "energy_fail_safe"
    assert "energy_fail_safe" in source["options"]
    back = example(ch.CHARGING, energy_fail_safe=False, energy_limit_a=11.0,
                   limit_source="energy_manager", energy_fail_safe_reason=None)
    assert (state(lost, back), state(source, back)) == ("OFF", "energy_manager")
    old = json.dumps({"enabled": True, "current_limit_a": 16.0,
                      "ts": "2026-01-01T12:00:00Z"}).encode()
    assert (state(lost, old), state(source, old)) == ("OFF", "None")
