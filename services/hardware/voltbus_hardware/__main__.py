"""`python -m voltbus_hardware`: settings -> drivers -> one controller and bus per station."""

from __future__ import annotations

from voltbus_common.runtime import run
from voltbus_common.settings import load_settings
from voltbus_hardware.service import serve
from voltbus_hardware.settings import HardwareSettings
from voltbus_hardware.station import StationHardware, simulated_station


def build_stations(settings: HardwareSettings) -> list[StationHardware]:
    """Simulated stations, or the station file's hardware."""
    return [simulated_station(s, settings.connectors, max_current_a=settings.sim_max_current_a)
            for s in settings.stations]


def main() -> None:
    """Entry point."""
    settings = load_settings(HardwareSettings)
    stations = build_stations(settings)
    run(lambda: serve(settings, stations), service="hardware", log_level=settings.log_level)


if __name__ == "__main__":
    main()
