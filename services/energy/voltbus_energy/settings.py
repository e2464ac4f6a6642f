"""EnergySettings: the site's grid connection, the grid-meter source, the control period."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from voltbus_common.settings import BusSettings, read_secret

FeedFormat = Literal["awattar", "energycharts", "tibber", "generic"]


class EnergySettings(BusSettings):
    """The energy manager's settings (env prefix VOLTBUS_); VOLTBUS_STATIONS lists the stations
    it controls, VOLTBUS_ENERGY_SITE is its own id in the site topics."""

    energy_site: str = Field(default="site", pattern=r"^[^/+# ]{1,48}$")
    # per phase; at most 100 A, the contract's range for currents (SiteState.fuse_limit_a)
    energy_fuse_a: float = Field(default=25.0, gt=0, le=100, description="per phase")
    energy_max_import_w: float | None = Field(default=None, gt=0)
    energy_margin_a: float = Field(default=0.0, ge=0, le=50)
    # all cars together per phase while the grid meter is silent
    energy_failsafe_a: float = Field(default=6.0, ge=0, le=1000)
    energy_meter_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    energy_period_s: float = Field(default=1.0, gt=0, le=60)
    # an unchanged limit is sent again this often (all of a station's when its gateway comes
    # online); changed limits go at once
    energy_resend_s: float = Field(default=10.0, ge=0.1, le=3600)
    energy_connectors: int = Field(default=1, ge=1, le=32, description="per station")
    # Several Pis on one site (their brokers bridged to the site broker): manage every station
    # whose connectors show up under the root, not only VOLTBUS_STATIONS. A connector of a
    # managed station beyond ENERGY_CONNECTORS is adopted either way when it shows up.
    energy_all_stations: bool = False
    # a raise waits (at most this long) until the cuts sent before it are in force at their
    # gateways; default: 5 s with ENERGY_ALL_STATIONS (bridged stations), else 0 (no wait)
    energy_cut_confirm_s: float | None = Field(default=None, ge=0, le=60)
    # the gateways' VOLTBUS_ENERGY_LIMIT_FAILSAFE_A (the same variable: a shared voltbus.env
    # gives both the same value): what a station whose bridge is down may fall to, so the
    # energy manager reserves at least this for each of its connectors
    energy_limit_failsafe_a: float = Field(default=6.0, ge=0, le=100)
    energy_connector_max_a: float = Field(default=16.0, ge=6, le=100)
    energy_connector_phases: Literal[1, 3] = 3
    # grid meter: "mqtt" (any topic, JSON paths), "modbus" (RTU register map), "sunspec"
    # (Modbus TCP) or "sim" (house load + the cars' meters)
    energy_grid: Literal["mqtt", "modbus", "sunspec", "sim"] = "sim"
    energy_grid_model: str = "eastron_sdm630"  # grid register map (bundled name or .yaml path)
    energy_grid_serial_port: str = "/dev/ttyUSB0"
    energy_grid_baudrate: int = Field(default=9600, ge=1200, le=115200)
    energy_grid_parity: Literal["N", "E", "O"] = "N"
    energy_grid_modbus_address: int = Field(default=1, ge=1, le=247,
                                            description="Modbus slave address / SunSpec unit id")
    energy_grid_host: str = ""  # SunSpec meter's host
    energy_grid_tcp_port: int = Field(default=502, ge=1, le=65535)
    energy_grid_poll_s: float = Field(default=1.0, gt=0, le=60)
    energy_pv_sunspec_host: str = ""  # PV from a SunSpec inverter (models 101-103)
    energy_pv_sunspec_port: int = Field(default=502, ge=1, le=65535)
    energy_pv_sunspec_unit: int = Field(default=1, ge=1, le=247)
    energy_grid_topic: str = ""
    energy_grid_power_path: str = "power_w"
    energy_grid_current_paths: str = "current_a[0],current_a[1],current_a[2]"
    energy_pv_topic: str = ""
    energy_pv_power_path: str = "power_w"
    # home battery: "none", "mqtt" (any topic, JSON paths) or "sunspec" (model 802 over TCP)
    energy_battery: Literal["none", "mqtt", "sunspec"] = "none"
    energy_battery_topic: str = ""
    energy_battery_power_path: str = "power_w"  # W, > 0 discharging (see _SIGN)
    energy_battery_soc_path: str = ""  # %; empty: no state of charge
    energy_battery_sign: Literal[1, -1] = Field(
        default=1, description="-1 for a source that counts charging as positive")
    energy_battery_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    energy_battery_host: str = ""  # SunSpec battery's host
    energy_battery_tcp_port: int = Field(default=502, ge=1, le=65535)
    energy_battery_unit: int = Field(default=1, ge=1, le=247)
    # battery first: its charging power is not offered to the cars as PV surplus (while its
    # state of charge is below _BELOW_SOC, or unknown)
    energy_battery_first: bool = False
    energy_battery_first_below_soc: float = Field(default=100.0, ge=0, le=100)
    energy_sim_house_a: float = Field(default=2.0, ge=0, le=1000)
    # PV mode hysteresis (seconds)
    energy_pv_start_delay_s: float = Field(default=60.0, ge=0)
    energy_pv_stop_delay_s: float = Field(default=180.0, ge=0)
    energy_pv_min_on_s: float = Field(default=300.0, ge=0)
    energy_pv_min_off_s: float = Field(default=120.0, ge=0)
    # 1p/3p phase switching (where hw/{c}/phases says switchable)
    energy_phase_switching: bool = True
    energy_phase_up_delay_s: float = Field(default=60.0, ge=0)
    energy_phase_down_delay_s: float = Field(default=180.0, ge=0)
    energy_phase_min_interval_s: float = Field(default=300.0, ge=0)
    energy_phase_pause_s: float = Field(default=5.0, ge=0, le=60,
                                        description="the IEC 61851 pause before the switch")
    energy_phase_stop_timeout_s: float = Field(default=30.0, gt=0, le=600)
    energy_phase_confirm_timeout_s: float = Field(default=10.0, gt=0, le=600)

    # tariff: "fixed" (one price), "tou" (windows), "feed" (dynamic prices by HTTP or a file)
    energy_tariff: Literal["fixed", "tou", "feed"] = "fixed"
    energy_price_per_kwh: float = Field(default=0.30, ge=-10, le=100,
                                        description="fixed price; time-of-use base price")
    energy_tou_windows: str = ""  # "mon-fri 22:00-06:00=0.21; sat,sun 00:00-24:00=0.24"
    energy_timezone: str = "UTC"  # the zone time-of-use windows are in (IANA)
    energy_tariff_source: str = ""  # http(s) URL or a file path
    energy_tariff_format: FeedFormat = "generic"
    energy_tariff_token: SecretStr | None = None
    energy_tariff_token_file: Path | None = None
    energy_tariff_refresh_s: float = Field(default=3600.0, ge=10, le=86400)
    energy_tariff_factor: float = Field(default=1.0, description="market price x this ...")
    energy_tariff_offset_per_kwh: float = Field(default=0.0, description="... + this (fees)")
    energy_co2_source: str = ""  # optional grid CO2 intensity feed (URL or file)
    energy_co2_format: FeedFormat = "generic"

    def tariff_token(self) -> str | None:
        """The price feed's token, from VOLTBUS_ENERGY_TARIFF_TOKEN or its _FILE."""
        return read_secret(self.energy_tariff_token, self.energy_tariff_token_file,
                           "ENERGY_TARIFF_TOKEN")

    @field_validator("energy_grid_topic", "energy_pv_topic", "energy_battery_topic")
    @classmethod
    def _plain_topic(cls, value: str) -> str:
        if "#" in value or "+" in value:
            raise ValueError("a single topic, without wildcards")
        return value
