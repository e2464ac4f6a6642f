"""OCPP 1.6 configuration key values, persisted; GetConfiguration and ChangeConfiguration
semantics; and the typed, version-neutral view the model reads (`model.config.StationConfig`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from voltbus_ocpp.model.results import Measurand, TxStart
from voltbus_ocpp.protocol.v16.config_keys import KEYS, Key
from voltbus_ocpp.protocol.v16.convert import MEASURAND_OF
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)

FIELD_FOR_KEY: dict[str, str] = {
    "LightIntensity": "light_intensity_pct", "BlinkRepeat": "blink_repeat",
    "HeartbeatInterval": "heartbeat_interval_s",
    "MeterValueSampleInterval": "sample_interval_s",
}
"""The neutral field a key change is announced as (`on_change`); others by their key name."""


class ConfigStore:
    """Typed key values with the spec's defaults, stored in the station's database."""

    def __init__(self, store: Store | None, *, overrides: dict[str, str] | None = None,
                 time_scale: float = 1.0) -> None:
        self.store = store
        self.time_scale = time_scale
        self.values: dict[str, str] = {k.name: k.default for k in KEYS.values()}
        self.values.update(overrides or {})
        if store is not None:
            for key, value in store.db.execute("SELECT key, value FROM config"):
                if key in KEYS and not KEYS[key].readonly:
                    self.values[key] = value
        self.listeners: list[Callable[[str], None]] = []

    def get_str(self, key: str) -> str:
        """The value as text."""
        return self.values[key]

    def get_int(self, key: str) -> int:
        """An integer key."""
        return int(self.values[key])

    def get_seconds(self, key: str) -> float:
        """A duration key in seconds, times the time scale (tests run OCPP time faster)."""
        return int(self.values[key]) * self.time_scale

    def get_bool(self, key: str) -> bool:
        """A boolean key."""
        return self.values[key].lower() == "true"

    def get_list(self, key: str) -> list[str]:
        """A comma-separated list key."""
        return [i.strip() for i in self.values[key].split(",") if i.strip()]

    def change(self, key: str, value: str) -> str:
        """ChangeConfiguration: Accepted, Rejected, RebootRequired or NotSupported."""
        spec: Key | None = KEYS.get(key)
        if spec is None:
            return "NotSupported"
        if spec.readonly:
            return "Rejected"
        problem = spec.check(value) or self._check_list(key, value)
        if problem is not None:
            log.warning("ChangeConfiguration %s rejected: %s", key, problem)
            return "Rejected"
        if spec.name == "SecurityProfile" and int(value) < self.get_int("SecurityProfile"):
            return "Rejected"  # security whitepaper: the profile may only be raised
        if spec.kind.value == "boolean":
            value = value.lower()
        self.set(key, value)
        return "RebootRequired" if spec.reboot else "Accepted"

    def _check_list(self, key: str, value: str) -> str | None:
        """The limits a CSL value has beyond its items: <key>MaxLength, phase rotation ids."""
        items = [i.strip() for i in value.split(",") if i.strip()]
        limit_key = f"{key}MaxLength"
        if limit_key in self.values and len(items) > int(self.values[limit_key]):
            return f"{len(items)} items, {limit_key} is {self.values[limit_key]}"
        if key == "ConnectorPhaseRotation":
            ids = [int(i.split(".", 1)[0]) for i in items]
            if len(set(ids)) != len(ids):
                return "a connector is listed twice"
            connectors = self.get_int("NumberOfConnectors")
            if any(n > connectors for n in ids):
                return f"connector ids go from 0 (grid) to {connectors}"
        return None

    def set(self, key: str, value: str) -> None:
        """Store a value and tell the listeners."""
        self.values[key] = value
        if self.store is not None:
            self.store.db.execute("INSERT OR REPLACE INTO config VALUES (?, ?)", (key, value))
        for listener in self.listeners:
            listener(FIELD_FOR_KEY.get(key, key))

    def listing(self, keys: Iterable[str] | None) -> tuple[list[dict[str, object]], list[str]]:
        """GetConfiguration: (known keys with readonly/value, unknown key names)."""
        wanted = list(keys) if keys else list(KEYS)
        known: list[dict[str, object]] = []
        unknown: list[str] = []
        for name in wanted:
            spec = KEYS.get(name)
            if spec is None:
                unknown.append(name)
                continue
            entry: dict[str, object] = {"key": name, "readonly": spec.readonly}
            if not spec.secret:
                entry["value"] = self.values[name]
            known.append(entry)
        return known, unknown

    def measurands(self, key: str) -> tuple[Measurand, ...]:
        """A measurand list key in the model's names (unknown names were rejected on change)."""
        return tuple(MEASURAND_OF[m] for m in self.get_list(key) if m in MEASURAND_OF)

    # --- model.config.StationConfig: the neutral view ----------------------------------------

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call listener(field name) whenever a value changes."""
        self.listeners.append(listener)

    def visible_values(self) -> dict[str, str]:
        """Every key's value, AuthorizationKey left out."""
        return {k: v for k, v in self.values.items() if not KEYS[k].secret}

    def set_heartbeat_interval(self, seconds: int) -> None:
        """HeartbeatInterval from a BootNotification answer."""
        self.set("HeartbeatInterval", str(seconds))

    @property
    def local_list_enabled(self) -> bool:
        """LocalAuthListEnabled."""
        return self.get_bool("LocalAuthListEnabled")

    @property
    def auth_cache_enabled(self) -> bool:
        """AuthorizationCacheEnabled."""
        return self.get_bool("AuthorizationCacheEnabled")

    @property
    def local_pre_authorize(self) -> bool:
        """LocalPreAuthorize."""
        return self.get_bool("LocalPreAuthorize")

    @property
    def local_authorize_offline(self) -> bool:
        """LocalAuthorizeOffline."""
        return self.get_bool("LocalAuthorizeOffline")

    @property
    def offline_tx_for_unknown_id(self) -> bool:
        """AllowOfflineTxForUnknownId."""
        return self.get_bool("AllowOfflineTxForUnknownId")

    @property
    def authorize_remote_start(self) -> bool:
        """AuthorizeRemoteTxRequests."""
        return self.get_bool("AuthorizeRemoteTxRequests")

    @property
    def id_token_max_length(self) -> int:
        """IdToken is CiString20Type in OCPP 1.6."""
        return 20

    @property
    def id_token_types(self) -> bool:
        """OCPP 1.6 has no id token types."""
        return False

    @property
    def blink_repeat(self) -> int:
        """BlinkRepeat."""
        return self.get_int("BlinkRepeat")

    @property
    def light_intensity_pct(self) -> int:
        """LightIntensity."""
        return self.get_int("LightIntensity")

    @property
    def sample_interval_s(self) -> float:
        """MeterValueSampleInterval."""
        return self.get_seconds("MeterValueSampleInterval")

    @property
    def clock_aligned_interval_s(self) -> int:
        """ClockAlignedDataInterval."""
        return self.get_int("ClockAlignedDataInterval")

    @property
    def connection_timeout_s(self) -> float:
        """ConnectionTimeOut."""
        return self.get_seconds("ConnectionTimeOut")

    @property
    def tx_start_points(self) -> frozenset[TxStart]:
        """OCPP 1.6 starts a transaction once authorised and plugged in, always."""
        return frozenset({TxStart.POWER_PATH_CLOSED})

    @property
    def stop_on_bay_vacated(self) -> bool:
        """OCPP 1.6 has no bay occupancy stop."""
        return False

    @property
    def stop_on_transfer_end(self) -> bool:
        """OCPP 1.6 transactions go on while the EV pauses (SuspendedEV/SuspendedEVSE)."""
        return False

    @property
    def stop_on_ev_disconnect(self) -> bool:
        """StopTransactionOnEVSideDisconnect."""
        return self.get_bool("StopTransactionOnEVSideDisconnect")

    @property
    def unlock_on_ev_disconnect(self) -> bool:
        """UnlockConnectorOnEVSideDisconnect (9.1.31)."""
        return self.get_bool("UnlockConnectorOnEVSideDisconnect")

    @property
    def stop_on_invalid_id(self) -> bool:
        """StopTransactionOnInvalidId."""
        return self.get_bool("StopTransactionOnInvalidId")

    def connector_limit_a(self, connector: int) -> float | None:
        """1.6 has no configuration key capping one connector: none."""
        return None

    @property
    def reports_charging_state(self) -> bool:
        """1.6 has no charging state apart from the connector status: none reported."""
        return False

    @property
    def limit_change_significance_pct(self) -> float | None:
        """1.6 has no message reporting an external limit: none are reported."""
        return None

    @property
    def max_energy_on_invalid_id_wh(self) -> int:
        """MaxEnergyOnInvalidId."""
        return self.get_int("MaxEnergyOnInvalidId")

    @property
    def sampled_measurands(self) -> tuple[Measurand, ...]:
        """MeterValuesSampledData."""
        return self.measurands("MeterValuesSampledData")

    @property
    def aligned_measurands(self) -> tuple[Measurand, ...]:
        """MeterValuesAlignedData."""
        return self.measurands("MeterValuesAlignedData")

    @property
    def stop_sampled_measurands(self) -> tuple[Measurand, ...]:
        """StopTxnSampledData."""
        return self.measurands("StopTxnSampledData")

    @property
    def stop_aligned_measurands(self) -> tuple[Measurand, ...]:
        """StopTxnAlignedData."""
        return self.measurands("StopTxnAlignedData")

    @property
    def heartbeat_interval_s(self) -> float:
        """HeartbeatInterval."""
        return self.get_seconds("HeartbeatInterval")

    @property
    def message_attempts(self) -> int:
        """TransactionMessageAttempts."""
        return self.get_int("TransactionMessageAttempts")

    @property
    def message_retry_interval_s(self) -> float:
        """TransactionMessageRetryInterval."""
        return self.get_seconds("TransactionMessageRetryInterval")

    @property
    def minimum_status_duration_s(self) -> float:
        """MinimumStatusDuration."""
        return self.get_seconds("MinimumStatusDuration")

    @property
    def reset_retries(self) -> int:
        """ResetRetries."""
        return self.get_int("ResetRetries")

    @property
    def ping_interval_s(self) -> float:
        """WebSocketPingInterval."""
        return float(self.get_int("WebSocketPingInterval"))

    @property
    def security_profile(self) -> int:
        """SecurityProfile (security.py acts on it)."""
        return self.get_int("SecurityProfile")

    @property
    def cpo_name(self) -> str:
        """CpoName: the organisation name of the charge point certificate's CSR."""
        return self.get_str("CpoName")

    def set_security_profile(self, profile: int) -> None:
        """SecurityProfile, set by the station (a raised profile, or its fallback)."""
        self.set("SecurityProfile", str(profile))

    @property
    def authorization_key(self) -> str:
        """AuthorizationKey."""
        return self.get_str("AuthorizationKey")
