"""`python -m voltbus_energy`: wires settings, the grid-meter source, the bus and the manager."""

from __future__ import annotations

import asyncio

from voltbus_common.bus import Bus
from voltbus_common.runtime import run
from voltbus_common.settings import load_settings
from voltbus_energy.fuse import Site
from voltbus_energy.manager import Config, ConnectorView, EnergyManager
from voltbus_energy.modes import PvTimers
from voltbus_energy.settings import EnergySettings
from voltbus_energy.sources.base import GridSource
from voltbus_energy.sources.mqtt_json import MqttJsonGrid, MqttJsonPower
from voltbus_energy.sources.simulated import SimGrid


def build_grid(settings: EnergySettings) -> GridSource:
    """The configured grid meter."""
    if settings.energy_grid == "mqtt":
        return MqttJsonGrid(settings.energy_grid_topic,
                            power_path=settings.energy_grid_power_path,
                            current_paths=settings.energy_grid_current_paths.split(","))
    return SimGrid(settings.stations, house_a=settings.energy_sim_house_a)


def build_manager(settings: EnergySettings, bus: Bus) -> EnergyManager:
    """The manager for these settings, on this bus."""
    s = settings
    config = Config(
        site=Site(fuse_a=s.energy_fuse_a, max_import_w=s.energy_max_import_w,
                  margin_a=s.energy_margin_a),
        failsafe_a=s.energy_failsafe_a, meter_timeout_s=s.energy_meter_timeout_s,
        period_s=s.energy_period_s,
        timers=PvTimers(s.energy_pv_start_delay_s, s.energy_pv_stop_delay_s,
                        s.energy_pv_min_on_s, s.energy_pv_min_off_s))
    phases = (0, 1, 2) if s.energy_connector_phases == 3 else (0,)
    connectors = [ConnectorView(station, n, phases, s.energy_connector_max_a)
                  for station in s.stations for n in range(1, s.energy_connectors + 1)]
    pv = MqttJsonPower(s.energy_pv_topic, path=s.energy_pv_power_path) if s.energy_pv_topic \
        else None
    if pv is not None:
        pv.attach(bus)
    return EnergyManager(bus, config, connectors, build_grid(s),
                         pv_power=(lambda: pv.power_w) if pv is not None else (lambda: None))


async def main(settings: EnergySettings) -> None:
    """Run the energy manager until cancelled."""
    bus = Bus(settings, station=settings.energy_site, service="energy")
    manager = build_manager(settings, bus)
    async with asyncio.TaskGroup() as group:
        group.create_task(bus.run())
        group.create_task(manager.run())


def cli() -> None:
    """Entry point: load settings (exit 2 with a readable message when invalid), then run."""
    settings = load_settings(EnergySettings)
    try:
        build_grid(settings)
    except ValueError as exc:
        raise SystemExit(f"voltbus: invalid configuration (EnergySettings): {exc}") from None
    run(lambda: main(settings), service="energy", log_level=settings.log_level)


if __name__ == "__main__":
    cli()
