"""Every OCPP 1.6 configuration key voltbus knows: type, access, default, limits (spec chapter 9).

Pure data plus validation; `store.ConfigStore` keeps the values on disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """How a key's value is written."""

    BOOL = "boolean"
    INT = "integer"
    STR = "string"
    CSL = "comma separated list"


MEASURANDS = frozenset({"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
                        "Voltage", "Current.Offered"})
# 9.1.7: <connector>.<rotation> per item, 0 = the grid connection; R, S, T = L1, L2, L3
PHASE_ROTATION = re.compile(r"\d{1,3}\.(RST|RTS|SRT|STR|TRS|TSR|NotApplicable|Unknown)")
PROFILES = "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"


@dataclass(frozen=True)
class Key:
    """One configuration key."""

    name: str
    kind: Kind
    default: str
    readonly: bool = False
    profile: str = "Core"
    minimum: int = 0
    maximum: int | None = None
    allowed: frozenset[str] | None = None  # for CSL keys: the values each item may take
    reboot: bool = False
    secret: bool = False  # write-only (AuthorizationKey): never returned, never logged
    item_pattern: re.Pattern[str] | None = None  # for CSL keys: the form each item must have

    def check(self, value: str) -> str | None:
        """None if value is valid for this key, else why not."""
        if self.kind is Kind.BOOL:
            return None if value.lower() in ("true", "false") else "expected true or false"
        if self.kind is Kind.INT:
            try:
                number = int(value)
            except ValueError:
                return "expected an integer"
            if number < self.minimum or (self.maximum is not None and number > self.maximum):
                return f"expected {self.minimum}..{self.maximum if self.maximum else 'inf'}"
            return None
        if self.kind is Kind.CSL and self.allowed is not None:
            items = [i.strip() for i in value.split(",") if i.strip()]
            bad = [i for i in items if i not in self.allowed]
            return f"not supported: {', '.join(bad)}" if bad else None
        if self.kind is Kind.CSL and self.item_pattern is not None:
            items = [i.strip() for i in value.split(",") if i.strip()]
            bad = [i for i in items if not self.item_pattern.fullmatch(i)]
            return f"malformed: {', '.join(bad)}" if bad else None
        if self.secret and not (16 <= len(value) <= 40):
            return "AuthorizationKey must be 16..40 characters"
        return None


def _keys() -> tuple[Key, ...]:
    b, i, s, c = Kind.BOOL, Kind.INT, Kind.STR, Kind.CSL
    m = MEASURANDS
    return (
        # Core (9.1)
        Key("AllowOfflineTxForUnknownId", b, "false"),
        Key("AuthorizationCacheEnabled", b, "true"),
        Key("AuthorizeRemoteTxRequests", b, "false"),
        Key("BlinkRepeat", i, "3"),
        Key("ClockAlignedDataInterval", i, "0"),
        Key("ConnectionTimeOut", i, "60", minimum=1),
        Key("ConnectorPhaseRotation", c, "0.RST", item_pattern=PHASE_ROTATION),
        Key("ConnectorPhaseRotationMaxLength", i, "10", readonly=True),
        Key("GetConfigurationMaxKeys", i, "100", readonly=True),
        Key("HeartbeatInterval", i, "300"),
        Key("LightIntensity", i, "100", maximum=100),
        Key("LocalAuthorizeOffline", b, "true"),
        Key("LocalPreAuthorize", b, "false"),
        Key("MaxEnergyOnInvalidId", i, "0"),
        Key("MeterValuesAlignedData", c, "Energy.Active.Import.Register", allowed=m),
        Key("MeterValuesAlignedDataMaxLength", i, "5", readonly=True),
        Key("MeterValuesSampledData", c,
            "Energy.Active.Import.Register,Power.Active.Import,Current.Import", allowed=m),
        Key("MeterValuesSampledDataMaxLength", i, "5", readonly=True),
        Key("MeterValueSampleInterval", i, "60"),
        Key("MinimumStatusDuration", i, "0"),
        Key("NumberOfConnectors", i, "1", readonly=True),
        Key("ResetRetries", i, "1"),
        Key("StopTransactionOnEVSideDisconnect", b, "true"),
        Key("StopTransactionOnInvalidId", b, "true"),
        Key("StopTxnAlignedData", c, "", allowed=m),
        Key("StopTxnAlignedDataMaxLength", i, "5", readonly=True),
        Key("StopTxnSampledData", c, "", allowed=m),
        Key("StopTxnSampledDataMaxLength", i, "5", readonly=True),
        Key("SupportedFeatureProfiles", c, PROFILES, readonly=True),
        Key("SupportedFeatureProfilesMaxLength", i, "6", readonly=True),
        Key("TransactionMessageAttempts", i, "3", minimum=1),
        Key("TransactionMessageRetryInterval", i, "60"),
        Key("UnlockConnectorOnEVSideDisconnect", b, "false"),
        Key("WebSocketPingInterval", i, "30", reboot=True),
        # Local Auth List Management (9.2)
        Key("LocalAuthListEnabled", b, "true", profile="LocalAuthListManagement"),
        Key("LocalAuthListMaxLength", i, "1000", readonly=True, profile="LocalAuthListManagement"),
        Key("SendLocalListMaxLength", i, "1000", readonly=True, profile="LocalAuthListManagement"),
        # Reservation (9.3)
        Key("ReserveConnectorZeroSupported", b, "true", readonly=True, profile="Reservation"),
        # Smart Charging (9.4)
        Key("ChargeProfileMaxStackLevel", i, "10", readonly=True, profile="SmartCharging"),
        Key("ChargingScheduleAllowedChargingRateUnit", c, "Current,Power", readonly=True,
            profile="SmartCharging"),
        Key("ChargingScheduleMaxPeriods", i, "48", readonly=True, profile="SmartCharging"),
        Key("ConnectorSwitch3to1PhaseSupported", b, "false", readonly=True,
            profile="SmartCharging"),
        Key("MaxChargingProfilesInstalled", i, "20", readonly=True, profile="SmartCharging"),
        # Security whitepaper (edition 2) keys used by the security profiles
        Key("AuthorizationKey", s, "", profile="Security", secret=True),
        Key("SecurityProfile", i, "0", maximum=3, profile="Security"),
        Key("CpoName", s, "", profile="Security"),
        Key("AdditionalRootCertificateCheck", b, "false", readonly=True, profile="Security"),
        Key("CertificateSignedMaxChainSize", i, "10000", readonly=True, profile="Security"),
        Key("CertificateStoreMaxLength", i, "10", readonly=True, profile="Security"),
    )


KEYS: dict[str, Key] = {k.name: k for k in _keys()}
