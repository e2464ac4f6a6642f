"""Settings every service shares: environment (prefix VOLTBUS_), secrets files, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from voltbus_common.channels import DEFAULT_ROOT

S = TypeVar("S", bound="BusSettings")


class ConfigError(Exception):
    """Configuration that cannot work; the message names the setting and the problem."""


def read_secret(value: SecretStr | None, path: Path | None, name: str) -> str | None:
    """A secret from VOLTBUS_<name> or, failing that, from the file VOLTBUS_<name>_FILE names."""
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"VOLTBUS_{name}_FILE: cannot read: {exc}") from None
    return None


class BusSettings(BaseSettings):
    """What every service needs to join the bus. Subclasses add their own fields."""

    model_config = SettingsConfigDict(env_prefix="VOLTBUS_", extra="ignore", env_file=None)

    root: str = Field(default=DEFAULT_ROOT, pattern=r"^[^+#]+[^/+#]$")
    stations: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["CP1"])
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_password_file: Path | None = None
    mqtt_tls: bool = False
    mqtt_ca_file: Path | None = None
    mqtt_keepalive_s: int = Field(default=15, ge=5, le=600)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    data_dir: Path = Path("var")

    @field_validator("stations", mode="before")
    @classmethod
    def _split_stations(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("stations")
    @classmethod
    def _valid_station_ids(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one station id is needed")
        for station in value:
            if not station or any(c in station for c in "/+# ") or len(station) > 48:
                raise ValueError(
                    f"station id {station!r} must be 1..48 chars without / + # or space")
        if len(set(value)) != len(value):
            raise ValueError("station ids must be unique")
        return value

    def mqtt_secret(self) -> str | None:
        """The MQTT password, from VOLTBUS_MQTT_PASSWORD or the file VOLTBUS_MQTT_PASSWORD_FILE."""
        return read_secret(self.mqtt_password, self.mqtt_password_file, "MQTT_PASSWORD")


def load_settings(cls: type[S]) -> S:
    """Build settings from the environment; exit with a readable message when they are invalid."""
    try:
        return cls()
    except ValidationError as exc:
        lines = [f"voltbus: invalid configuration ({cls.__name__}):"]
        for err in exc.errors():
            name = "VOLTBUS_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"  {name}: {err['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
