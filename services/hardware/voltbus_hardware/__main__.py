"""`python -m voltbus_hardware`: settings -> drivers -> one controller and bus per station."""

from __future__ import annotations

import sys

from voltbus_common.runtime import run
from voltbus_common.settings import ConfigError, load_settings
from voltbus_hardware.config import load_station_file
from voltbus_hardware.registry import build_station, simulated_station
from voltbus_hardware.service import serve
from voltbus_hardware.settings import HardwareSettings
from voltbus_hardware.station import StationHardware


def build_stations(settings: HardwareSettings) -> list[StationHardware]:
    """Simulated stations, or the station file's hardware."""
    if settings.station_file is None:
        return [simulated_station(s, settings.connectors, max_current_a=settings.sim_max_current_a)
                for s in settings.stations]
    if len(settings.stations) != 1:
        raise ConfigError("VOLTBUS_STATION_FILE describes one station: VOLTBUS_STATIONS must "
                          f"name exactly one, not {settings.stations}")
    cfg = load_station_file(settings.station_file)
    station_id = settings.stations[0]
    if cfg.id is not None and cfg.id != station_id:
        raise ConfigError(f"{settings.station_file}: id {cfg.id!r} is not VOLTBUS_STATIONS "
                          f"{station_id!r}")
    return [build_station(cfg, station_id)]


def cli() -> int:
    """Entry point: exit 2 with a readable message when the configuration cannot work."""
    settings = load_settings(HardwareSettings)
    try:
        stations = build_stations(settings)
    except ConfigError as exc:
        print(f"voltbus hardware: {exc}", file=sys.stderr)
        return 2
    return run(lambda: serve(settings, stations), service="hardware",
               log_level=settings.log_level)


if __name__ == "__main__":
    raise SystemExit(cli())
