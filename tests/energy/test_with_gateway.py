"""The energy manager as a process with the real gateway, simulated hardware and dev central
system: the fuse share reaches the EVSE, a short fuse pauses the car (SuspendedEVSE, 0 A), and a
silent grid meter brings the fail-safe limit, shown on the bus."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures.mosquitto import Broker
from tests.fixtures.services import ServiceGroup, wait_online
from voltbus_common import channels as ch
from voltbus_common.bus import Bus, Received
from voltbus_common.enums import CommandName, ConnectorStatus
from voltbus_common.models import (
    ChargingState,
    GatewayCommand,
    MeterReading,
    SimPlug,
    SiteState,
)


class Watch:
    """The latest value per channel the test follows."""

    def __init__(self) -> None:
        self.latest: dict[str, Any] = {}
        self.changed = asyncio.Event()

    def follow(self, bus: Bus, channel: ch.Channel[Any], name: str, **args: str | int) -> None:
        async def put(msg: Received[Any]) -> None:
            self.latest[name] = msg.payload
            self.changed.set()

        bus.on(channel, put, **args)

    async def until(self, check: Callable[[dict[str, Any]], bool], what: str,
                    within_s: float = 20.0) -> None:
        async def loop() -> None:
            while not check(self.latest):
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(loop(), within_s)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {self.latest}") from None


async def start_energy(services: ServiceGroup, mosquitto: Broker, station: str, site: str,
                       env: dict[str, str]) -> tuple[Bus, Watch]:
    """The energy manager as a process (online), and an operator's bus with a Watch on it."""
    services.start("energy", {**mosquitto.env("energy"), "VOLTBUS_STATIONS": station,
                              "VOLTBUS_ENERGY_SITE": site, **env})
    await wait_online(mosquitto, site, ("energy",))
    operator = Bus(mosquitto.settings("operator", stations=[station]), station=station,
                   service=None)
    return operator, Watch()


async def start_session(operator: Bus, watch: Watch) -> None:
    """Connector 1 of the simulated station: Available, plug in, remote start (the watch
    follows its `status`)."""
    await operator.wait_connected(5)
    await watch.until(lambda s: s.get("status") is not None
                      and s["status"].status is ConnectorStatus.AVAILABLE, "Available", 30)
    operator.publish(ch.SIM_PLUG, SimPlug(plugged=True), connector=1)
    await watch.until(lambda s: s["status"].status is ConnectorStatus.PREPARING, "Preparing")
    operator.publish(ch.COMMAND, GatewayCommand(command=CommandName.START,
                                                id_tag="04A1B2C3"), connector=1)


async def charge_point_on_a_grid_topic(services: ServiceGroup, mosquitto: Broker, station: str,
                                       tmp_path: Path, env: dict[str, str]
                                       ) -> tuple[str, Bus, Watch]:
    """The charge point (central system, simulated hardware, gateway at 16 A) and the energy
    manager reading the grid from an MQTT topic ({"P": W, "I": [A, A, A]}): that topic, the
    operator's bus and its Watch."""
    # Home Assistant feeds the grid meter here (the only non-voltbus tree a test user may write)
    grid_topic = f"homeassistant/sensor/{station}/grid/state"
    await services.start_charge_point(mosquitto, station, tmp_path / "data",
                                      gateway_env={"VOLTBUS_MAX_CURRENT_A": "16"})
    operator, watch = await start_energy(services, mosquitto, station, f"S{station}", {
        "VOLTBUS_ENERGY_GRID": "mqtt", "VOLTBUS_ENERGY_GRID_TOPIC": grid_topic,
        "VOLTBUS_ENERGY_GRID_POWER_PATH": "P",
        "VOLTBUS_ENERGY_GRID_CURRENT_PATHS": "I[0],I[1],I[2]", **env})
    return grid_topic, operator, watch


def limit(latest: dict[str, Any]) -> float | None:
    charging: ChargingState | None = latest.get("charging")
    return None if charging is None else charging.current_limit_a


async def test_fuse_share_pause_and_fail_safe_through_the_real_gateway(
        mosquitto: Broker, services: ServiceGroup, station: str, tmp_path: Path) -> None:
    grid_topic, operator, watch = await charge_point_on_a_grid_topic(
        services, mosquitto, station, tmp_path, {
            "VOLTBUS_ENERGY_FUSE_A": "16", "VOLTBUS_ENERGY_FAILSAFE_A": "8",
            "VOLTBUS_ENERGY_METER_TIMEOUT_S": "2"})
    watch.follow(operator, ch.CHARGING, "charging", connector=1)
    watch.follow(operator, ch.OCPP_STATUS, "status", connector=1)
    watch.follow(operator, ch.ENERGY_SITE, "site", station=f"S{station}")
    house = [5.0, 5.0, 5.0]
    meter_on = True

    async def grid_meter(msg: Received[MeterReading]) -> None:
        """A grid meter: the house plus what the car draws (as the hardware meter says)."""
        if msg.payload is None or not meter_on:
            return
        car = [*msg.payload.current_a, 0.0, 0.0][:3]
        amps = [house[p] + car[p] for p in range(3)]
        feeder.publish_raw(grid_topic, json.dumps({"P": sum(amps) * 230, "I": amps}).encode(),
                             qos=0)

    operator.on(ch.METER, grid_meter, connector=1)
    feeder = Bus(mosquitto.settings("homeassistant", stations=[station]), station=station,
                 service=None)
    task = asyncio.create_task(operator.run())
    feeder_task = asyncio.create_task(feeder.run())
    try:
        await start_session(operator, watch)
        # 16 A fuse - 5 A house = 11 A for the car (the hardware maximum is 16 A)
        await watch.until(lambda s: limit(s) == 11.0, "the fuse share 11 A")
        site_state: SiteState = watch.latest["site"]
        assert (site_state.fail_safe, site_state.fuse_limit_a) == (False, 16.0)

        house[:] = [12.0, 5.0, 5.0]  # 4 A left on L1: below 6 A, the car pauses
        await watch.until(lambda s: limit(s) == 0.0
                          and s["status"].status is ConnectorStatus.SUSPENDED_EVSE,
                          "a pause at 0 A (SuspendedEVSE)")

        house[:] = [3.0, 3.0, 3.0]
        await watch.until(lambda s: limit(s) == 13.0, "13 A again")

        meter_on = False  # the grid meter goes silent: fail-safe 8 A
        await watch.until(lambda s: limit(s) == 8.0 and s["site"].fail_safe,
                          "the fail-safe limit, shown on the bus")
        assert watch.latest["site"].grid_power_w is None
        assert watch.latest["status"].status is ConnectorStatus.CHARGING
    except AssertionError:
        raise AssertionError(services.logs()) from None
    finally:
        task.cancel()
        feeder_task.cancel()
        await asyncio.gather(task, feeder_task, return_exceptions=True)
