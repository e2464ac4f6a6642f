"""The discovery settings (env prefix VOLTBUS_), shared by the runner and any service that
announces the stations: VOLTBUS_HA_DISCOVERY, _HA_PREFIX, _PUBLIC_URL and the station shape."""

from __future__ import annotations

from urllib.parse import urlparse

from pydantic import Field, field_validator

from voltbus_common.homeassistant.discovery import DEFAULT_PREFIX, DEFAULT_REMOTE_ID_TAG
from voltbus_common.settings import BusSettings

DEFAULT_PUBLIC_URL = "http://voltbus.local:8080/"
"""The web page on a Pi set up as docs/install-pi.md says (host name `voltbus`, port 8080)."""


class HaDiscoverySettings(BusSettings):
    """What the publisher needs besides the bus: on/off, prefix, web page, station shape."""

    ha_discovery: bool = True
    ha_prefix: str = Field(default=DEFAULT_PREFIX, pattern=r"^[^+#]+$")
    ha_remote_id_tag: str = DEFAULT_REMOTE_ID_TAG
    ha_min_current_a: float = Field(default=6.0, ge=0, le=100)
    public_url: str | None = Field(
        default=DEFAULT_PUBLIC_URL,
        description="the web page, linked from HA's device page; empty: no link")
    connectors: int = Field(default=1, ge=1, le=1000, description="connectors per station")
    max_current_a: float = Field(default=16.0, gt=0, le=100)
    phases: int = Field(default=3, ge=1, le=3)
    # The price the API's reports use (same variables): HA's session cost and price sensors.
    api_price_per_kwh: float = Field(default=0.30, ge=0, allow_inf_nan=False)
    api_currency: str = Field(default="EUR", min_length=1, max_length=8)
    # The energy manager's site id (its own variable): HA's station device shows its tariff.
    energy_site: str | None = Field(default=None, pattern=r"^[^/+# ]{1,48}$")

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """HA rejects the whole device for a configuration_url it cannot parse: fail here."""
        if value is None or not value.strip():
            return None
        parts = urlparse(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"VOLTBUS_PUBLIC_URL must be an http(s) URL with a host, not "
                             f"{value!r} (e.g. {DEFAULT_PUBLIC_URL})")
        return value.strip()
