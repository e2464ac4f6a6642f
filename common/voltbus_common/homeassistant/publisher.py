"""Publishes a station's discovery config over its Bus and keeps HA in step with it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from voltbus_common.bus import Bus
from voltbus_common.homeassistant.discovery import (
    DEFAULT_PREFIX,
    DEFAULT_REMOTE_ID_TAG,
    StationDiscovery,
    discovery_topic,
)
from voltbus_common.homeassistant.settings import HaDiscoverySettings

log = logging.getLogger(__name__)


class DiscoveryPublisher:
    """Announces one station to Home Assistant over its Bus; re-announces when HA comes online.

    Call `attach()` before `bus.run()`. On (re)connect the broker hands us the config we
    published last (retained): every entity in it that is no longer configured (a connector
    removed, phases 3 -> 1, an entity a newer version dropped) is removed, and with
    `enabled=False` the whole device is removed. Needs MQTT rights on `<prefix>/#` (the ACL gives
    them to the api and gateway users for the default prefix).
    """

    def __init__(self, bus: Bus, *, connectors: Iterable[int], max_current_a: float,
                 min_current_a: float = 6.0, sw_version: str, model: str = "voltbus",
                 configuration_url: str | None = None, prefix: str = DEFAULT_PREFIX,
                 enabled: bool = True, remote_id_tag: str = DEFAULT_REMOTE_ID_TAG,
                 phases: int = 3) -> None:
        self.bus = bus
        self.prefix = prefix.rstrip("/")
        self.enabled = enabled
        self.topic = discovery_topic(bus.station, root=bus.root, prefix=self.prefix)
        self.station = StationDiscovery(
            station=bus.station, connectors=tuple(connectors), max_current_a=max_current_a,
            min_current_a=min_current_a, sw_version=sw_version, model=model,
            configuration_url=configuration_url, root=bus.root, remote_id_tag=remote_id_tag,
            phases=phases)
        self.published = 0
        self._stubs: dict[str, str] = {}  # component id -> platform, for HA to remove

    def attach(self) -> None:
        """Subscribe to HA's status and our own retained config; queue the first announcement."""
        self.bus.on_raw(f"{self.prefix}/status", self._on_ha_status)
        self.bus.on_raw(self.topic, self._on_previous_config)
        if self.enabled:
            self.publish()

    def publish(self) -> None:
        """Queue the device config (retained)."""
        config = self.station.config()
        for key, platform in self._stubs.items():
            # HA removes a component of a device whose config holds only its platform.
            config["components"].setdefault(key, {"platform": platform})
        payload = json.dumps(config, separators=(",", ":")).encode()
        self.bus.publish_raw(self.topic, payload, qos=1, retain=True)
        self.published += 1

    def remove(self) -> None:
        """Remove the device and all its entities from HA (an empty retained config)."""
        self.bus.publish_raw(self.topic, b"", qos=1, retain=True)

    async def _on_ha_status(self, topic: str, payload: bytes, retain: bool) -> None:
        if self.enabled and payload.strip() == b"online":
            log.info("Home Assistant is online: re-sending discovery for %s", self.bus.station)
            self.publish()

    async def _on_previous_config(self, topic: str, payload: bytes, retain: bool) -> None:
        if not retain or not payload:
            return  # our own publish echoed back, or nothing announced
        if not self.enabled:
            log.info("Home Assistant discovery is off: removing device %s", self.topic)
            self.remove()
            return
        try:
            previous = json.loads(payload)
        except ValueError:
            log.warning("unreadable retained discovery config on %s: ignored", topic)
            return
        components = previous.get("components") if isinstance(previous, dict) else None
        if not isinstance(components, dict):
            components = {}
        current = self.station.components()
        stale = {key: comp.get("platform") for key, comp in components.items()
                 if isinstance(comp, dict) and len(comp) > 1 and key not in current
                 and isinstance(comp.get("platform"), str)}
        if stale:
            log.info("removing %d Home Assistant entities no longer configured: %s",
                     len(stale), ", ".join(sorted(stale)))
            self._stubs.update(stale)
            self.publish()


def sw_version() -> str:
    """The installed voltbus version, shown on the HA device."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("voltbus-common")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def publisher_for(bus: Bus, settings: HaDiscoverySettings) -> DiscoveryPublisher:
    """A publisher for bus's station, shaped by the discovery settings, attached to the bus."""
    publisher = DiscoveryPublisher(
        bus, connectors=range(1, settings.connectors + 1),
        max_current_a=settings.max_current_a, min_current_a=settings.ha_min_current_a,
        sw_version=sw_version(), configuration_url=settings.public_url,
        prefix=settings.ha_prefix, enabled=settings.ha_discovery,
        remote_id_tag=settings.ha_remote_id_tag, phases=1 if settings.phases == 1 else 3)
    publisher.attach()
    return publisher
