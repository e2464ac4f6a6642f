"""Home Assistant entities of the energy manager (VOLTBUS_ENERGY_SITE): the site's sensors, the
charge-mode select and the plan number/text per connector. Checked against HA's schema with
their templates rendered by Jinja, and HA's commands sent over the real Mosquitto (repo ACL)
as the `homeassistant` user until the whole setting arrives on energy/{c}/mode/set."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.energy.test_with_gateway import start_energy, start_session
from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from tests.homeassistant import ha_schema
from tests.homeassistant.test_discovery_config import (
    ROOT,
    all_components,
    example,
    render,
    state,
    station,
)
from tests.homeassistant.test_publisher import Configs, home_assistant, publisher, running
from tests.homeassistant.test_with_real_gateway import (
    HomeAssistantView,
    eventually,
    remembered,
)
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import ChargeMode, CommandName
from voltbus_common.homeassistant.discovery import energy_set_topic, energy_view_topic
from voltbus_common.homeassistant.energy import EnergyBridge, parse_departure
from voltbus_common.models import ChargeModeSetting, ChargeModeState, GatewayCommand, SessionCost

SITE_KEYS = {"site_grid_power", "site_pv_power", "site_surplus", "site_charge_power",
             "site_battery_power", "site_battery_soc", "site_fuse_limit", "site_fail_safe"}
CONNECTOR_KEYS = {"charge_mode", "plan_energy", "plan_departure", "energy_status",
                  "energy_limit", "tariff_cost", "phase_switching"}
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined)
TIMEOUT = 5


def command(comp: dict[str, Any], value: object) -> bytes:
    """What HA sends for a value (HA's command templates get `value`)."""
    return _JINJA.from_string(comp["command_template"]).render(value=value).encode()


def test_only_with_the_energy_manager_configured() -> None:
    plain = all_components()
    assert not SITE_KEYS & set(plain)
    assert not any(k.endswith(tuple(CONNECTOR_KEYS)) for k in plain)
    s = station(energy_site="home")
    comps = all_components(s)
    assert set(comps) >= SITE_KEYS
    assert {f"c{n}_{k}" for n in (1, 2) for k in CONNECTOR_KEYS} <= set(comps)
    assert ha_schema.check_devices(s.configs()) == []
    # Every one of them is unavailable while the energy manager is offline.
    energy = ch.SERVICE_STATUS.topic(ROOT, station="home", service="energy")
    for key in SITE_KEYS | {f"c1_{k}" for k in CONNECTOR_KEYS}:
        assert [a["topic"] for a in comps[key]["availability"]] == [energy], key


def test_checker_knows_select_and_text() -> None:
    comps = all_components(station(energy_site="home"))
    bad = dict(comps["c1_charge_mode"])
    del bad["options"]
    assert any("requires options" in e for e in ha_schema.check_component("x", bad))
    assert ha_schema.check_state(comps["c1_charge_mode"], "turbo") != []
    assert ha_schema.check_state(comps["c1_plan_departure"], "tomorrow") != []
    assert ha_schema.check_state(comps["c1_plan_departure"], "07:30") == []


def test_site_sensors_render_from_energy_site() -> None:
    comps = all_components(station(energy_site="home"))
    site = example(ch.ENERGY_SITE, grid_power_w=2300.0, pv_power_w=4100.0, surplus_w=1800.0,
                   charge_power_w=0.0, fuse_limit_a=25.0, fail_safe=False)
    assert float(state(comps["site_grid_power"], site)) == 2300.0
    assert float(state(comps["site_pv_power"], site)) == 4100.0
    assert float(state(comps["site_surplus"], site)) == 1800.0
    assert float(state(comps["site_fuse_limit"], site)) == 25.0
    assert state(comps["site_fail_safe"], site) == "OFF"
    silent = example(ch.ENERGY_SITE, grid_power_w=None, pv_power_w=None, fail_safe=True)
    assert state(comps["site_grid_power"], silent) == "None"
    assert state(comps["site_pv_power"], silent) == "None"
    assert state(comps["site_fail_safe"], silent) == "ON"
    battery = example(ch.ENERGY_SITE, battery_power_w=-1500.0, battery_soc_pct=61.5)
    assert float(state(comps["site_battery_power"], battery)) == -1500.0
    assert float(state(comps["site_battery_soc"], battery)) == 61.5
    assert state(comps["site_battery_soc"], silent) == "None"  # no battery
    assert ha_schema.check_state(comps["site_battery_soc"], "61.5") == []
    assert ch.ENERGY_SITE.match(ROOT, comps["site_grid_power"]["state_topic"]) == {
        "station": "home"}


def test_connector_entities_render_from_the_mode() -> None:
    comps = all_components(station(energy_site="home"))
    mode = example(ch.ENERGY_MODE)
    assert state(comps["c1_charge_mode"], mode) == "plan"
    assert state(comps["c1_energy_status"], mode).startswith("plan")
    attrs = json.loads(render(comps["c1_energy_status"]["json_attributes_template"], mode))
    assert attrs["plan_slots"]
    assert "price_per_kwh" in attrs["plan_slots"][0]
    assert float(state(comps["c1_energy_limit"], mode)) >= 0
    assert ch.ENERGY_MODE.match(ROOT, comps["c2_charge_mode"]["state_topic"]) == {
        "station": "CP1", "connector": "2"}
    view = energy_view_topic("CP1", 1)
    assert comps["c1_plan_energy"]["state_topic"] == view
    assert state(comps["c1_plan_energy"], b'{"plan_energy_wh":20000.0,"plan_departure":null}') \
        == "20.0"
    assert state(comps["c1_plan_energy"], b'{"plan_energy_wh":null,"plan_departure":null}') \
        == "None"
    assert state(comps["c1_plan_departure"],
                 b'{"plan_energy_wh":null,"plan_departure":"2026-12-04T06:00:00+00:00"}') \
        == "2026-12-04T06:00:00+00:00"
    assert state(comps["c1_plan_departure"], b'{"plan_energy_wh":null,"plan_departure":null}') \
        == ""
    # Commands go to the publisher's set topic, one field each, as valid JSON.
    for key in ("charge_mode", "plan_energy", "plan_departure"):
        assert comps[f"c1_{key}"]["command_topic"] == energy_set_topic("CP1", 1)
    assert json.loads(command(comps["c1_charge_mode"], "pv")) == {"mode": "pv"}
    assert json.loads(command(comps["c1_plan_energy"], 20)) == {"plan_energy_wh": 20000.0}
    assert json.loads(command(comps["c1_plan_energy"], 7.5)) == {"plan_energy_wh": 7500.0}
    assert json.loads(command(comps["c1_plan_departure"], 'a"b')) == {"plan_departure": 'a"b'}


def test_session_cost_at_the_tariff_from_energy_cost() -> None:
    """Issue 13: the cost at the live tariff (energy/{c}/cost), in the configured currency."""
    comps = all_components(station(energy_site="home", currency="CHF"))
    cost = comps["c1_tariff_cost"]
    assert ch.ENERGY_COST.match(ROOT, cost["state_topic"]) == {"station": "CP1",
                                                                "connector": "1"}
    assert ch.ENERGY_COST.match(ROOT, comps["c2_tariff_cost"]["state_topic"])["connector"] == "2"
    # monetary allows only `total` (HA: "expected None or one of 'total'"); last_reset marks
    # each session as a new cycle of the statistics.
    assert (cost["device_class"], cost["state_class"], cost["unit_of_measurement"]) == (
        "monetary", "total", "CHF")
    assert "session_cost" not in cost["unique_id"]  # the flat-price one keeps its own id
    running = example(ch.ENERGY_COST, final=False, stopped_at=None, cost=1.23456,
                      energy_wh=4100.0)
    assert float(state(cost, running)) == 1.2346
    assert datetime.fromisoformat(render(cost["last_reset_value_template"], running)) == \
        datetime(2026, 1, 1, 10, tzinfo=UTC)  # the session's start
    attrs = json.loads(render(cost["json_attributes_template"], running))
    assert (attrs["final"], attrs["energy_wh"], attrs["transaction_id"]) == (False, 4100.0, "42")
    final = example(ch.ENERGY_COST)
    assert float(state(cost, final)) == 5.06
    assert json.loads(render(cost["json_attributes_template"], final))["stopped_at"]
    bad = dict(cost, state_class="total_increasing")
    assert any("not valid for device class" in e for e in ha_schema._check_sensor(bad))
    assert ha_schema.check_last_reset("2026-01-01T10:00:00") != []  # no zone: refused here


def test_parse_departure() -> None:
    now = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    assert parse_departure("06:30", now) == datetime(2026, 12, 4, 6, 30, tzinfo=UTC)
    assert parse_departure("21:00", now) == datetime(2026, 12, 3, 21, 0, tzinfo=UTC)
    assert parse_departure("2026-12-05T07:00", now) == datetime(2026, 12, 5, 7, tzinfo=UTC)
    assert parse_departure("2026-12-05T07:00+01:00", now) == datetime(2026, 12, 5, 6,
                                                                      tzinfo=UTC)
    assert parse_departure("", now) is None


async def test_ha_commands_reach_mode_set_whole_through_the_broker(
    mosquitto: Broker, station: str
) -> None:
    bus, pub = publisher(mosquitto, station, connectors=[1], energy_site="home")
    assert isinstance(pub.energy, EnergyBridge)
    ha = home_assistant(mosquitto, station)
    seen = Configs(ha, pub)
    energy = Bus(mosquitto.settings("energy", stations=[station]), station=station,
                 service=None)
    arrived: asyncio.Queue[Received[ChargeModeSetting]] = asyncio.Queue()

    async def on_set(msg: Received[ChargeModeSetting]) -> None:
        await arrived.put(msg)

    energy.on(ch.ENERGY_MODE_SET, on_set)
    views: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_view(topic: str, payload: bytes, retain: bool) -> None:
        await views.put(payload)

    ha.on_raw(energy_view_topic(station, 1), on_view)
    async with running(bus, ha, energy):
        configs = await seen.all(1)
        comps = configs[next(t for t in configs if t != "station")]["components"]
        assert ha_schema.check_devices({pub.topic: configs["station"],
                                        **{t: c for t, c in configs.items()
                                           if t != "station"}}) == []
        # The energy manager's retained mode: PV with priority 3.
        energy.publish(ch.ENERGY_MODE, ChargeModeState(mode=ChargeMode.PV, priority=3),
                       connector=1)
        await energy.drain()
        await asyncio.sleep(0.3)

        def send(key: str, value: object) -> None:
            comp = comps[f"c1_{key}"]
            ha.publish_raw(comp["command_topic"], command(comp, value), qos=1)

        # The select: the mode changes, the priority stays.
        send("charge_mode", "now")
        msg = await asyncio.wait_for(arrived.get(), TIMEOUT)
        assert msg.connector == 1
        assert msg.payload == ChargeModeSetting(mode=ChargeMode.NOW, priority=3)
        energy.publish(ch.ENERGY_MODE, ChargeModeState(mode=ChargeMode.NOW, priority=3),
                       connector=1)
        await energy.drain()
        await asyncio.sleep(0.3)
        # Plan without target: refused, nothing sent.
        send("charge_mode", "plan")
        # The target and departure, while not in plan mode: only the draft (retained view).
        send("plan_energy", 20)
        departure = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=10)
        send("plan_departure", departure.isoformat())
        for _ in range(5):
            view = json.loads(await asyncio.wait_for(views.get(), TIMEOUT))
            if view["plan_departure"] is not None:
                break
        assert view == {"plan_energy_wh": 20000.0, "plan_departure": departure.isoformat()}
        assert state(comps["c1_plan_energy"], json.dumps(view).encode()) == "20.0"
        assert arrived.empty()
        # Now plan mode goes out whole.
        send("charge_mode", "plan")
        msg = await asyncio.wait_for(arrived.get(), TIMEOUT)
        assert msg.payload == ChargeModeSetting(
            mode=ChargeMode.PLAN, priority=3, plan_energy_wh=20000.0, plan_departure=departure)
        # In plan mode, a new target is sent at once.
        energy.publish(ch.ENERGY_MODE, ChargeModeState.model_validate(
            msg.payload.model_dump()), connector=1)
        await energy.drain()
        await asyncio.sleep(0.3)
        send("plan_energy", 12.5)
        msg = await asyncio.wait_for(arrived.get(), TIMEOUT)
        assert msg.payload is not None
        assert (msg.payload.mode, msg.payload.plan_energy_wh) == (ChargeMode.PLAN, 12500.0)
    assert energy.invalid_count == 0
    assert bus.invalid_count == 1  # the plan without a target


async def test_tariff_cost_through_the_real_energy_manager_and_gateway(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path) -> None:
    """The session cost HA shows is the one the energy manager (a process, fixed price 0.50)
    counts for a session through the real gateway: running, then final, last_reset at the
    session's start, every state as HA would accept it."""
    site = f"S{station}"
    await services.start_charge_point(mosquitto, station, tmp_path / "data",
                                      gateway_env={"VOLTBUS_MAX_CURRENT_A": "16"})
    operator, watch = await start_energy(services, mosquitto, station, site, {
        "VOLTBUS_DATA_DIR": str(tmp_path / "energy"), "VOLTBUS_ENERGY_FUSE_A": "32",
        "VOLTBUS_ENERGY_PRICE_PER_KWH": "0.50"})
    watch.follow(operator, ch.OCPP_STATUS, "status", connector=1)
    watch.follow(operator, ch.TRANSACTION, "tx", connector=1)
    bus, pub = publisher(mosquitto, station, connectors=[1], energy_site=site, currency="CHF")
    ha = home_assistant(mosquitto, station)
    seen = Configs(ha, pub)
    retained = remembered(ha, f"{mosquitto.root}/#")
    async with running(bus, ha, operator):
        view = HomeAssistantView(await seen.all(1), retained)
        cost = view.components["c1_tariff_cost"]
        assert cost["unit_of_measurement"] == "CHF"
        try:
            await start_session(operator, watch)
            await watch.until(lambda s: s.get("tx") is not None and s["tx"].energy_wh > 0,
                              "energy charged")
            await eventually(lambda: float(view.state("c1_tariff_cost") or 0) > 0, 15,
                             "a running cost")
            tx = watch.latest["tx"]
            reset = _JINJA.from_string(cost["last_reset_value_template"]).render(
                value_json=json.loads(retained[cost["state_topic"]]))
            assert datetime.fromisoformat(reset) == tx.started_at
            operator.publish(ch.COMMAND, GatewayCommand(command=CommandName.STOP), connector=1)
            await eventually(lambda: json.loads(retained[cost["state_topic"]])["final"], 15,
                             "the final cost")
        except AssertionError:
            raise AssertionError(services.logs()) from None
        final = SessionCost.model_validate_json(retained[cost["state_topic"]])
        assert float(view.state("c1_tariff_cost") or "nan") == round(final.cost, 4)
        # SessionCost carries cost to 6 decimals and energy_wh to 3 (manager._publish_cost),
        # both rounded from the same unrounded count: they agree within half a unit of each
        # (0.0168465 published as 0.016846 or 0.016847 failed a 1e-6 relative tolerance)
        rounding = 0.5e-6 + 0.5e-3 / 1000 * 0.50 + 1e-9
        assert final.cost == pytest.approx(final.energy_wh / 1000 * 0.50, rel=0, abs=rounding)
        # HA learns nothing of the energy manager's state from anything else: available.
        energy = cost["availability"][0]["topic"]
        assert retained[energy] == b"online"
        assert view.check_all() == []


def test_phases_sensor_and_phase_switching_render_as_ha_accepts() -> None:
    """Issue 12: the phase count from hw/{n}/phases (unknown without a phase switch, the
    switch's state as attributes) and the energy manager's switch in progress. No select for
    the phases: the energy manager picks them itself and no phase command of HA's exists."""
    plain = all_components()
    assert "c1_phases" in plain
    assert "c1_phase_switching" not in plain
    comps = all_components(station(energy_site="home"))
    sensor = comps["c1_phases"]
    assert ch.PHASES.match(ROOT, sensor["state_topic"]) == {"station": "CP1", "connector": "1"}
    assert [a["topic"].split("/")[-2] for a in sensor["availability"]] == ["hardware"]
    assert state(sensor, example(ch.PHASES)) == "1"
    assert state(sensor, example(ch.PHASES, phases=3)) == "3"
    assert state(sensor, example(ch.PHASES, phases=None, switchable=False,
                                 request_id=None)) == "None"
    refused = example(ch.PHASES, reason="relay closed and current offered")
    assert json.loads(render(sensor["json_attributes_template"], refused)) == {
        "switchable": True, "reason": "relay closed and current offered"}
    switching = comps["c1_phase_switching"]
    assert switching["platform"] == "binary_sensor"
    assert ch.ENERGY_MODE.match(ROOT, switching["state_topic"]) is not None
    assert state(switching, example(ch.ENERGY_MODE, phase_switching=True)) == "ON"
    assert state(switching, example(ch.ENERGY_MODE)) == "OFF"
    assert not any(c["platform"] == "select" and "phase" in k for k, c in comps.items())
