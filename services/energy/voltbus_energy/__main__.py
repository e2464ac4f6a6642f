"""`python -m voltbus_energy`: wires settings, the grid-meter source, the bus and the manager."""

from __future__ import annotations

import asyncio
import sys

from voltbus_common.bus import Bus
from voltbus_common.runtime import run
from voltbus_common.settings import load_settings
from voltbus_energy.fuse import Site
from voltbus_energy.manager import Config, ConnectorView, EnergyManager
from voltbus_energy.modes import PhaseTimers, PvTimers
from voltbus_energy.settings import EnergySettings
from voltbus_energy.sources.base import GridSource, Poller
from voltbus_energy.sources.battery import BatterySource, MqttJsonBattery, SunSpecBattery
from voltbus_energy.sources.modbus_grid import GridRegisterMap, ModbusGridMeter
from voltbus_energy.sources.mqtt_json import MqttJsonGrid, MqttJsonPower
from voltbus_energy.sources.simulated import SimGrid
from voltbus_energy.sources.sunspec import SunSpecDevice, SunSpecGridMeter, SunSpecInverter
from voltbus_energy.tariff.feed import FeedTariff, PriceFeed
from voltbus_energy.tariff.prices import FixedTariff, Tariff
from voltbus_energy.tariff.tou import TouTariff, parse_windows, parse_zone


def build_grid(settings: EnergySettings) -> GridSource:
    """The configured grid meter."""
    s = settings
    if s.energy_grid == "mqtt":
        return MqttJsonGrid(s.energy_grid_topic, power_path=s.energy_grid_power_path,
                            current_paths=s.energy_grid_current_paths.split(","))
    if s.energy_grid == "modbus":
        meter = ModbusGridMeter(s.energy_grid_serial_port, s.energy_grid_modbus_address,
                                GridRegisterMap.load(s.energy_grid_model),
                                baudrate=s.energy_grid_baudrate, parity=s.energy_grid_parity)
        return Poller(meter, period_s=s.energy_grid_poll_s)
    if s.energy_grid == "sunspec":
        if not s.energy_grid_host:
            raise ValueError("VOLTBUS_ENERGY_GRID_HOST is needed for the SunSpec grid meter")
        device = SunSpecDevice(s.energy_grid_host, s.energy_grid_tcp_port,
                               unit=s.energy_grid_modbus_address)
        return Poller(SunSpecGridMeter(device), period_s=s.energy_grid_poll_s)
    stations = ["+"] if settings.energy_all_stations else settings.stations
    return SimGrid(stations, house_a=settings.energy_sim_house_a)


def build_battery(settings: EnergySettings) -> BatterySource | None:
    """The configured home battery, or None."""
    s = settings
    if s.energy_battery == "mqtt":
        return MqttJsonBattery(s.energy_battery_topic, power_path=s.energy_battery_power_path,
                               soc_path=s.energy_battery_soc_path, sign=s.energy_battery_sign,
                               timeout_s=s.energy_battery_timeout_s)
    if s.energy_battery == "sunspec":
        if not s.energy_battery_host:
            raise ValueError("VOLTBUS_ENERGY_BATTERY_HOST is needed for the SunSpec battery")
        return SunSpecBattery(SunSpecDevice(s.energy_battery_host, s.energy_battery_tcp_port,
                                            unit=s.energy_battery_unit),
                              sign=s.energy_battery_sign)
    return None


def build_tariff(settings: EnergySettings) -> tuple[Tariff, list[PriceFeed]]:
    """The configured tariff and the feeds to keep refreshed (their caches read)."""
    s = settings
    base: Tariff = FixedTariff(s.energy_price_per_kwh)
    if s.energy_tariff == "tou":
        base = TouTariff(parse_windows(s.energy_tou_windows),
                         base_price_per_kwh=s.energy_price_per_kwh,
                         zone=parse_zone(s.energy_timezone))
    feeds: list[PriceFeed] = []
    prices = co2 = None
    cache_dir = s.data_dir / "energy"
    if s.energy_tariff == "feed":
        if not s.energy_tariff_source:
            raise ValueError("VOLTBUS_ENERGY_TARIFF_SOURCE (a URL or file) is needed for a feed")
        prices = PriceFeed(s.energy_tariff_source, s.energy_tariff_format,
                           cache=cache_dir / "prices.json", refresh_s=s.energy_tariff_refresh_s,
                           factor=s.energy_tariff_factor,
                           offset_per_kwh=s.energy_tariff_offset_per_kwh,
                           token=s.tariff_token())
        feeds.append(prices)
    if s.energy_co2_source:
        co2 = PriceFeed(s.energy_co2_source, s.energy_co2_format, cache=cache_dir / "co2.json",
                        refresh_s=s.energy_tariff_refresh_s, what="CO2 feed")
        feeds.append(co2)
    for feed in feeds:
        feed.load_cache()
    if not feeds:
        return base, feeds
    return FeedTariff(prices, co2=co2, fallback=base), feeds


def build_manager(settings: EnergySettings, bus: Bus, tariff: Tariff | None = None,
                  grid: GridSource | None = None,
                  inverter: SunSpecInverter | None = None,
                  battery: BatterySource | None = None) -> EnergyManager:
    """The manager for these settings, on this bus."""
    s = settings
    config = Config(
        site=Site(fuse_a=s.energy_fuse_a, max_import_w=s.energy_max_import_w,
                  margin_a=s.energy_margin_a),
        failsafe_a=s.energy_failsafe_a, meter_timeout_s=s.energy_meter_timeout_s,
        period_s=s.energy_period_s, resend_s=s.energy_resend_s,
        cut_confirm_s=(s.energy_cut_confirm_s if s.energy_cut_confirm_s is not None
                       else 5.0 if s.energy_all_stations else 0.0),
        unreachable_reserve_a=s.energy_limit_failsafe_a,
        timers=PvTimers(s.energy_pv_start_delay_s, s.energy_pv_stop_delay_s,
                        s.energy_pv_min_on_s, s.energy_pv_min_off_s),
        phase_switching=s.energy_phase_switching,
        phase_timers=PhaseTimers(s.energy_phase_up_delay_s, s.energy_phase_down_delay_s,
                                 s.energy_phase_min_interval_s, s.energy_phase_pause_s,
                                 s.energy_phase_stop_timeout_s,
                                 s.energy_phase_confirm_timeout_s))
    phases = (0, 1, 2) if s.energy_connector_phases == 3 else (0,)
    connectors = [ConnectorView(station, n, phases, s.energy_connector_max_a)
                  for station in s.stations for n in range(1, s.energy_connectors + 1)]

    def adopt(station: str, connector: int) -> ConnectorView | None:
        """A connector on the bus that is not configured: managed like the configured ones."""
        if connector > 32 or not (s.energy_all_stations or station in s.stations):
            return None
        return ConnectorView(station, connector, phases, s.energy_connector_max_a)

    pv: MqttJsonPower | SunSpecInverter | None = inverter
    if s.energy_pv_topic:
        pv = MqttJsonPower(s.energy_pv_topic, path=s.energy_pv_power_path)
        pv.attach(bus)
    return EnergyManager(bus, config, connectors, grid or build_grid(s), tariff=tariff,
                         pv_power=(lambda: pv.power_w) if pv is not None else (lambda: None),
                         adopt=adopt, all_stations=s.energy_all_stations,
                         battery=battery if battery is not None else build_battery(s),
                         battery_first=s.energy_battery_first,
                         battery_first_below_soc=s.energy_battery_first_below_soc)


async def main(settings: EnergySettings) -> None:
    """Run the energy manager until cancelled."""
    bus = Bus(settings, station=settings.energy_site, service="energy")
    tariff, feeds = build_tariff(settings)
    grid = build_grid(settings)
    inverter = None
    if settings.energy_pv_sunspec_host:
        inverter = SunSpecInverter(SunSpecDevice(settings.energy_pv_sunspec_host,
                                                 settings.energy_pv_sunspec_port,
                                                 unit=settings.energy_pv_sunspec_unit))
    battery = build_battery(settings)
    manager = build_manager(settings, bus, tariff, grid, inverter, battery)
    async with bus, asyncio.TaskGroup() as group:  # the bus stops last: the final limits go out
        group.create_task(manager.run())
        if isinstance(grid, Poller):
            group.create_task(grid.poll_forever())
        if inverter is not None:
            group.create_task(inverter.poll_forever(settings.energy_grid_poll_s))
        if isinstance(battery, SunSpecBattery):
            group.create_task(battery.poll_forever(settings.energy_grid_poll_s))
        for feed in feeds:
            group.create_task(feed.run())


def cli() -> int:
    """Entry point: load settings (exit 2 with a readable message when invalid), then run."""
    settings = load_settings(EnergySettings)
    try:
        build_grid(settings)
        build_battery(settings)
        build_tariff(settings)
    except ValueError as exc:
        print(f"voltbus: invalid configuration (EnergySettings): {exc}", file=sys.stderr)
        return 2
    return run(lambda: main(settings), service="energy", log_level=settings.log_level)


if __name__ == "__main__":
    raise SystemExit(cli())
