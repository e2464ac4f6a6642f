"""The discovery payload against HA's documented schema, with its templates rendered by Jinja.

No broker here: these check what HA would do with the payload (accept or reject each entity,
and what state it would compute from each contract payload).
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import jinja2
import pytest
from pydantic import ValidationError

from tests.homeassistant import ha_schema
from voltbus_common import channels as ch
from voltbus_common.enums import CommandName, ConnectorStatus, PilotState
from voltbus_common.homeassistant import (
    StationDiscovery,
    configured_connectors,
    discovery_topic,
    object_id,
)
from voltbus_common.models import GatewayCommand

ROOT = ch.DEFAULT_ROOT
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined)


def station(**overrides: Any) -> StationDiscovery:
    args: dict[str, Any] = {
        "station": "CP1", "connectors": (1, 2), "max_current_a": 32.0, "min_current_a": 6.0,
        "sw_version": "0.1.0", "model": "voltbus simulated", "configuration_url":
        "http://voltbus.local:8080/",
    }
    return StationDiscovery(**(args | overrides))


def render(template: str, payload: bytes) -> str:
    """Render a value_template the way HA does: `value` is the text, `value_json` the JSON."""
    variables: dict[str, Any] = {"value": payload.decode()}
    with contextlib.suppress(ValueError):
        variables["value_json"] = json.loads(payload)
    return _JINJA.from_string(template).render(**variables).strip()


def example(channel: ch.Channel, **changes: Any) -> bytes:  # type: ignore[type-arg]
    """The channel's documented example payload, validated by its model, with changes."""
    data = dict(channel.example) | changes  # type: ignore[arg-type]
    return channel.encode(channel.model.model_validate(data))


def components(config: dict[str, Any], platform: str | None = None) -> dict[str, Any]:
    return {k: c for k, c in config["components"].items()
            if platform is None or c["platform"] == platform}


# --- the schema -----------------------------------------------------------------------------


@pytest.mark.parametrize("phases", [1, 3])
@pytest.mark.parametrize("connectors", [(1,), (1, 2), tuple(range(1, 11))])
def test_every_payload_passes_the_ha_schema(connectors: tuple[int, ...], phases: int) -> None:
    config = station(connectors=connectors, phases=phases).config()
    assert ha_schema.check_device_config(config) == []
    # Every entity the issue asks for, per connector, plus the station-level ones.
    per_connector = 9 + phases
    assert len(config["components"]) == 2 + per_connector * len(connectors)


def test_payload_is_valid_json_without_nan() -> None:
    text = json.dumps(station().config(), allow_nan=False)
    assert json.loads(text) == station().config()


def test_units_and_classes_fit_the_energy_dashboard() -> None:
    comps = station().config()["components"]
    energy = comps["c1_energy"]
    assert (energy["device_class"], energy["unit_of_measurement"], energy["state_class"]) == (
        "energy", "kWh", "total_increasing")
    power = comps["c1_power"]
    assert (power["device_class"], power["unit_of_measurement"], power["state_class"]) == (
        "power", "W", "measurement")
    for key in ("c1_current_l1", "c1_current_l2", "c1_current_l3"):
        assert (comps[key]["device_class"], comps[key]["unit_of_measurement"]) == ("current", "A")
    assert comps["c1_session_energy"]["unit_of_measurement"] == "kWh"
    assert comps["c1_status"]["options"] == [s.value for s in ConnectorStatus]


def test_unique_ids_are_stable_and_unique_across_stations() -> None:
    a, b = station().config(), station(station="CP2").config()
    ids_a = {c["unique_id"] for c in a["components"].values()}
    ids_b = {c["unique_id"] for c in b["components"].values()}
    assert len(ids_a) == len(a["components"])
    assert not ids_a & ids_b
    assert ids_a == {c["unique_id"] for c in station().config()["components"].values()}


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


def test_every_topic_belongs_to_the_contract() -> None:
    config = station().config()
    for key, comp in config["components"].items():
        topics = [comp.get("state_topic"), comp.get("command_topic")]
        topics += [a["topic"] for a in comp["availability"]]
        for topic in filter(None, topics):
            found = ch.channel_for(ROOT, topic)
            assert found is not None, f"{key}: {topic} is not a contract topic"
            channel, args = found
            assert args["station"] == "CP1"
            if "command_topic" in comp and topic == comp["command_topic"]:
                assert channel is ch.COMMAND
                assert "homeassistant" in channel.writers


def test_commands_and_states_travel_at_qos_1() -> None:
    for comp in station().config()["components"].values():
        assert comp["qos"] == ch.COMMAND.qos == 1


def test_availability_follows_the_service_that_owns_the_data() -> None:
    comps = station().config()["components"]

    def services(key: str) -> set[str]:
        return {a["topic"].split("/")[-2] for a in comps[key]["availability"]}

    assert services("c1_power") == {"hardware"}
    assert services("c1_plugged_in") == {"hardware"}
    assert services("c1_status") == {"gateway"}
    assert services("ocpp_connected") == {"gateway"}
    assert services("c1_charging_enabled") == {"gateway", "hardware"}
    assert all(c["availability_mode"] == "all" for c in comps.values())


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
        ("c1_power", {"name": "voltbus CP1 power"}, "repeats the device name"),
        ("c1_start", {"command_topic": "voltbus/v1/+/ocpp/1/command"}, "wildcard"),
        ("c1_power", {"unit_of_measurement": None}, "not valid for device class 'power'"),
    ],
)
def test_checker_catches_what_ha_rejects(key: str, change: dict[str, Any], reason: str) -> None:
    config = station().config()
    comp = config["components"][key]
    for name, value in change.items():
        if value is None:
            comp.pop(name)
        else:
            comp[name] = value
    errors = ha_schema.check_device_config(config)
    assert any(reason in e for e in errors), errors


def test_checker_catches_missing_origin_and_bad_url() -> None:
    config = station().config()
    del config["origin"]
    assert ha_schema.check_device_config(config) == ["origin is required"]
    assert ha_schema.check_url("voltbus.local:8080") != []


# --- what HA computes from each contract payload ---------------------------------------------


def test_meter_templates_give_numbers() -> None:
    comps = station().config()["components"]
    three = example(ch.METER, energy_wh=12345.6, power_w=7360.0, current_a=[10.7, 10.6, 10.5])
    assert float(render(comps["c1_power"]["value_template"], three)) == 7360.0
    assert float(render(comps["c1_energy"]["value_template"], three)) == pytest.approx(12.3456)
    assert [float(render(comps[f"c1_current_l{p}"]["value_template"], three))
            for p in (1, 2, 3)] == [10.7, 10.6, 10.5]
    one = example(ch.METER, current_a=[15.9], voltage_v=[230.0])
    assert float(render(comps["c1_current_l1"]["value_template"], one)) == 15.9
    # HA's sensor takes the literal "None" as "unknown", not as a bad number.
    assert render(comps["c1_current_l2"]["value_template"], one) == "None"


def test_session_energy_handles_the_empty_transaction_payload() -> None:
    template = station().config()["components"]["c1_session_energy"]["value_template"]
    running = example(ch.TRANSACTION, energy_wh=3456.0)
    assert float(render(template, running)) == pytest.approx(3.456)
    assert ch.TRANSACTION.encode(None) == b""
    assert float(render(template, b"")) == 0.0


@pytest.mark.parametrize("state", list(PilotState))
def test_plugged_in_from_pilot(state: PilotState) -> None:
    template = station().config()["components"]["c1_plugged_in"]["value_template"]
    expected = "ON" if state in (PilotState.B, PilotState.C, PilotState.D) else "OFF"
    assert render(template, example(ch.PILOT, state=state.value)) == expected


@pytest.mark.parametrize("status", list(ConnectorStatus))
def test_status_is_always_one_of_the_options(status: ConnectorStatus) -> None:
    comp = station().config()["components"]["c1_status"]
    assert render(comp["value_template"], example(ch.OCPP_STATUS, status=status.value)) in (
        comp["options"])


@pytest.mark.parametrize("connected", [True, False])
def test_ocpp_connected(connected: bool) -> None:
    template = station().config()["components"]["ocpp_connected"]["value_template"]
    assert render(template, example(ch.OCPP_CONNECTION, connected=connected)) == (
        "ON" if connected else "OFF")


def test_charging_state_drives_switch_and_number() -> None:
    comps = station().config()["components"]
    switch, number = comps["c1_charging_enabled"], comps["c1_current_limit"]
    on = example(ch.CHARGING, enabled=True, current_limit_a=16.0)
    off = example(ch.CHARGING, enabled=False, current_limit_a=None)
    assert render(switch["value_template"], on) == switch["state_on"]
    assert render(switch["value_template"], off) == switch["state_off"]
    assert float(render(number["value_template"], on)) == 16.0
    assert render(number["value_template"], off) == "None"  # number's default payload_reset


def test_last_rfid() -> None:
    template = station().config()["components"]["last_rfid"]["value_template"]
    assert render(template, example(ch.RFID, id_tag="04A1B2C3")) == "04A1B2C3"


# --- what HA sends -----------------------------------------------------------------------------


def ha_commands(config: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    """Every (component, topic, payload) HA can send, as HA renders it."""
    sent = []
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
                sent.append((key, comp["command_topic"], template.render(value=value).encode()))
    return sent


def test_every_command_is_a_valid_gateway_command() -> None:
    config = station().config()
    sent = ha_commands(config)
    assert len(sent) == 2 * (2 + 3 + 2)  # per connector: switch x2, number x3, buttons x2
    names = set()
    for key, topic, payload in sent:
        command = GatewayCommand.model_validate_json(payload)
        names.add(command.command)
        assert ch.COMMAND.match(ROOT, topic) == {"station": "CP1",
                                                  "connector": key[1:key.index("_")]}
        if command.command is CommandName.SET_CURRENT_LIMIT:
            assert command.amps in (6.0, 32.0, 6.5)
        if command.command is CommandName.START:
            assert command.id_tag == "HA-REMOTE"
    assert names == {CommandName.ENABLE_CHARGING, CommandName.DISABLE_CHARGING,
                     CommandName.SET_CURRENT_LIMIT, CommandName.START, CommandName.STOP}


# --- removal -------------------------------------------------------------------------------------


def test_removed_connector_is_reduced_to_platform_stubs() -> None:
    config = station(connectors=(1,), removed_connectors=frozenset({2})).config()
    assert ha_schema.check_device_config(config) == []
    stubs = {k: c for k, c in config["components"].items() if k.startswith("c2_")}
    assert stubs
    assert all(set(c) == {"platform"} for c in stubs.values())
    assert configured_connectors(config) == {1}
    assert configured_connectors(station().config()) == {1, 2}
