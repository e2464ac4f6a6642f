"""The discovery settings (env prefix VOLTBUS_), shared by the runner and any service that
announces the stations: VOLTBUS_HA_DISCOVERY, _HA_PREFIX, _PUBLIC_URL and the station shape."""

from __future__ import annotations

from pydantic import Field

from voltbus_common.homeassistant.discovery import DEFAULT_PREFIX, DEFAULT_REMOTE_ID_TAG
from voltbus_common.settings import BusSettings


class HaDiscoverySettings(BusSettings):
    """What the publisher needs besides the bus: on/off, prefix, web page, station shape."""

    ha_discovery: bool = True
    ha_prefix: str = Field(default=DEFAULT_PREFIX, pattern=r"^[^+#]+$")
    ha_remote_id_tag: str = DEFAULT_REMOTE_ID_TAG
    ha_min_current_a: float = Field(default=6.0, ge=0, le=100)
    public_url: str | None = Field(default=None, description="the web page, linked from HA")
    connectors: int = Field(default=1, ge=1, le=1000, description="connectors per station")
    max_current_a: float = Field(default=16.0, gt=0, le=100)
    phases: int = Field(default=3, ge=1, le=3)
