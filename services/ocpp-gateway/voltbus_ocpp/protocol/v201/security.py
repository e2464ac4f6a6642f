# mypy: disable-error-code="misc,untyped-decorator"
# (the ocpp package is untyped: its ChargePoint and @on are Any to mypy)
"""OCPP 2.0.1 blocks A (security), M (certificate management), N01 (GetLog) and L01 (secure
firmware update) on the version-neutral core the 1.6 security extension uses
(security_requests.py, certificates.py, security.py): this module only maps the 2.0.1 wire.

- A02/A03 CertificateSigned for the ChargingStationCertificate (the key of the pending CSR, 0600;
  at SecurityProfile 3 the station reconnects with it); a V2GCertificate is Rejected (no ISO 15118).
- M03-M05 GetInstalledCertificateIds / DeleteCertificate / InstallCertificate for
  CSMSRootCertificate and ManufacturerRootCertificate (the 1.6 CentralSystemRootCertificate and
  ManufacturerRootCertificate stores); V2GRootCertificate and MORootCertificate are Rejected on
  install and never found.
- N01 GetLog DiagnosticsLog/SecurityLog with LogStatusNotification.
- L01 UpdateFirmware: the signing certificate must chain to an installed
  ManufacturerRootCertificate (InvalidCertificate and the InvalidFirmwareSigningCertificate
  event otherwise), the signature is checked after the download (InvalidSignature and the
  InvalidFirmwareSignature event), FirmwareStatusNotification on every step with its requestId.
  An UpdateFirmware without signingCertificate and signature (L02, unsecure) is Rejected: secure
  by default.
- A05 SetNetworkProfile raises SecurityCtrlr.SecurityProfile: a lower profile is Rejected (no
  downgrade), so is one whose key or certificates are missing (security.SecurityProfiles), a
  connection that is not OCPP20 over JSON, or a slot beyond the one voltbus has. Deviation from
  B09/A05, said in docs/ocpp.md: the station reconnects with the new profile right after the
  answer (no NetworkConfigurationPriority and Reset step), to VOLTBUS_CSMS_URL /
  VOLTBUS_CSMS_TLS_URL (ocppCsmsUrl is not taken over OCPP); when the new profile cannot
  connect 3 times it falls back to the previous one.
- TriggerMessage SignChargingStationCertificate, LogStatusNotification, FirmwareStatusNotification
  (Idle when nothing runs); SignV2GCertificate / SignCombinedCertificate are NotImplemented.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import call_result

from voltbus_ocpp.adapter import StationCore
from voltbus_ocpp.certificates import CENTRAL_SYSTEM_ROOT, MANUFACTURER_ROOT
from voltbus_ocpp.protocol.v201.variables import Variables
from voltbus_ocpp.protocol.wire_time import parse_time
from voltbus_ocpp.security_requests import (
    FirmwareRequest,
    SecurityLimits,
    SecurityRequests,
    optional_time,
)

log = logging.getLogger(__name__)

# 2.0.1 certificate use -> the store's root type (the 1.6 names); the others are not kept
ROOTS = {"CSMSRootCertificate": CENTRAL_SYSTEM_ROOT,
         "ManufacturerRootCertificate": MANUFACTURER_ROOT}
TRIGGERS = frozenset({"SignChargingStationCertificate", "LogStatusNotification",
                      "FirmwareStatusNotification"})
# the neutral security events carry the 1.6 whitepaper's names; 2.0.1 (part 2 appendix 1) renames
# the ones naming the central system or the charge point
EVENT_NAMES = {"InvalidChargePointCertificate": "InvalidChargingStationCertificate",
               "InvalidCentralSystemCertificate": "InvalidCsmsCertificate",
               "FailedToAuthenticateAtCentralSystem": "FailedToAuthenticateAtCsms",
               "CentralSystemFailedToAuthenticate": "CsmsFailedToAuthenticate"}


def _limits201(variables: Variables) -> SecurityLimits:
    """The SecurityCtrlr variables that bound certificates; AdditionalRootCertificateCheck is
    not in this device model: false."""
    return SecurityLimits(
        security_profile=lambda: variables.security_profile,
        max_chain_chars=lambda: variables.max_certificate_chain_size,
        max_roots=lambda: variables.certificate_entries,
        additional_root_check=lambda: False,
        cpo_name=lambda: variables.organization_name)


class V201Security(SecurityRequests):
    """The security requests with the 2.0.1 variables."""

    def __init__(self, core: StationCore, variables: Variables) -> None:
        super().__init__(core, _limits201(variables))

    def trigger(self, message: str) -> None:
        """Send what an accepted TriggerMessage of TRIGGERS asked for."""
        if message == "SignChargingStationCertificate":
            self.sign_certificate()
        elif message == "LogStatusNotification":
            self.send(self.log_status())
        else:
            self.send(self.firmware_status())


class SecurityHandlers:
    """Mixed into the 2.0.1 charge point (before ChargePoint in its bases); `security` is its
    V201Security."""

    security: V201Security

    @on("CertificateSigned")
    def on_certificate_signed(self, certificate_chain: str, certificate_type: str | None = None,
                              **_: Any) -> call_result.CertificateSigned:
        if certificate_type == "V2GCertificate":  # no ISO 15118 on this hardware
            return call_result.CertificateSigned(status="Rejected", status_info={
                "reason_code": "NotSupported"})
        return call_result.CertificateSigned(
            status=self.security.certificate_signed(certificate_chain))

    @after("CertificateSigned")
    def after_certificate_signed(self, **_: Any) -> None:
        self.security.after_change()

    @on("InstallCertificate")
    def on_install_certificate(self, certificate_type: str, certificate: str,
                               **_: Any) -> call_result.InstallCertificate:
        kind = ROOTS.get(certificate_type)
        if kind is None:  # M05: V2G/MO roots are for ISO 15118, which this station lacks
            return call_result.InstallCertificate(status="Rejected", status_info={
                "reason_code": "NotSupported"})
        return call_result.InstallCertificate(
            status=self.security.install_certificate(kind, certificate))

    @on("GetInstalledCertificateIds")
    def on_installed_ids(self, certificate_type: list[str] | None = None,
                         **_: Any) -> call_result.GetInstalledCertificateIds:
        chains = [{"certificate_type": use, "certificate_hash_data": data}
                  for use, kind in ROOTS.items() if certificate_type is None
                  or use in certificate_type for data in self.security.installed_ids(kind)]
        if not chains:  # M03.FR.02
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(status="Accepted",
                                                      certificate_hash_data_chain=chains)

    @on("DeleteCertificate")
    def on_delete_certificate(self, certificate_hash_data: dict[str, Any],
                              **_: Any) -> call_result.DeleteCertificate:
        from ocpp.charge_point import snake_to_camel_case
        return call_result.DeleteCertificate(
            status=self.security.delete_certificate(snake_to_camel_case(certificate_hash_data)))

    @on("GetLog")
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int,
                   retries: int | None = None, retry_interval: int | None = None,
                   **_: Any) -> call_result.GetLog:
        status, name = self.security.get_log(log_type, request_id, log, retries, retry_interval)
        return call_result.GetLog(status=status, filename=name)

    @after("GetLog")
    def after_get_log(self, **_: Any) -> None:
        self.security.start_job()

    @on("UpdateFirmware")
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any],
                           retries: int | None = None, retry_interval: int | None = None,
                           **_: Any) -> call_result.UpdateFirmware:
        if not firmware.get("signing_certificate") or not firmware.get("signature"):
            log.warning("UpdateFirmware %d without a signing certificate and signature: "
                        "Rejected (only signed firmware is installed, L01)", request_id)
            return call_result.UpdateFirmware(status="Rejected", status_info={
                "reason_code": "UnsignedFirmware"})
        return call_result.UpdateFirmware(status=self.security.signed_update_firmware(
            FirmwareRequest(request_id, firmware["location"],
                            parse_time(firmware["retrieve_date_time"]),
                            optional_time(firmware.get("install_date_time")),
                            firmware["signing_certificate"], firmware["signature"],
                            retries or 0, retry_interval or 30)))

    @after("UpdateFirmware")
    def after_update_firmware(self, **_: Any) -> None:
        self.security.start_job()

    @on("SetNetworkProfile")
    def on_set_network_profile(self, configuration_slot: int, connection_data: dict[str, Any],
                               **_: Any) -> call_result.SetNetworkProfile:
        new = connection_data["security_profile"]
        problem = None
        if configuration_slot not in (0, 1):
            problem = f"configurationSlot {configuration_slot}: voltbus has one connection"
        elif connection_data["ocpp_version"] != "OCPP20" or (
                connection_data["ocpp_transport"] != "JSON"):
            problem = "only OCPP20 over JSON"
        elif not 1 <= new <= 3:
            problem = f"securityProfile {new} is not 1, 2 or 3"
        status = "Rejected" if problem else self.security.raise_profile(new)
        log.warning("SetNetworkProfile securityProfile %s: %s%s", new, status,
                    f" ({problem})" if problem else "")
        return call_result.SetNetworkProfile(status=status)

    @after("SetNetworkProfile")
    def after_set_network_profile(self, **_: Any) -> None:
        self.security.after_change()
