"""Home Assistant's side of a whole session against the running stack.

The real gateway, simulated hardware and development central system run as processes on the
real broker. A client logged in as the `homeassistant` MQTT user reads the discovery config from
the broker, presses the buttons, flips the switch and sets the number exactly as HA would, and
renders each entity's template from the state topics the services actually publish.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2

from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup
from tests.homeassistant import ha_schema
from tests.homeassistant.test_publisher import Configs, home_assistant, publisher, running
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import CommandName, CommandStatus
from voltbus_common.models import CommandResult, SimPlug

_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined)


async def eventually(check: Callable[[], Awaitable[bool] | bool], within_s: float,
                     what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        result = check()
        if await result if asyncio.iscoroutine(result) else result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def remembered(bus: Bus, *topic_filters: str) -> dict[str, bytes]:
    """The latest payload per topic under the filters, as HA holds state (register before
    the bus runs)."""
    latest: dict[str, bytes] = {}

    async def remember(topic: str, payload: bytes, retain: bool) -> None:
        latest[topic] = payload

    for topic_filter in topic_filters:
        bus.on_raw(topic_filter, remember)
    return latest


class HomeAssistantView:
    """What HA would show: each entity's template applied to the last state payload, and
    each such state checked as HA checks it (in range, numeric, an option, a timestamp)."""

    def __init__(self, configs: dict[str, dict[str, Any]], retained: dict[str, bytes]) -> None:
        self.components = {k: c for config in configs.values()
                           for k, c in config["components"].items()}
        self.retained = retained
        self.errors: list[str] = []

    def state(self, key: str) -> str | None:
        comp = self.components[key]
        raw = self.retained.get(comp["state_topic"])
        if raw is None:
            return None
        variables: dict[str, Any] = {"value": raw.decode()}
        if raw:
            variables["value_json"] = json.loads(raw)
        rendered = _JINJA.from_string(comp["value_template"]).render(**variables).strip()
        self.errors += [f"{key}: {e}" for e in ha_schema.check_state(comp, rendered)]
        if "last_reset_value_template" in comp:
            reset = _JINJA.from_string(comp["last_reset_value_template"]).render(**variables)
            self.errors += [f"{key}: {e}" for e in ha_schema.check_last_reset(reset.strip())]
        return rendered

    def state_attributes(self, key: str) -> str | None:
        """The entity's attributes as HA renders them (json_attributes_template)."""
        comp = self.components[key]
        raw = self.retained.get(comp["json_attributes_topic"])
        if not raw:
            return None
        rendered = _JINJA.from_string(comp["json_attributes_template"]).render(
            value=raw.decode(), value_json=json.loads(raw)).strip()
        self.errors += [f"{key}: {e}" for e in ha_schema.check_attributes(rendered)]
        return rendered

    def check_all(self) -> list[str]:
        """Every entity with a state now, as HA would render it: the errors HA would log."""
        for key, comp in self.components.items():
            if "state_topic" in comp:
                self.state(key)
        return self.errors


async def test_ha_drives_a_session_through_the_real_gateway(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path) -> None:
    await services.start_charge_point(
        mosquitto, station, tmp_path / "data", gateway_env={"VOLTBUS_MAX_CURRENT_A": "16"})

    api_bus, pub = publisher(mosquitto, station, connectors=[1], max_current_a=16.0)
    ha = home_assistant(mosquitto, station)
    seen = Configs(ha, pub)
    retained = remembered(ha, f"{mosquitto.root}/{station}/#",
                          f"homeassistant/voltbus/{pub.station.object_id}/#")  # + session view
    results: asyncio.Queue[CommandResult] = asyncio.Queue()

    async def on_result(msg: Received[CommandResult]) -> None:
        assert msg.payload is not None
        if msg.payload.request_id == "homeassistant":
            await results.put(msg.payload)

    ha.on(ch.COMMAND_RESULT, on_result)
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)

    async with running(api_bus, ha, operator):
        view = HomeAssistantView(await seen.all(1), retained)
        comps = view.components

        async def press(key: str, payload: str | None = None) -> CommandResult:
            comp = comps[key]
            body = payload if payload is not None else comp["payload_press"]
            ha.publish_raw(comp["command_topic"], body.encode(), qos=1)
            return await asyncio.wait_for(results.get(), 15)

        await eventually(lambda: view.state("c1_status") == "Available", 30,
                         "Available " + services.logs())
        await eventually(lambda: view.state("ocpp_connected") == "ON", 10, "OCPP connected")
        await eventually(lambda: view.state("c1_plugged_in") == "OFF", 10, "not plugged in")
        await eventually(lambda: view.state("c1_energy") is not None, 10, "a meter reading")
        assert float(view.state("c1_energy") or "nan") >= 0
        assert view.state("c1_session_energy") == "0.0"  # no session yet: 0, not unknown
        assert view.check_all() == []

        # Nothing to stop: the gateway answers, and says no.
        answer = await press("c1_stop")
        assert (answer.command, answer.status) == (CommandName.STOP, CommandStatus.REJECTED)

        operator.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
        await eventually(lambda: view.state("c1_plugged_in") == "ON", 15, "plugged in")
        answer = await press("c1_start")
        assert (answer.command, answer.status) == (CommandName.START, CommandStatus.ACCEPTED)
        await eventually(lambda: view.state("c1_status") == "Charging", 15, "Charging")
        await eventually(lambda: float(view.state("c1_power") or 0) > 0, 15, "power")
        await eventually(lambda: float(view.state("c1_session_energy") or 0) > 0, 15,
                         "session energy")

        # The number, as HA renders its command_template for 10 A.
        number = comps["c1_current_limit"]
        limit = _JINJA.from_string(number["command_template"]).render(value=10)
        answer = await press("c1_current_limit", limit)
        assert answer.status is CommandStatus.ACCEPTED, answer
        await eventually(lambda: view.state("c1_current_limit") == "10.0", 10, "limit 10 A")

        switch = comps["c1_charging_enabled"]
        answer = await press("c1_charging_enabled", switch["payload_off"])
        assert (answer.command, answer.status) == (CommandName.DISABLE_CHARGING,
                                                   CommandStatus.ACCEPTED)
        await eventually(lambda: view.state("c1_charging_enabled") == "OFF", 10, "switch off")
        # Disabled: the limit in force is 0, the number keeps the commanded 10 A.
        assert float(view.state("c1_current_limit") or "nan") == 10.0
        assert view.check_all() == []
        answer = await press("c1_charging_enabled", switch["payload_on"])
        assert answer.status is CommandStatus.ACCEPTED
        await eventually(lambda: view.state("c1_charging_enabled") == "ON", 10, "switch on")

        answer = await press("c1_stop")
        assert (answer.command, answer.status) == (CommandName.STOP, CommandStatus.ACCEPTED)
        # The session ends: session energy shows 0, the last session has its own sensors.
        await eventually(lambda: view.state("c1_last_session_stop_reason") == "Local", 15,
                         "last session")
        assert view.state("c1_session_energy") == "0.0"
        assert float(view.state("c1_last_session_energy") or 0) > 0
        assert view.state("c1_last_tag") == "HA-REMOTE"
        assert view.check_all() == []
    gateway_log = next(p for p in services.started if p.name == "gateway").log()
    assert "dropped message" not in gateway_log  # no HA payload was invalid
