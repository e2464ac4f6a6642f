# mypy: disable-error-code="misc,untyped-decorator"
# (the ocpp package is untyped: its ChargePoint and @on are Any to mypy)
"""OCPP 2.0.1 blocks A, N01 and L01 on the central system's side: the station-initiated
SecurityEventNotification (A04), SignCertificate (A02/A03), LogStatusNotification (N01) and
FirmwareStatusNotification (L01), answered and checked like the 1.6 security extension's
(security16.py: the same CSR check and signing, the same job and firmware-order rules). With
`CsmsBehaviour.certificate_authority` set, an accepted SignCertificate is signed by that CA and
sent back as a 2.0.1 CertificateSigned (ChargingStationCertificate), its answer kept in
`CentralSystem.certificates_signed`.

Rules, each citing the part 2 use case or requirement it checks:
- unknown-security-event: the type is none of part 2 appendix 1's security events (A04; the
  2.0.1 names: InvalidCsmsCertificate, FailedToAuthenticateAtCsms, ...);
- bad-csr: SignCertificate's csr is no PEM PKCS#10 request self-signed by its key with the
  station's identity as CN (A02/A03: the CSR the CSMS forwards to its CA), or its
  certificateType is V2GCertificate from a station that asked for a ChargingStationCertificate;
- job-request-id: a LogStatusNotification / FirmwareStatusNotification with the requestId of no
  GetLog / UpdateFirmware the station accepted, or without one when not Idle (N01, L01);
- signed-firmware-status-order: L01.FR.01, every state of the update is sent, in the order of
  L01's sequence (Downloading, Downloaded, SignatureVerified | InvalidSignature, Installing, ...),
  nothing after a final status of the same requestId.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from voltbus_devcsms import rules
from voltbus_devcsms.security16 import JobChecks, check_csr

SECURITY_EVENTS_201 = frozenset({
    "FirmwareUpdated", "FailedToAuthenticateAtCsms", "CsmsFailedToAuthenticate",
    "SettingSystemTime", "StartupOfTheDevice", "ResetOrReboot", "SecurityLogWasCleared",
    "ReconfigurationOfSecurityParameters", "MemoryExhaustion", "InvalidMessages",
    "AttemptedReplayAttacks", "TamperDetectionActivated", "InvalidFirmwareSignature",
    "InvalidFirmwareSigningCertificate", "InvalidCsmsCertificate",
    "InvalidChargingStationCertificate", "InvalidTLSVersion", "InvalidTLSCipherSuite",
    "MaintenanceLoginAccepted", "MaintenanceLoginFailed"})
"""OCPP 2.0.1 part 2 appendix 1's security events; others are allowed but recorded."""


class SecurityMixin201(JobChecks):
    """Mixed into the 2.0.1 StationSession201 (before ChargePoint in the bases)."""

    @on(Action.security_event_notification)
    def on_security_event(self, type: str, timestamp: str,
                          **_: Any) -> call_result.SecurityEventNotification:
        self.check_time(timestamp)
        self.check(rules.UNKNOWN_SECURITY_EVENT, None if type in SECURITY_EVENTS_201 else
                   f"{type!r} is not one of OCPP 2.0.1's security events (A04, appendix 1)")
        return call_result.SecurityEventNotification()

    def _csr_problem(self, csr: str, certificate_type: str | None) -> str | None:
        if certificate_type == "V2GCertificate":
            return "A02: a V2GCertificate CSR from a station without ISO 15118"
        return check_csr(csr, self.id)

    @on(Action.sign_certificate)
    def on_sign_certificate(self, csr: str, certificate_type: str | None = None,
                            **_: Any) -> call_result.SignCertificate:
        return call_result.SignCertificate(
            status=self._csr_status(self._csr_problem(csr, certificate_type)))

    @after(Action.sign_certificate)
    def after_sign_certificate(self, csr: str, certificate_type: str | None = None,
                               **_: Any) -> None:
        self._sign_later(csr, self._csr_problem(csr, certificate_type),
                         lambda chain: call.CertificateSigned(
                             certificate_chain=chain,
                             certificate_type="ChargingStationCertificate"))

    @on(Action.log_status_notification)
    def on_log_status(self, status: str, request_id: int | None = None,
                      **_: Any) -> call_result.LogStatusNotification:
        self._check_job("log", "GetLog", status, request_id)
        return call_result.LogStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str, request_id: int | None = None,
                           **_: Any) -> call_result.FirmwareStatusNotification:
        self._check_firmware("UpdateFirmware", status, request_id)  # L01.FR.01
        return call_result.FirmwareStatusNotification()
