"""`python -m voltbus_ocpp`: one OCPP charge point per station in VOLTBUS_STATIONS, speaking 1.6J or
2.0.1 (VOLTBUS_OCPP_VERSION).

A hard Reset from the central system ends the process with HARD_RESET_EXIT_CODE (75) when it
serves that station alone, so its supervisor starts it again; a process serving several stations
rebuilds only the reset station from disk, so the others keep charging.
"""

from __future__ import annotations

import asyncio
import logging

from voltbus_common.bus import Bus
from voltbus_common.runtime import run
from voltbus_common.settings import load_settings
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.station import HARD_RESET_EXIT_CODE, Station

log = logging.getLogger("voltbus_ocpp")


async def serve(settings: GatewaySettings, station_id: str, *, alone: bool) -> bool:
    """Run one station; True when a hard Reset wants the whole process restarted."""
    while True:
        station = Station(settings, station_id, Bus(settings, station=station_id,
                                                    service="gateway"))
        try:
            await station.run()
        finally:
            station.store.close()
        if alone:
            return True
        log.warning("%s: hard Reset: rebuilding the station from disk (other stations in this "
                    "process keep running)", station_id)


async def main(settings: GatewaySettings) -> int:
    """Every station with its own bus connection and its own OCPP connection; the exit code."""
    alone = len(settings.stations) == 1
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(serve(settings, sid, alone=alone))
                 for sid in settings.stations]
    return HARD_RESET_EXIT_CODE if any(t.result() for t in tasks) else 0


def cli() -> int:
    """Entry point: settings (exit 2 when invalid), then every station; the exit code."""
    settings = load_settings(GatewaySettings)
    return run(lambda: main(settings), service="gateway", log_level=settings.log_level)


if __name__ == "__main__":
    raise SystemExit(cli())
