"""The OCPP 2.0.1 device-model variables voltbus knows so far, and the typed, version-neutral view
the model reads (`model.config.StationConfig`), from "Component.Variable" values.

Actual values kept in the station's config table under "Component.Variable" (1.6 keys never
contain a dot, so the two never collide), written with SetVariables (`change`); the persistent
values of other attributes (EVSE Power MaxSet) under "attr/..." keys (`attribute_key`); the
components, attributes and characteristics GetVariables and the reports show are in
`device_model.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

from voltbus_ocpp.model.results import Measurand, TxStart
from voltbus_ocpp.store import Store

MEASURAND_NAMES: dict[str, Measurand] = {
    "Energy.Active.Import.Register": Measurand.ENERGY_IMPORT_WH,
    "Power.Active.Import": Measurand.POWER_IMPORT_W,
    "Current.Import": Measurand.CURRENT_IMPORT_A,
    "Voltage": Measurand.VOLTAGE_V,
    "Current.Offered": Measurand.CURRENT_OFFERED_A,
}

DEFAULTS: dict[str, str] = {
    "OCPPCommCtrlr.HeartbeatInterval": "300",
    "OCPPCommCtrlr.MessageAttempts": "3",  # TransactionEvent
    "OCPPCommCtrlr.MessageAttemptInterval": "60",
    "OCPPCommCtrlr.ResetRetries": "1",
    "OCPPCommCtrlr.WebSocketPingInterval": "30",
    "AuthCtrlr.LocalPreAuthorize": "false",
    "AuthCtrlr.LocalAuthorizeOffline": "true",
    "AuthCtrlr.OfflineTxForUnknownIdEnabled": "false",
    "AuthCtrlr.AuthorizeRemoteStart": "false",
    "AuthCacheCtrlr.Enabled": "true",
    "LocalAuthListCtrlr.Enabled": "true",
    "LocalAuthListCtrlr.ItemsPerMessage": "100",  # SendLocalList entries per request
    "ReservationCtrlr.Enabled": "true",
    "ReservationCtrlr.NonEvseSpecific": "true",  # ReserveNow without evseId
    "SmartChargingCtrlr.Enabled": "true",
    # K11-K13: external limits (model/external_limits.py) reported when they move by more than
    # this percentage; with their schedule when NotifyChargingLimitWithSchedules
    "SmartChargingCtrlr.LimitChangeSignificance": "10",
    "SmartChargingCtrlr.NotifyChargingLimitWithSchedules": "false",
    "DisplayMessageCtrlr.Enabled": "true",
    "MonitoringCtrlr.Enabled": "true",
    "MonitoringCtrlr.OfflineQueuingSeverity": "9",  # every monitor event is queued offline
    "MonitoringCtrlr.ActiveMonitoringBase": "All",  # set by SetMonitoringBase (N03)
    "MonitoringCtrlr.ActiveMonitoringLevel": "9",  # set by SetMonitoringLevel (N05)
    "TxCtrlr.EVConnectionTimeOut": "60",
    "TxCtrlr.TxStartPoint": "PowerPathClosed",
    "TxCtrlr.TxStopPoint": "EVConnected,Authorized",
    "TxCtrlr.StopTxOnEVSideDisconnect": "true",
    "TxCtrlr.StopTxOnInvalidId": "true",
    "TxCtrlr.MaxEnergyOnInvalidId": "0",
    "SampledDataCtrlr.TxUpdatedInterval": "60",
    "SampledDataCtrlr.TxUpdatedMeasurands": (
        "Energy.Active.Import.Register,Power.Active.Import,Current.Import"),
    "SampledDataCtrlr.TxEndedMeasurands": "",
    "AlignedDataCtrlr.Interval": "0",
    "AlignedDataCtrlr.Measurands": "Energy.Active.Import.Register",
    "AlignedDataCtrlr.TxEndedMeasurands": "",
    "SecurityCtrlr.BasicAuthPassword": "",
    # A00/A01: the profile in force (ReadOnly; raised by SetNetworkProfile), from the settings
    # until the central system raised it (V201Adapter sets it at start)
    "SecurityCtrlr.SecurityProfile": "0",
    "SecurityCtrlr.OrganizationName": "",  # the CSR's O (A02.FR.06)
    "SecurityCtrlr.MaxCertificateChainSize": "10000",  # CertificateSigned's chain, characters
    "SecurityCtrlr.CertificateEntries": "20",  # the most root certificates kept
    "voltbus.LightIntensity": "100",  # no standard component for the LED yet
    "voltbus.BlinkRepeat": "3",
}
SECRET = frozenset({"SecurityCtrlr.BasicAuthPassword"})  # WriteOnly
READ_ONLY = frozenset({"SecurityCtrlr.SecurityProfile", "SecurityCtrlr.MaxCertificateChainSize",
                       "SecurityCtrlr.CertificateEntries", "MonitoringCtrlr.ActiveMonitoringBase",
                       "MonitoringCtrlr.ActiveMonitoringLevel"})  # set by the station only
# E01/E06: the points a transaction starts at (the first one reached) and stops at (the first one
# no longer true) that the model can honour. It starts a transaction at plug-in (EVConnected,
# E02: the id token follows), at authorisation (Authorized, E03: the EV follows), or when both
# are there, closing the relay with it (PowerPathClosed, which either of the others precedes, so
# any non-empty combination of the three is taken). It stops on deauthorisation, and on
# unplugging unless EVConnected is left out of TxStopPoint (or StopTxOnEVSideDisconnect is
# false). Other lists are Rejected: ParkingBayOccupancy and DataSigned are not done
# (docs/ocpp.md).
# EnergyTransfer (E01.FR.06/E06.FR.07): the relay closes once authorised with the EV there,
# the transaction starts when the EV draws and, as a stop point, ends when it no longer does
# (an EV pausing ends it). Authorized is in every stop list: the model always stops on
# deauthorisation.
TX_START_POINTS = {"EVConnected": TxStart.EV_CONNECTED, "Authorized": TxStart.AUTHORIZED,
                   "PowerPathClosed": TxStart.POWER_PATH_CLOSED,
                   "EnergyTransfer": TxStart.ENERGY_TRANSFER,
                   "ParkingBayOccupancy": TxStart.PARKING_BAY}
TX_STOP_OPTIONAL = ("EVConnected", "EnergyTransfer", "ParkingBayOccupancy")
BAY = "ParkingBayOccupancy"  # needs a bay detector: Rejected on a station without one
TX_POINTS = {"TxCtrlr.TxStartPoint": [frozenset(c) for n in range(1, len(TX_START_POINTS) + 1)
                                      for c in combinations(TX_START_POINTS, n)],
             "TxCtrlr.TxStopPoint": [frozenset({"Authorized", *c})
                                     for n in range(len(TX_STOP_OPTIONAL) + 1)
                                     for c in combinations(TX_STOP_OPTIONAL, n)]}
DECIMALS = {"SmartChargingCtrlr.LimitChangeSignificance": (0.0, 100.0)}  # name: (min, max)
ATTRIBUTE_PREFIX = "attr/"
VOLTS = 230.0  # per phase: a power in W as a current in A (as GetCompositeSchedule)


def attribute_key(component: str, evse: int | None, connector: int | None, variable: str,
                  instance: str | None, attribute: str) -> str:
    """The config-table key of a stored attribute value other than a controller's Actual."""
    parts = (component, evse, connector, variable, instance, attribute)
    return ATTRIBUTE_PREFIX + "/".join("" if p is None else str(p) for p in parts)


def power_max_key(evse: int) -> str:
    """EVSE n's Power MaxSet: the operator's cap on its power, in W."""
    return attribute_key("EVSE", evse, None, "Power", None, "MaxSet")


COMPONENTS = frozenset(name.split(".", 1)[0] for name in DEFAULTS)
FIELD_FOR_VARIABLE = {"voltbus.LightIntensity": "light_intensity_pct",
                      "voltbus.BlinkRepeat": "blink_repeat",
                      "OCPPCommCtrlr.HeartbeatInterval": "heartbeat_interval_s"}


class Variables:
    """Variable values with defaults, persisted in the station's config table."""

    def __init__(self, store: Store | None, *, overrides: dict[str, str] | None = None,
                 time_scale: float = 1.0, phases: int = 3) -> None:
        self.store = store
        self.time_scale = time_scale
        self.phases = phases
        self.values = dict(DEFAULTS)
        self.attributes: dict[str, str] = {}  # attribute_key -> value (persistent attributes)
        if store is not None:
            for key, value in store.db.execute("SELECT key, value FROM config"):
                if key in DEFAULTS:
                    self.values[key] = value
                elif key.startswith(ATTRIBUTE_PREFIX):
                    self.attributes[key] = value
        self.values.update(overrides or {})
        self.listeners: list[Callable[[str], None]] = []
        # a connector has a parking bay detector (the session sets it from the model)
        self.has_bay_detector: Callable[[], bool] = lambda: False

    def set(self, name: str, value: str) -> None:
        """Store a value and tell the listeners."""
        self.values[name] = value
        if self.store is not None:
            self.store.db.execute("INSERT OR REPLACE INTO config VALUES (?, ?)", (name, value))
        for listener in self.listeners:
            listener(FIELD_FOR_VARIABLE.get(name, name))

    def set_attribute(self, key: str, value: str) -> None:
        """Store an attribute value (not Actual) and tell the listeners."""
        self.attributes[key] = value
        if self.store is not None:
            self.store.db.execute("INSERT OR REPLACE INTO config VALUES (?, ?)", (key, value))
        for listener in self.listeners:
            listener(key)

    def connector_limit_a(self, connector: int) -> float | None:
        """EVSE Power MaxSet (W) as a current at 230 V per phase; None when not set."""
        value = self.attributes.get(power_max_key(connector))
        if value is None:
            return None
        try:
            return max(0.0, float(value) / (VOLTS * self.phases))
        except ValueError:
            return None

    def change(self, component: str, variable: str, value: str) -> str:
        """SetVariables: Accepted, Rejected, UnknownComponent or UnknownVariable."""
        name = f"{component}.{variable}"
        if component not in COMPONENTS:
            return "UnknownComponent"
        if name not in DEFAULTS:
            return "UnknownVariable"
        default = DEFAULTS[name]
        if name in DECIMALS:
            try:
                number = float(value)
            except ValueError:
                return "Rejected"
            if not DECIMALS[name][0] <= number <= DECIMALS[name][1]:  # NaN too
                return "Rejected"
        elif default in ("true", "false"):
            if value.lower() not in ("true", "false"):
                return "Rejected"
            value = value.lower()
        elif default.isdigit():
            if not value.isdigit():
                return "Rejected"
        elif name.endswith("Measurands"):
            items = [i.strip() for i in value.split(",") if i.strip()]
            if any(i not in MEASURAND_NAMES for i in items):
                return "Rejected"
        elif name in TX_POINTS:
            points = frozenset(i.strip() for i in value.split(",") if i.strip())
            if points not in TX_POINTS[name] or (BAY in points
                                                 and not self.has_bay_detector()):
                return "Rejected"
        self.set(name, value)
        return "Accepted"

    def _int(self, name: str) -> int:
        return int(self.values[name])

    def _bool(self, name: str) -> bool:
        return self.values[name].lower() == "true"

    def _seconds(self, name: str) -> float:
        return int(self.values[name]) * self.time_scale

    def _measurands(self, name: str) -> tuple[Measurand, ...]:
        items = [i.strip() for i in self.values[name].split(",") if i.strip()]
        return tuple(MEASURAND_NAMES[i] for i in items if i in MEASURAND_NAMES)

    # --- model.config.StationConfig ----------------------------------------------------------

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call listener(field name) whenever a value changes."""
        self.listeners.append(listener)

    def visible_values(self) -> dict[str, str]:
        """Every value, secrets left out."""
        return {k: v for k, v in self.values.items() if k not in SECRET}

    def set_heartbeat_interval(self, seconds: int) -> None:
        """The interval from the BootNotification answer."""
        self.set("OCPPCommCtrlr.HeartbeatInterval", str(seconds))

    @property
    def local_list_enabled(self) -> bool:
        """LocalAuthListCtrlr.Enabled."""
        return self._bool("LocalAuthListCtrlr.Enabled")

    @property
    def local_list_items_per_message(self) -> int:
        """LocalAuthListCtrlr.ItemsPerMessage."""
        return self._int("LocalAuthListCtrlr.ItemsPerMessage")

    @property
    def reservation_enabled(self) -> bool:
        """ReservationCtrlr.Enabled."""
        return self._bool("ReservationCtrlr.Enabled")

    @property
    def reservation_non_evse_specific(self) -> bool:
        """ReservationCtrlr.NonEvseSpecific."""
        return self._bool("ReservationCtrlr.NonEvseSpecific")

    @property
    def smart_enabled(self) -> bool:
        """SmartChargingCtrlr.Enabled."""
        return self._bool("SmartChargingCtrlr.Enabled")

    @property
    def reports_charging_state(self) -> bool:
        """TransactionEvent transactionInfo.chargingState, each change as an Updated
        ChargingStateChanged (E02/E06)."""
        return True

    @property
    def limit_change_significance_pct(self) -> float | None:
        """SmartChargingCtrlr.LimitChangeSignificance."""
        return float(self.values["SmartChargingCtrlr.LimitChangeSignificance"])

    @property
    def notify_limit_with_schedules(self) -> bool:
        """SmartChargingCtrlr.NotifyChargingLimitWithSchedules."""
        return self._bool("SmartChargingCtrlr.NotifyChargingLimitWithSchedules")

    @property
    def display_enabled(self) -> bool:
        """DisplayMessageCtrlr.Enabled."""
        return self._bool("DisplayMessageCtrlr.Enabled")

    @property
    def monitoring_enabled(self) -> bool:
        """MonitoringCtrlr.Enabled."""
        return self._bool("MonitoringCtrlr.Enabled")

    @property
    def monitoring_level(self) -> int:
        """MonitoringCtrlr.ActiveMonitoringLevel."""
        return self._int("MonitoringCtrlr.ActiveMonitoringLevel")

    @property
    def offline_queuing_severity(self) -> int:
        """MonitoringCtrlr.OfflineQueuingSeverity."""
        return self._int("MonitoringCtrlr.OfflineQueuingSeverity")

    @property
    def auth_cache_enabled(self) -> bool:
        """AuthCacheCtrlr.Enabled."""
        return self._bool("AuthCacheCtrlr.Enabled")

    @property
    def local_pre_authorize(self) -> bool:
        """AuthCtrlr.LocalPreAuthorize."""
        return self._bool("AuthCtrlr.LocalPreAuthorize")

    @property
    def local_authorize_offline(self) -> bool:
        """AuthCtrlr.LocalAuthorizeOffline."""
        return self._bool("AuthCtrlr.LocalAuthorizeOffline")

    @property
    def offline_tx_for_unknown_id(self) -> bool:
        """AuthCtrlr.OfflineTxForUnknownIdEnabled."""
        return self._bool("AuthCtrlr.OfflineTxForUnknownIdEnabled")

    @property
    def authorize_remote_start(self) -> bool:
        """AuthCtrlr.AuthorizeRemoteStart."""
        return self._bool("AuthCtrlr.AuthorizeRemoteStart")

    @property
    def id_token_max_length(self) -> int:
        """IdTokenType.idToken is identifierString up to 36 in OCPP 2.0.1."""
        return 36

    @property
    def id_token_types(self) -> bool:
        """IdTokenType has a type in OCPP 2.0.1."""
        return True

    @property
    def blink_repeat(self) -> int:
        """voltbus.BlinkRepeat."""
        return self._int("voltbus.BlinkRepeat")

    @property
    def light_intensity_pct(self) -> int:
        """voltbus.LightIntensity."""
        return self._int("voltbus.LightIntensity")

    @property
    def sample_interval_s(self) -> float:
        """SampledDataCtrlr.TxUpdatedInterval."""
        return self._seconds("SampledDataCtrlr.TxUpdatedInterval")

    @property
    def clock_aligned_interval_s(self) -> int:
        """AlignedDataCtrlr.Interval."""
        return self._int("AlignedDataCtrlr.Interval")

    @property
    def connection_timeout_s(self) -> float:
        """TxCtrlr.EVConnectionTimeOut."""
        return self._seconds("TxCtrlr.EVConnectionTimeOut")

    @property
    def tx_start_points(self) -> frozenset[TxStart]:
        """TxCtrlr.TxStartPoint."""
        return frozenset(TX_START_POINTS[i.strip()] for i in self.values[
            "TxCtrlr.TxStartPoint"].split(",") if i.strip() in TX_START_POINTS) or frozenset(
            {TxStart.POWER_PATH_CLOSED})

    @property
    def stop_on_ev_disconnect(self) -> bool:
        """TxCtrlr.StopTxOnEVSideDisconnect, and EVConnected among TxCtrlr.TxStopPoint."""
        points = {i.strip() for i in self.values["TxCtrlr.TxStopPoint"].split(",")}
        return self._bool("TxCtrlr.StopTxOnEVSideDisconnect") and "EVConnected" in points

    @property
    def stop_on_bay_vacated(self) -> bool:
        """ParkingBayOccupancy among TxCtrlr.TxStopPoint."""
        return BAY in {i.strip() for i in self.values["TxCtrlr.TxStopPoint"].split(",")}

    @property
    def stop_on_transfer_end(self) -> bool:
        """EnergyTransfer among TxCtrlr.TxStopPoint."""
        points = {i.strip() for i in self.values["TxCtrlr.TxStopPoint"].split(",")}
        return "EnergyTransfer" in points

    @property
    def unlock_on_ev_disconnect(self) -> bool:
        """No variable for it in this device model: the cable unlocks when the transaction
        ends, an EV-side disconnect too."""
        return True

    @property
    def stop_on_invalid_id(self) -> bool:
        """TxCtrlr.StopTxOnInvalidId."""
        return self._bool("TxCtrlr.StopTxOnInvalidId")

    @property
    def max_energy_on_invalid_id_wh(self) -> int:
        """TxCtrlr.MaxEnergyOnInvalidId."""
        return self._int("TxCtrlr.MaxEnergyOnInvalidId")

    @property
    def sampled_measurands(self) -> tuple[Measurand, ...]:
        """SampledDataCtrlr.TxUpdatedMeasurands."""
        return self._measurands("SampledDataCtrlr.TxUpdatedMeasurands")

    @property
    def aligned_measurands(self) -> tuple[Measurand, ...]:
        """AlignedDataCtrlr.Measurands."""
        return self._measurands("AlignedDataCtrlr.Measurands")

    @property
    def stop_sampled_measurands(self) -> tuple[Measurand, ...]:
        """SampledDataCtrlr.TxEndedMeasurands."""
        return self._measurands("SampledDataCtrlr.TxEndedMeasurands")

    @property
    def stop_aligned_measurands(self) -> tuple[Measurand, ...]:
        """AlignedDataCtrlr.TxEndedMeasurands."""
        return self._measurands("AlignedDataCtrlr.TxEndedMeasurands")

    @property
    def heartbeat_interval_s(self) -> float:
        """OCPPCommCtrlr.HeartbeatInterval."""
        return self._seconds("OCPPCommCtrlr.HeartbeatInterval")

    @property
    def message_attempts(self) -> int:
        """OCPPCommCtrlr.MessageAttempts."""
        return self._int("OCPPCommCtrlr.MessageAttempts")

    @property
    def message_retry_interval_s(self) -> float:
        """OCPPCommCtrlr.MessageAttemptInterval."""
        return self._seconds("OCPPCommCtrlr.MessageAttemptInterval")

    @property
    def minimum_status_duration_s(self) -> float:
        """2.0.1 has no such variable: statuses are reported at once."""
        return 0.0

    @property
    def reset_retries(self) -> int:
        """OCPPCommCtrlr.ResetRetries."""
        return self._int("OCPPCommCtrlr.ResetRetries")

    @property
    def ping_interval_s(self) -> float:
        """OCPPCommCtrlr.WebSocketPingInterval."""
        return float(self._int("OCPPCommCtrlr.WebSocketPingInterval"))

    @property
    def authorization_key(self) -> str:
        """SecurityCtrlr.BasicAuthPassword."""
        return self.values["SecurityCtrlr.BasicAuthPassword"]

    @property
    def security_profile(self) -> int:
        """SecurityCtrlr.SecurityProfile."""
        return self._int("SecurityCtrlr.SecurityProfile")

    def set_security_profile(self, profile: int) -> None:
        """The profile in force (a raise, or the fallback of one that could not connect)."""
        self.set("SecurityCtrlr.SecurityProfile", str(profile))

    @property
    def organization_name(self) -> str:
        """SecurityCtrlr.OrganizationName."""
        return self.values["SecurityCtrlr.OrganizationName"]

    @property
    def max_certificate_chain_size(self) -> int:
        """SecurityCtrlr.MaxCertificateChainSize."""
        return self._int("SecurityCtrlr.MaxCertificateChainSize")

    @property
    def certificate_entries(self) -> int:
        """SecurityCtrlr.CertificateEntries (the maximum)."""
        return self._int("SecurityCtrlr.CertificateEntries")
