"""Publishes a station's discovery configs over its Bus and keeps HA in step with them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import Any

from voltbus_common.bus import Bus
from voltbus_common.homeassistant.discovery import (
    DEFAULT_PREFIX,
    DEFAULT_REMOTE_ID_TAG,
    StationDiscovery,
    connector_filter,
    connector_of,
    connector_topic,
)
from voltbus_common.homeassistant.energy import EnergyBridge
from voltbus_common.homeassistant.mirror import SessionMirror
from voltbus_common.homeassistant.settings import HaDiscoverySettings

log = logging.getLogger(__name__)


class DiscoveryPublisher:
    """Announces one station and its connectors to Home Assistant; re-announces when HA starts.

    Call `attach()` before `bus.run()`. On (re)connect the broker hands us the configs we
    published last (retained): every entity in them that is no longer configured (phases
    3 -> 1, an entity a newer version moved or dropped) is removed, a connector no longer
    configured loses its device, and with `enabled=False` every device is removed. Needs MQTT
    rights on `<prefix>/#` (the ACL gives them to the api and gateway users).

    Connector configs go out `settle_s` after the station's config reached the broker: an
    entity that moved from the station device to its connector's (unique_id unchanged) must
    be removed from the first before HA sees it in the second, or HA ignores it as a duplicate.
    """

    def __init__(self, bus: Bus, *, connectors: Iterable[int], max_current_a: float,
                 min_current_a: float = 6.0, sw_version: str, model: str = "voltbus",
                 configuration_url: str | None = None, prefix: str = DEFAULT_PREFIX,
                 enabled: bool = True, remote_id_tag: str = DEFAULT_REMOTE_ID_TAG,
                 phases: int = 3, price_per_kwh: float | None = None, currency: str = "EUR",
                 energy_site: str | None = None, settle_s: float = 1.0) -> None:
        self.bus = bus
        self.prefix = prefix.rstrip("/")
        self.enabled = enabled
        self.settle_s = settle_s
        self.station = StationDiscovery(
            station=bus.station, connectors=tuple(connectors), max_current_a=max_current_a,
            min_current_a=min_current_a, sw_version=sw_version, model=model,
            configuration_url=configuration_url, root=bus.root, prefix=self.prefix,
            remote_id_tag=remote_id_tag, phases=phases, price_per_kwh=price_per_kwh,
            currency=currency, energy_site=energy_site)
        self.topic = self.station.topic
        self.mirror = SessionMirror(bus, self.station)
        self.energy = EnergyBridge(bus, self.station) if energy_site is not None else None
        self.published = 0
        self._stubs: dict[str, dict[str, str]] = {}  # topic -> component id -> platform
        self._connectors_due = False
        self._timer: asyncio.TimerHandle | None = None

    def topics(self) -> list[str]:
        """Every configured device's discovery topic, the station's first."""
        s = self.station
        return [self.topic] + [connector_topic(s.station, n, root=s.root, prefix=self.prefix)
                               for n in sorted(set(s.connectors))]

    def attach(self) -> None:
        """Subscribe to HA's status and our own retained configs; queue the first announcement."""
        self.bus.on_raw(f"{self.prefix}/status", self._on_ha_status)
        self.bus.on_raw(self.topic, self._on_station_config)
        self.bus.on_raw(connector_filter(self.bus.station, root=self.bus.root,
                                         prefix=self.prefix), self._on_connector_config)
        if self.enabled:
            self.mirror.attach()
            if self.energy is not None:
                self.energy.attach()
            self.publish()

    def publish(self) -> None:
        """Queue the station's config (retained); the connectors' follow once it is out."""
        self._send(self.topic, self.station.station_config())
        self.published += 1
        self._connectors_due = True

    def publish_connectors(self) -> None:
        """Queue every connector's config (retained)."""
        self._connectors_due = False
        for n in sorted(set(self.station.connectors)):
            topic = connector_topic(self.bus.station, n, root=self.bus.root, prefix=self.prefix)
            self._send(topic, self.station.connector_config(n))

    def remove(self) -> None:
        """Remove every device and entity of the station from HA (empty retained configs)."""
        for topic in self.topics():
            self.bus.publish_raw(topic, b"", qos=1, retain=True)
        self.mirror.clear()
        if self.energy is not None:
            self.energy.clear()

    def _send(self, topic: str, config: dict[str, Any]) -> None:
        for key, platform in self._stubs.get(topic, {}).items():
            # HA removes a component of a device whose config holds only its platform.
            config["components"].setdefault(key, {"platform": platform})
        payload = json.dumps(config, separators=(",", ":")).encode()
        self.bus.publish_raw(topic, payload, qos=1, retain=True)

    def _schedule_connectors(self) -> None:
        if not self._connectors_due or self._timer is not None:
            return

        def fire() -> None:
            self._timer = None
            if self._connectors_due:
                self.publish_connectors()

        self._timer = asyncio.get_running_loop().call_later(self.settle_s, fire)

    async def _on_ha_status(self, topic: str, payload: bytes, retain: bool) -> None:
        if self.enabled and payload.strip() == b"online":
            log.info("Home Assistant is online: re-sending discovery for %s", self.bus.station)
            self.publish()
            self.mirror.publish_all()
            if self.energy is not None:
                self.energy.publish_all()

    async def _on_station_config(self, topic: str, payload: bytes, retain: bool) -> None:
        if self.enabled:
            # Our own config (echoed), or the one we left last time: the connectors may follow.
            self._schedule_connectors()
        if retain and payload:
            self._previous(topic, payload, self.station.station_components())

    async def _on_connector_config(self, topic: str, payload: bytes, retain: bool) -> None:
        n = connector_of(topic)
        if not retain or not payload or n is None:
            return
        if n not in self.station.connectors:
            log.info("connector %d is no longer configured: removing its Home Assistant "
                     "device (%s)", n, topic)
            self.bus.publish_raw(topic, b"", qos=1, retain=True)
            return
        self._previous(topic, payload, self.station.connector_components(n))

    def _previous(self, topic: str, payload: bytes, current: dict[str, Any]) -> None:
        """Our retained config from before: remove what is no longer configured."""
        if not self.enabled:
            log.info("Home Assistant discovery is off: removing %s", topic)
            self.bus.publish_raw(topic, b"", qos=1, retain=True)
            if topic == self.topic:
                self.mirror.clear()
            return
        try:
            previous = json.loads(payload)
        except ValueError:
            log.warning("unreadable retained discovery config on %s: ignored", topic)
            return
        components = previous.get("components") if isinstance(previous, dict) else None
        if not isinstance(components, dict):
            components = {}
        stale = {key: comp["platform"] for key, comp in components.items()
                 if isinstance(comp, dict) and len(comp) > 1 and key not in current
                 and isinstance(comp.get("platform"), str)}
        if not stale:
            return
        log.info("removing %d Home Assistant entities no longer on %s: %s", len(stale), topic,
                 ", ".join(sorted(stale)))
        self._stubs.setdefault(topic, {}).update(stale)
        if topic == self.topic:
            self.publish()
        else:
            n = connector_of(topic)
            assert n is not None
            self._send(topic, self.station.connector_config(n))


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
        remote_id_tag=settings.ha_remote_id_tag, phases=1 if settings.phases == 1 else 3,
        price_per_kwh=settings.api_price_per_kwh, currency=settings.api_currency,
        energy_site=settings.energy_site)
    publisher.attach()
    return publisher
