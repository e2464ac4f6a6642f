"""Home Assistant MQTT discovery: one HA device per station, every entity from the contract.

`discovery` builds the configs (pure), `publisher` announces them over a station's Bus, and
`python -m voltbus_common.homeassistant` runs the publisher on its own. docs/homeassistant.md
explains the entities and why device-based discovery.
"""

from voltbus_common.homeassistant.discovery import (
    DEFAULT_PREFIX,
    DEFAULT_REMOTE_ID_TAG,
    REQUEST_ID,
    StationDiscovery,
    command_payload,
    configured_connectors,
    discovery_topic,
    object_id,
)
from voltbus_common.homeassistant.publisher import DiscoveryPublisher
from voltbus_common.homeassistant.settings import HaDiscoverySettings

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_REMOTE_ID_TAG",
    "REQUEST_ID",
    "DiscoveryPublisher",
    "HaDiscoverySettings",
    "StationDiscovery",
    "command_payload",
    "configured_connectors",
    "discovery_topic",
    "object_id",
]
