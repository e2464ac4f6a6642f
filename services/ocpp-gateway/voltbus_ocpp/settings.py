"""Gateway settings: the central system, security, station shape. Env prefix VOLTBUS_."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from voltbus_common.settings import BusSettings, ConfigError
from voltbus_ocpp.offpeak_timer import OffPeakSettings
from voltbus_ocpp.protocol.v16.config_keys import KEYS


class GatewaySettings(BusSettings, OffPeakSettings):
    """VOLTBUS_CSMS_URL, VOLTBUS_CONNECTORS, VOLTBUS_CSMS_AUTH_KEY(_FILE), TLS files, ..."""

    csms_url: str = Field(default="ws://127.0.0.1:9000/ocpp", pattern=r"^wss?://.+")
    ocpp_version: Literal["1.6", "2.0.1", "auto"] = "1.6"
    """VOLTBUS_OCPP_VERSION: the OCPP version the station speaks (protocols.py); auto offers
    both subprotocols (ocpp2.0.1 first) and speaks the one the central system selects."""
    connectors: int = Field(default=1, ge=1, le=500)
    csms_auth_key: SecretStr | None = None
    csms_auth_key_file: Path | None = None
    csms_tls_url: str | None = Field(default=None, pattern=r"^wss://.+")
    """VOLTBUS_CSMS_TLS_URL: the central system's wss:// address for security profiles 2 and 3
    when it differs from VOLTBUS_CSMS_URL's host and port (default: that URL as wss://)."""
    csms_ca_file: Path | None = None
    csms_client_cert_file: Path | None = None
    csms_client_key_file: Path | None = None
    crl_file: Path | None = None
    """VOLTBUS_CRL_FILE: PEM certificate revocation lists (one or more, of any CA). A CRL of a
    CentralSystemRootCertificate (or of VOLTBUS_CSMS_CA_FILE) makes the TLS handshake refuse a
    revoked server certificate; a firmware signing certificate on its issuer's CRL is answered
    RevokedCertificate. The file is read at each connection and each SignedUpdateFirmware."""
    charge_point_vendor: str = Field(default="voltbus", min_length=1, max_length=20)
    charge_point_model: str = Field(default="voltbus", min_length=1, max_length=20)
    firmware_version: str = Field(default="0.1.0", max_length=50)
    max_current_a: float = Field(default=16.0, gt=0, le=100)
    phases: int = Field(default=3, ge=1, le=3)
    unlock_supported: bool = False
    """Obsolete and ignored (a warning says so): UnlockConnector now goes to the cable lock on
    hw/{c}/lock and answers what it confirms (cable_lock.py); no lock there: NotSupported."""
    firmware_install_command: str | None = None
    """Run with the downloaded firmware file as last argument; exit 0 means Installed (after
    the restart that follows it); exit 65 (EX_DATAERR) means the installer found the image bad
    and installed nothing (InstallVerificationFailed); any other failure InstallationFailed."""
    firmware_verify_command: str | None = None
    """VOLTBUS_FIRMWARE_VERIFY_COMMAND: run with the downloaded (and, if signed, signature
    checked) file as last argument before the install; non-zero: the image is refused, never
    installed (SignedFirmwareStatusNotification InstallVerificationFailed; UpdateFirmware's
    1.6 statuses have no such word: InstallationFailed). Unset: no check beyond the signature."""
    reboot_command: str | None = None
    """VOLTBUS_REBOOT_COMMAND: run on a hard Reset (and after a firmware install) once the
    transactions are stopped, e.g. `sudo systemctl reboot`; unset (or failing): the gateway
    process restarts (exit code 75 for its supervisor). Ignored with several stations in one
    process, which must not all reboot for one station's Reset."""
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    response_timeout_s: float = Field(default=30.0, gt=0)
    csms_max_frame_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    """The largest frame read from the central system (4 MiB): a bigger one closes the connection
    with 1009 (RFC 6455 7.4.1), the station reconnects and its sessions go on (docs/ocpp.md)."""
    relay_grace_s: float = Field(default=3.0, gt=0, le=60)
    """How long the reported relay may disagree with the last command before it is re-sent."""
    energy_limit_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    """VOLTBUS_ENERGY_LIMIT_TIMEOUT_S: the site energy manager's limit for a connector holds this
    long after it was last sent (the energy manager sends it again every VOLTBUS_ENERGY_RESEND_S,
    10 s: the default is three missed refreshes); then, or at once when the energy manager's
    status goes offline, VOLTBUS_ENERGY_LIMIT_FAILSAFE_A applies (model/energy_limit.py). Only a
    connector an energy manager limited is affected. 0: off (the last limit holds forever)."""
    energy_limit_failsafe_a: float = Field(default=6.0, ge=0, le=100)
    """VOLTBUS_ENERGY_LIMIT_FAILSAFE_A: the energy input of a connector while its energy manager
    is lost, per phase (default 6 A, the least an EV may be offered; 0 pauses). Choose it so that
    every station of the site at this limit fits the site's fuse. Not the energy manager's
    VOLTBUS_ENERGY_FAILSAFE_A (all cars together while its grid meter is silent)."""
    time_scale: float = Field(default=1.0, gt=0, le=1.0)
    """Multiplies every OCPP interval key (tests run 1 s as 0.01 s); keep 1.0 in production."""
    ocpp_config: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Initial configuration key values, JSON: {"MeterValueSampleInterval": "10"}."""

    @field_validator("energy_limit_failsafe_a")
    @classmethod
    def _ev_minimum(cls, value: float) -> float:
        if 0 < value < 6:
            raise ValueError("must be 0 (pause) or at least 6 A, the least an EV may be "
                             "offered (IEC 61851)")
        return value

    @field_validator("ocpp_config", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("ocpp_config")
    @classmethod
    def _known_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            spec = KEYS.get(key)
            if spec is None:
                raise ValueError(f"unknown OCPP configuration key {key!r}")
            problem = spec.check(text)
            if problem:
                raise ValueError(f"{key}={text!r}: {problem}")
        return value

    def auth_key(self) -> str | None:
        """The AuthorizationKey (security profile 1/2), from the environment or its file."""
        if self.csms_auth_key is not None:
            return self.csms_auth_key.get_secret_value()
        if self.csms_auth_key_file is not None:
            try:
                return self.csms_auth_key_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"VOLTBUS_CSMS_AUTH_KEY_FILE: cannot read: {exc}") from None
        return None

    def station_dir(self, station: str) -> Path:
        """Where one station's state lives."""
        return self.data_dir / "gateway" / station
