"""`python -m voltbus_common.homeassistant`: announce every station to Home Assistant and keep
announcing (after HA restarts) until stopped. For stacks where no service runs the publisher."""

from __future__ import annotations

import asyncio
from importlib.metadata import PackageNotFoundError, version

from voltbus_common.bus import Bus
from voltbus_common.homeassistant.publisher import DiscoveryPublisher
from voltbus_common.homeassistant.settings import HaDiscoverySettings
from voltbus_common.runtime import run
from voltbus_common.settings import load_settings


def sw_version() -> str:
    """The installed voltbus version."""
    try:
        return version("voltbus-common")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def publishers(settings: HaDiscoverySettings) -> list[tuple[Bus, DiscoveryPublisher]]:
    """One Bus and attached publisher per station."""
    out = []
    for station in settings.stations:
        bus = Bus(settings, station=station, service=None)
        pub = DiscoveryPublisher(
            bus, connectors=range(1, settings.connectors + 1),
            max_current_a=settings.max_current_a, min_current_a=settings.ha_min_current_a,
            sw_version=sw_version(), configuration_url=settings.public_url,
            prefix=settings.ha_prefix, enabled=settings.ha_discovery,
            remote_id_tag=settings.ha_remote_id_tag, phases=1 if settings.phases == 1 else 3)
        pub.attach()
        out.append((bus, pub))
    return out


async def main(settings: HaDiscoverySettings) -> None:
    """Run every station's bus until cancelled."""
    async with asyncio.TaskGroup() as group:
        for bus, _ in publishers(settings):
            group.create_task(bus.run())


if __name__ == "__main__":
    cfg = load_settings(HaDiscoverySettings)
    run(lambda: main(cfg), service="ha-discovery", log_level=cfg.log_level)
