"""`python -m voltbus_common.homeassistant`: announce every station to Home Assistant and keep
announcing (after HA restarts) until stopped. For stacks where no service runs the publisher."""

from __future__ import annotations

import asyncio
import contextlib

from voltbus_common.bus import Bus
from voltbus_common.homeassistant.publisher import DiscoveryPublisher, publisher_for
from voltbus_common.homeassistant.settings import HaDiscoverySettings
from voltbus_common.runtime import run
from voltbus_common.settings import load_settings


def publishers(settings: HaDiscoverySettings) -> list[tuple[Bus, DiscoveryPublisher]]:
    """One Bus and attached publisher per station."""
    out = []
    for station in settings.stations:
        bus = Bus(settings, station=station, service=None)
        out.append((bus, publisher_for(bus, settings)))
    return out


async def main(settings: HaDiscoverySettings) -> None:
    """Run every station's bus until cancelled."""
    async with contextlib.AsyncExitStack() as running:
        for bus, _ in publishers(settings):
            await running.enter_async_context(bus)
        await asyncio.Event().wait()


def cli() -> int:
    """Entry point: settings (exit 2 when invalid), then announce until stopped."""
    settings = load_settings(HaDiscoverySettings)
    return run(lambda: main(settings), service="ha-discovery", log_level=settings.log_level)


if __name__ == "__main__":
    raise SystemExit(cli())
