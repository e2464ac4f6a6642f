# mypy: disable-error-code="misc,untyped-decorator"
# (the ocpp package is untyped: its ChargePoint and @on are Any to mypy)
"""The OCPP 1.6 security extension (Security Whitepaper edition 2) on the central system's side:
the station-initiated SecurityEventNotification, SignCertificate, LogStatusNotification and
SignedFirmwareStatusNotification, answered and checked. With `CsmsBehaviour.certificate_authority`
set, an accepted SignCertificate is signed by that CA and sent back as CertificateSigned (its
answer is kept in `CentralSystem.certificates_signed`). The CSMS-initiated requests
(CertificateSigned, InstallCertificate, ...) go out through `send_action` like every other.
The ocpp package (2.1.0) ships the edition 2 JSON schemas, so every frame is validated.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ocpp.routing import after, on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from voltbus_devcsms import rules

log = logging.getLogger(__name__)

SECURITY_EVENTS = frozenset({
    "FirmwareUpdated", "FailedToAuthenticateAtCentralSystem", "CentralSystemFailedToAuthenticate",
    "SettingSystemTime", "StartupOfTheDevice", "ResetOrReboot", "SecurityLogWasCleared",
    "ReconfigurationOfSecurityParameters", "MemoryExhaustion", "InvalidMessages",
    "AttemptedReplayAttacks", "TamperDetectionActivated", "InvalidFirmwareSignature",
    "InvalidFirmwareSigningCertificate", "InvalidCentralSystemCertificate",
    "InvalidChargePointCertificate", "InvalidTLSVersion", "InvalidTLSCipherSuite"})
"""The whitepaper's security events (appendix 1); others are allowed but recorded."""


def check_csr(pem: str, station: str) -> str | None:
    """Why a SignCertificate CSR is not acceptable (whitepaper A00.FR.4xx: a PEM PKCS#10 request,
    self-signed by its key, with the charge point's identity as CN), or None."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError as exc:
        return f"not a PEM certificate signing request: {exc}"
    if not csr.is_signature_valid:
        return "the CSR's signature does not verify"
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != station:
        return f"the CSR's CN is not the charge point identity {station!r}"
    return None


def sign_csr(pem: str, ca_cert_pem: bytes, ca_key_pem: bytes, days: int = 30) -> str:
    """The CSR signed by the CA: the leaf certificate, then the CA certificate (PEM)."""
    csr = x509.load_pem_x509_csr(pem.encode())
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_cert.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    return (cert.public_bytes(serialization.Encoding.PEM)
            + ca_cert.public_bytes(serialization.Encoding.PEM)).decode()


class JobChecks:
    """The checks of a GetLog's / firmware update's notifications and the answer to and signing
    of a SignCertificate, the same in 1.6 and 2.0.1."""

    id: str
    csms: Any
    if TYPE_CHECKING:  # from SessionBase
        def check(self, rule: str, problem: str | None) -> None: ...
        def check_time(self, *stamps: object) -> None: ...

    def _check_job(self, kind: str, request: str, status: str, request_id: int | None) -> None:
        if request_id is None:
            self.check(rules.JOB_REQUEST_ID, None if status == "Idle" else
                       f"{status} without the requestId of its request")
            return
        taken = self.csms.requests16.get(self.id, set())  # 1.6 and 2.0.1 jobs alike
        self.check(rules.JOB_REQUEST_ID, None if (kind, request_id) in taken else
                   f"requestId {request_id} names no {request} the station accepted")

    def _check_firmware(self, request: str, status: str, request_id: int | None) -> None:
        """The job's requestId, and each state in the signed update's order (L01.FR.01)."""
        self._check_job("firmware", request, status, request_id)
        if request_id is not None:
            seen = self.csms.signed_firmware16
            self.check(rules.SIGNED_FIRMWARE_STATUS, rules.signed_firmware_status(
                seen.get((self.id, request_id)), status))
            seen[(self.id, request_id)] = status

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.csms.background.add(task)
        task.add_done_callback(self.csms.background.discard)

    def _csr_status(self, problem: str | None) -> str:
        """SignCertificate's answer (bad-csr checked): Rejected for a bad CSR, else the
        behaviour's."""
        self.check(rules.BAD_CSR, problem)
        return "Rejected" if problem else str(self.csms.behaviour.sign_certificate_status)

    def _sign_later(self, csr: str, problem: str | None, signed: Any) -> None:
        """After an accepted SignCertificate: the CSR signed by the behaviour's CA (if any) and
        sent in `signed(chain)` (the version's CertificateSigned), its answer recorded."""
        ca = self.csms.behaviour.certificate_authority
        if ca is None or problem or self.csms.behaviour.sign_certificate_status != "Accepted":
            return
        self._spawn(self._send_signed(signed(sign_csr(csr, *ca))))

    async def _send_signed(self, request: Any) -> None:
        answer = await self.csms.send(self.id, request)
        self.csms.certificates_signed.setdefault(self.id, []).append(answer)
        self.csms.history_changed()


class SecurityMixin16(JobChecks):
    """Mixed into the 1.6 StationSession (before ChargePoint in the bases)."""

    @on(Action.security_event_notification)
    def on_security_event(self, type: str, timestamp: str, tech_info: str | None = None,
                          **_: Any) -> call_result.SecurityEventNotification:
        self.check_time(timestamp)
        self.check(rules.UNKNOWN_SECURITY_EVENT, None if type in SECURITY_EVENTS else
                   f"{type!r} is not one of the whitepaper's security events")
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, csr: str, **_: Any) -> call_result.SignCertificate:
        return call_result.SignCertificate(status=self._csr_status(check_csr(csr, self.id)))

    @after(Action.sign_certificate)
    def after_sign_certificate(self, csr: str, **_: Any) -> None:
        self._sign_later(csr, check_csr(csr, self.id),
                         lambda chain: call.CertificateSigned(certificate_chain=chain))

    @on(Action.log_status_notification)
    def on_log_status(self, status: str, request_id: int | None = None,
                      **_: Any) -> call_result.LogStatusNotification:
        self._check_job("log", "GetLog", status, request_id)
        return call_result.LogStatusNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status(self, status: str, request_id: int | None = None,
                                  **_: Any) -> call_result.SignedFirmwareStatusNotification:
        self._check_firmware("SignedUpdateFirmware", status, request_id)
        return call_result.SignedFirmwareStatusNotification()
