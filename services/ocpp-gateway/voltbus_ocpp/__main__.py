"""`python -m voltbus_ocpp`: one OCPP 1.6J charge point per station in VOLTBUS_STATIONS."""

from __future__ import annotations

import asyncio

from voltbus_common.bus import Bus
from voltbus_common.runtime import run
from voltbus_common.settings import load_settings
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.station import Station


async def main(settings: GatewaySettings) -> None:
    """Every station with its own bus connection and its own OCPP connection."""
    stations = [Station(settings, sid, Bus(settings, station=sid, service="gateway"))
                for sid in settings.stations]
    async with asyncio.TaskGroup() as group:
        for station in stations:
            group.create_task(station.run())


if __name__ == "__main__":
    cfg = load_settings(GatewaySettings)
    run(lambda: main(cfg), service="gateway", log_level=cfg.log_level)
