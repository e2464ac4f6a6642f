"""The API service's settings: listen address, command timeout, auth, history, reports, notices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from voltbus_common.homeassistant.settings import HaDiscoverySettings
from voltbus_common.settings import read_secret


class ApiSettings(HaDiscoverySettings):
    """Environment VOLTBUS_API_*, VOLTBUS_INFLUX_*, VOLTBUS_HA_* and the shared bus settings."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    api_command_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # authentication
    api_admin_token_file: Path | None = None
    api_session_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    api_login_max_failures: int = Field(default=5, ge=1)
    api_login_window_s: float = Field(default=300.0, gt=0)
    # None: Secure exactly when the request came over TLS (the API's own or, with
    # proxy headers trusted, a reverse proxy's); true behind a TLS proxy that is not trusted.
    api_cookie_secure: bool | None = None
    # TLS of the API itself (both or neither): PEM certificate chain and key
    api_tls_cert_file: Path | None = None
    api_tls_key_file: Path | None = None
    # reports
    api_price_per_kwh: float = Field(default=0.30, ge=0, allow_inf_nan=False)
    api_currency: str = Field(default="EUR", min_length=1, max_length=8)
    api_timezone: str = "UTC"
    # notifications (apprise URLs, comma separated)
    api_notify_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    api_notify_ocpp_lost_min: float = Field(default=5.0, ge=0)
    # InfluxDB (read side; the same names the recorder uses)
    influx_api: int = Field(default=1, ge=1, le=3)  # 2 and 3 read through the 1.x query API
    influx_url: str | None = None
    influx_database: str = "voltbus"
    influx_org: str | None = None
    influx_bucket: str | None = None
    influx_token: SecretStr | None = None
    influx_token_file: Path | None = None
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_password_file: Path | None = None

    @field_validator("api_notify_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_tls_cert_file", "api_tls_key_file", "api_cookie_secure", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value  # compose passes unset choices as empty

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiSettings:
        if (self.api_tls_cert_file is None) != (self.api_tls_key_file is None):
            raise ValueError("set both VOLTBUS_API_TLS_CERT_FILE and VOLTBUS_API_TLS_KEY_FILE "
                             "(or neither)")
        return self

    @field_validator("api_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use e.g. Europe/Berlin)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The zone for days, weeks and months in history and reports."""
        return ZoneInfo(self.api_timezone)

    @property
    def api_dir(self) -> Path:
        """Where the API keeps its own state (users, tokens, local session history)."""
        return self.data_dir / "api"

    def influx_token_secret(self) -> str | None:
        """The InfluxDB token, from the variable or its _FILE."""
        return read_secret(self.influx_token, self.influx_token_file, "INFLUX_TOKEN")

    def influx_password_secret(self) -> str | None:
        """The InfluxDB 1.x password, from the variable or its _FILE."""
        return read_secret(self.influx_password, self.influx_password_file, "INFLUX_PASSWORD")
