"""RecorderSettings: where to write (InfluxDB 1.x or 2.x/3.x), batching, spool size."""

from __future__ import annotations

from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator

from voltbus_common.settings import BusSettings, read_secret


class RecorderSettings(BusSettings):
    """The recorder's settings (env prefix VOLTBUS_)."""

    # 1: InfluxDB 1.x `/write` (also 2.x/3.x's 1.x compatibility API); 2 or 3: influxdb-client
    influx_api: int = Field(default=1, ge=1, le=3)
    influx_url: str = Field(default="http://127.0.0.1:8086", pattern=r"^https?://")
    # 1.x (also 2.x/3.x through their 1.x compatibility API)
    influx_database: str = Field(default="voltbus", min_length=1)
    influx_retention_policy: str | None = None
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_password_file: Path | None = None
    # 2.x / 3.x (influxdb-client)
    influx_org: str | None = None
    influx_bucket: str | None = None
    influx_token: SecretStr | None = None
    influx_token_file: Path | None = None
    influx_timeout_s: float = Field(default=10.0, gt=0, le=300)

    # every station on the broker (topic wildcard) instead of the VOLTBUS_STATIONS list
    recorder_all_stations: bool = False
    # the energy manager's site id (VOLTBUS_ENERGY_SITE): its `energy/site` goes to `site`
    energy_site: str | None = Field(default=None, pattern=r"^[^/+# ]{1,48}$")
    # a write goes out when this many points wait, or when the oldest waited this long
    recorder_batch_size: int = Field(default=5000, ge=1, le=100_000)
    recorder_batch_max_age_s: float = Field(default=1.0, gt=0, le=300)
    # share of each batch reserved for the newest points while a backlog drains
    recorder_live_share: float = Field(default=0.25, ge=0, le=0.9)
    # the spool refuses new points beyond this many (and says so loudly)
    recorder_spool_max_points: int = Field(default=2_000_000, ge=100)
    # commit received points to disk this often; fsync each commit (survives power loss)
    recorder_commit_interval_s: float = Field(default=0.1, gt=0, le=10)
    recorder_spool_fsync: bool = True
    recorder_retry_max_s: float = Field(default=30.0, gt=0, le=3600)
    recorder_dead_letter_max: int = Field(default=100_000, ge=10)
    # the zone in which a session's `month` tag (YYYY-MM) is counted
    recorder_timezone: str = "UTC"
    # re-record each station's OCPP link state this often (uptime panels need a point per range)
    recorder_link_sample_s: float = Field(default=300.0, ge=0.1, le=86400)
    recorder_health_interval_s: float = Field(default=10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _api_fields(self) -> Self:
        if self.influx_api >= 2 and not self.influx_bucket:
            raise ValueError("VOLTBUS_INFLUX_BUCKET is needed when VOLTBUS_INFLUX_API is 2 or 3")
        if self.influx_api >= 2 and self.influx_org is None:
            raise ValueError("VOLTBUS_INFLUX_ORG is needed when VOLTBUS_INFLUX_API is 2 or 3")
        try:
            ZoneInfo(self.recorder_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"VOLTBUS_RECORDER_TIMEZONE: unknown zone {self.recorder_timezone!r}"
                             ) from None
        return self

    @property
    def spool_path(self) -> Path:
        """The spool database under {data_dir}/recorder/."""
        return self.data_dir / "recorder" / "spool.sqlite3"

    def influx_password_secret(self) -> str | None:
        """The 1.x password from VOLTBUS_INFLUX_PASSWORD or VOLTBUS_INFLUX_PASSWORD_FILE."""
        return read_secret(self.influx_password, self.influx_password_file, "INFLUX_PASSWORD")

    def influx_token_secret(self) -> str | None:
        """The 2.x token from VOLTBUS_INFLUX_TOKEN or VOLTBUS_INFLUX_TOKEN_FILE."""
        return read_secret(self.influx_token, self.influx_token_file, "INFLUX_TOKEN")
