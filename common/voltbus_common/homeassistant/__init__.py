"""Home Assistant MQTT discovery: a device per station and per connector, from the contract.

`discovery` builds the configs (pure), `publisher` announces them over a station's Bus,
`mirror` keeps the retained session view the session entities read, and
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
    connector_topic,
    discovery_topic,
    mirror_topic,
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
    "connector_topic",
    "discovery_topic",
    "mirror_topic",
    "object_id",
]
