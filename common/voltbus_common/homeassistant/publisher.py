"""Publishes a station's discovery config over its Bus and keeps HA in step with it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import replace

from voltbus_common.bus import Bus
from voltbus_common.homeassistant.discovery import (
    DEFAULT_PREFIX,
    DEFAULT_REMOTE_ID_TAG,
    StationDiscovery,
    configured_connectors,
    discovery_topic,
)

log = logging.getLogger(__name__)


class DiscoveryPublisher:
    """Announces one station to Home Assistant over its Bus; re-announces when HA comes online.

    Call `attach()` before `bus.run()`. On (re)connect the broker hands us the config we
    published last (retained): entities of connectors no longer configured are removed, and with
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

    def attach(self) -> None:
        """Subscribe to HA's status and our own retained config; queue the first announcement."""
        self.bus.on_raw(f"{self.prefix}/status", self._on_ha_status)
        self.bus.on_raw(self.topic, self._on_previous_config)
        if self.enabled:
            self.publish()

    def publish(self) -> None:
        """Queue the device config (retained)."""
        payload = json.dumps(self.station.config(), separators=(",", ":")).encode()
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
        stale = configured_connectors(previous if isinstance(previous, dict) else {}) - set(
            self.station.connectors)
        if stale:
            log.info("removing Home Assistant entities of connectors %s (no longer configured)",
                     sorted(stale))
            self.station = _with_removed(self.station, stale)
            self.publish()


def _with_removed(station: StationDiscovery, stale: set[int]) -> StationDiscovery:
    """The same station with these connectors' entities marked for removal."""
    return replace(station, removed_connectors=station.removed_connectors | frozenset(stale))
