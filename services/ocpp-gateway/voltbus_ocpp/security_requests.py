"""The central system's security requests, version-neutral: certificate management
(CertificateSigned, InstallCertificate, GetInstalledCertificateIds, DeleteCertificate), the
station's SignCertificate, GetLog with its upload and status, and the signed firmware update with
its download, signature check, install and status. The OCPP 1.6 security extension
(protocol/v16/security.py) and OCPP 2.0.1 (protocol/v201/security.py) each map their wire onto
these; the statuses are the same words in both (1.6 SignedFirmwareStatusNotification and 2.0.1
FirmwareStatusNotification share their enumeration; LogStatusNotification too).

What differs between the versions comes from `SecurityLimits`: the configuration (1.6 keys or
2.0.1 device-model variables) that bounds the chain, the certificate store and names the CPO.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from voltbus_ocpp.adapter import StationCore
from voltbus_ocpp.certificates import (
    CENTRAL_SYSTEM_ROOT,
    MANUFACTURER_ROOT,
    CertificateError,
    HashData,
    RevokedError,
    check_revocation,
    decode_signature,
    load_chain,
    load_crls,
    verify_chain,
    verify_signature,
)
from voltbus_ocpp.maintenance import (
    VERIFY_FAILED_EXIT,
    build_archive,
    download,
    upload,
    verify_image,
)
from voltbus_ocpp.messages import LogStatus, Message, SignCertificateRequest, SignedFirmwareStatus
from voltbus_ocpp.protocol.wire_time import parse_time

log = logging.getLogger(__name__)

LOG_BUSY = frozenset({"Uploading"})
FIRMWARE_FINAL = frozenset({"DownloadFailed", "InvalidSignature", "InstallationFailed",
                            "InstallVerificationFailed"})  # through the outbox, never lost
FIRMWARE_BUSY = frozenset({"DownloadScheduled", "Downloading", "Downloaded",
                           "SignatureVerified", "InstallScheduled", "Installing",
                           "InstallRebooting"})


@dataclass(frozen=True)
class SecurityLimits:
    """What a version's configuration says about certificates: each a reader, called when the
    value is needed (the central system may change the key or variable at any time)."""

    security_profile: Callable[[], int]
    """The profile in force."""
    max_chain_chars: Callable[[], int]
    """The longest CertificateSigned chain taken (1.6 CertificateSignedMaxChainSize,
    2.0.1 SecurityCtrlr.MaxCertificateChainSize)."""
    max_roots: Callable[[], int]
    """The most root certificates kept (1.6 CertificateStoreMaxLength, 2.0.1
    SecurityCtrlr.CertificateEntries' maxLimit)."""
    additional_root_check: Callable[[], bool]
    """1.6 AdditionalRootCertificateCheck: a new CentralSystemRootCertificate must be
    signed by the installed one, replaces it and keeps it as the fallback."""
    cpo_name: Callable[[], str]
    """The CSR's organization (1.6 CpoName, 2.0.1 SecurityCtrlr.OrganizationName)."""


@dataclass(frozen=True)
class FirmwareRequest:
    """A signed firmware update, in either version's words."""

    request_id: int
    location: str
    retrieve_at: datetime
    install_at: datetime | None
    signing_certificate: str
    signature: str
    retries: int
    retry_interval_s: int


def optional_time(value: str | None) -> datetime | None:
    """An optional wire timestamp."""
    return parse_time(value) if value else None


class SecurityRequests:
    """The central system's security requests, answered with the station core."""

    def __init__(self, core: StationCore, limits: SecurityLimits) -> None:
        self.core = core
        self.limits = limits
        self.security = core.security
        self._reconnect = False
        self._job: Any = None
        self.jobs = core.security.jobs  # kept by the station: they outlive one connection

    def send(self, message: Message) -> None:
        """A live message to the central system."""
        self.core.send(message)

    def after_change(self) -> None:
        """Reconnect (a new profile or client certificate) once the answer is out."""
        if self._reconnect:
            self._reconnect = False
            self.core.spawn(self.core.reconnect())

    def raise_profile(self, new: int) -> str:
        """A new SecurityProfile (1.6 ChangeConfiguration, 2.0.1 SetNetworkProfile): Accepted
        (the station reconnects once the answer is out) or Rejected (a lower one: never
        downgraded; or its key or certificates missing), see security.SecurityProfiles.change.
        """
        changed = new != self.limits.security_profile()
        status = self.security.profiles.change(new)
        if status == "Accepted" and changed:
            self._reconnect = True
            self.security.events.record("ReconfigurationOfSecurityParameters",
                                        f"SecurityProfile set to {new}")
        return status

    def log_status(self) -> LogStatus:
        """What a triggered LogStatusNotification says: the upload running, else Idle."""
        status, request_id = self.jobs["log"]
        return LogStatus(status, request_id) if status in LOG_BUSY else LogStatus("Idle", None)

    def firmware_status(self) -> SignedFirmwareStatus:
        """What a triggered firmware status says: the update running, else Idle."""
        status, request_id = self.jobs["firmware"]
        return (SignedFirmwareStatus(status, request_id) if status in FIRMWARE_BUSY
                else SignedFirmwareStatus("Idle", None))

    # --- certificates ------------------------------------------------------------------------

    def sign_certificate(self) -> None:
        """A new key and its CSR, sent as SignCertificate (the key stays pending, 0600)."""
        csr = self.security.certs.make_csr(self.core.id, self.limits.cpo_name())
        self.send(SignCertificateRequest(csr))

    def certificate_signed(self, chain: str) -> str:
        """CertificateSigned: Accepted when the chain is for the pending key and checks out
        against the installed CentralSystemRootCertificates; with profile 3 the station then
        reconnects with it."""
        limit = self.limits.max_chain_chars()
        if len(chain) > limit:
            log.warning("CertificateSigned rejected: the chain is %d characters (at most %d)",
                        len(chain), limit)
            return "Rejected"
        try:
            self.security.certs.accept_signed(
                chain, common_name=self.core.id,
                extra_roots=self.security.profiles.configured_roots())
        except (CertificateError, ValueError, OSError) as exc:
            log.warning("%s: CertificateSigned rejected: %s", self.core.id, exc)
            self.security.events.record("InvalidChargePointCertificate", str(exc))
            return "Rejected"
        log.info("%s: charge point certificate installed", self.core.id)
        if self.limits.security_profile() == 3:
            self._reconnect = True
        return "Accepted"

    def install_certificate(self, kind: str, pem: str) -> str:
        """InstallCertificate: Accepted, Rejected or Failed."""
        certs = self.security.certs
        certs.max_roots = self.limits.max_roots()
        status = certs.install(kind, pem, replace=self.limits.additional_root_check())
        if status == "Accepted":
            self.security.events.record("ReconfigurationOfSecurityParameters",
                                        f"{kind} installed")
        return status

    def installed_ids(self, kind: str) -> list[dict[str, str]]:
        """GetInstalledCertificateIds: the hash data of each installed root of the type."""
        return [h.wire() for h in self.security.certs.ids(kind)]

    def delete_certificate(self, data: dict[str, Any]) -> str:
        """DeleteCertificate: Accepted, NotFound, or Failed (the last
        CentralSystemRootCertificate while a TLS profile depends on it, or a file error)."""
        certs = self.security.certs
        found = certs.find(HashData(data["issuerNameHash"], data["issuerKeyHash"],
                                    data["serialNumber"], data["hashAlgorithm"]))
        if found is None:
            return "NotFound"
        kind, path = found
        if kind == CENTRAL_SYSTEM_ROOT and self.limits.security_profile() >= 2 and len(
                certs.root_files(CENTRAL_SYSTEM_ROOT)) == 1 and (
                self.core.settings.csms_ca_file is None):
            log.warning("%s: DeleteCertificate refused: the last CentralSystemRootCertificate "
                        "(SecurityProfile %d needs it)", self.core.id,
                        self.limits.security_profile())
            return "Failed"
        try:
            path.unlink()
        except OSError as exc:
            log.error("%s: DeleteCertificate failed: %s", self.core.id, exc)
            return "Failed"
        self.security.events.record("ReconfigurationOfSecurityParameters", f"{kind} deleted")
        return "Accepted"

    # --- GetLog --------------------------------------------------------------------------------

    def _set(self, job: str, status: str, request_id: int | None) -> None:
        self.jobs[job] = (status, request_id)
        if job == "log":
            self.send(LogStatus(status, request_id))
        elif status in FIRMWARE_FINAL:
            self.security.firmware_status(status, request_id)
        else:
            self.send(SignedFirmwareStatus(status, request_id))

    def _replace(self, job: str) -> bool:
        """Cancel the job of that kind still running; True if there was one."""
        task = self.jobs["tasks"].get(job)
        if task is not None and not task.done():
            task.cancel()
            return True
        return False

    def get_log(self, log_type: str, request_id: int, log_parameters: dict[str, Any],
                retries: int | None, retry_interval_s: int | None) -> tuple[str, str | None]:
        """GetLog: (Accepted or AcceptedCanceled, the file name); Rejected for a location
        that cannot be uploaded to. The upload starts after the reply. `log_parameters` is the
        request's `log` as the ocpp package hands it over (remote_location, oldest_timestamp,
        latest_timestamp: the same LogParametersType in the 1.6 extension and 2.0.1)."""
        location = str(log_parameters["remote_location"])
        retries = retries or 0
        retry_interval_s = retry_interval_s or 30
        if urlparse(location).scheme not in ("http", "https", "ftp"):
            return "Rejected", None
        start = optional_time(log_parameters.get("oldest_timestamp"))
        stop = optional_time(log_parameters.get("latest_timestamp"))
        name = f"{log_type}-{self.core.id}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.tar.gz"
        canceled = self._replace("log")
        self._job = ("log", self._upload_log(log_type, request_id, location, name, retries,
                                             retry_interval_s, start, stop))
        return ("AcceptedCanceled" if canceled else "Accepted"), name

    async def _upload_log(self, log_type: str, request_id: int, location: str, name: str,
                          retries: int, retry_interval_s: int, start: datetime | None,
                          stop: datetime | None) -> None:
        maintenance = self.core.maintenance
        if log_type == "SecurityLog":
            files = {"security.log": self.security.events.log_text(start, stop)}
        else:
            files = {"log.txt": maintenance.ring.between(start, stop), **maintenance.snapshot()}
        data = build_archive(files)
        for attempt in range(max(1, retries + 1)):
            self._set("log", "Uploading", request_id)
            try:
                await asyncio.to_thread(upload, location, name, data)
            except (OSError, ValueError) as exc:
                log.warning("%s: %s upload to %s failed (attempt %d): %s", self.core.id,
                            log_type, location, attempt + 1, exc)
                if attempt < retries:
                    await asyncio.sleep(retry_interval_s * self.core.settings.time_scale)
                continue
            self._set("log", "Uploaded", request_id)
            return
        self._set("log", "UploadFailure", request_id)

    # --- the signed firmware update -----------------------------------------------------------

    def signed_update_firmware(self, request: FirmwareRequest) -> str:
        """1.6 SignedUpdateFirmware, 2.0.1 UpdateFirmware: InvalidCertificate when the signing
        certificate does not chain to an installed ManufacturerRootCertificate,
        RevokedCertificate when it is on its issuer's CRL (VOLTBUS_CRL_FILE); else Accepted
        (AcceptedCanceled when it replaces one running), the download starting after the reply.
        """
        try:
            chain = load_chain(request.signing_certificate)
            roots = self.security.certs.roots(MANUFACTURER_ROOT)
            verify_chain(chain, roots)
            check_revocation(chain, roots, load_crls(self.core.settings.crl_file))
        except RevokedError as exc:
            log.warning("%s: SignedUpdateFirmware: signing certificate revoked: %s",
                        self.core.id, exc)
            self.security.events.record("InvalidFirmwareSigningCertificate", str(exc))
            return "RevokedCertificate"
        except CertificateError as exc:
            log.warning("%s: SignedUpdateFirmware: signing certificate refused: %s",
                        self.core.id, exc)
            self.security.events.record("InvalidFirmwareSigningCertificate", str(exc))
            return "InvalidCertificate"
        canceled = self._replace("firmware")
        self._job = ("firmware", self._firmware(
            request.request_id, request.location, request.retrieve_at, request.install_at,
            chain[0], request.signature, request.retries, request.retry_interval_s))
        return "AcceptedCanceled" if canceled else "Accepted"

    async def _firmware(self, request_id: int, location: str, retrieve_at: datetime,
                        install_at: datetime | None, signer: Any, signature: str, retries: int,
                        retry_interval_s: int) -> None:
        delay = (retrieve_at - datetime.now(UTC)).total_seconds()
        if delay > 0:
            self._set("firmware", "DownloadScheduled", request_id)
            await asyncio.sleep(delay)
        work = self.core.settings.station_dir(self.core.id) / "firmware"
        work.mkdir(parents=True, exist_ok=True)
        target = work / (Path(urlparse(location).path).name or "firmware.bin")
        for attempt in range(max(1, retries + 1)):
            self._set("firmware", "Downloading", request_id)
            try:
                await asyncio.to_thread(download, location, target)
                break
            except (OSError, ValueError) as exc:
                log.warning("%s: firmware download from %s failed (attempt %d): %s",
                            self.core.id, location, attempt + 1, exc)
                if attempt < retries:
                    await asyncio.sleep(retry_interval_s * self.core.settings.time_scale)
        else:
            self._set("firmware", "DownloadFailed", request_id)
            return
        self._set("firmware", "Downloaded", request_id)
        from cryptography.exceptions import InvalidSignature  # loaded when a firmware is signed
        try:
            verify_signature(signer, decode_signature(signature), target.read_bytes())
        except InvalidSignature as exc:
            log.error("%s: firmware %s: the signature does not verify (%s); not installed",
                      self.core.id, target.name, str(exc) or "wrong signature")
            target.unlink(missing_ok=True)
            self.security.events.record("InvalidFirmwareSignature", target.name)
            self._set("firmware", "InvalidSignature", request_id)
            return
        self._set("firmware", "SignatureVerified", request_id)
        refused = await asyncio.to_thread(verify_image,
                                          self.core.settings.firmware_verify_command, target)
        if refused:  # the image is refused before anything is installed
            log.error("%s: signed firmware %s refused before the install: %s", self.core.id,
                      target.name, refused)
            target.unlink(missing_ok=True)
            self._set("firmware", "InstallVerificationFailed", request_id)
            return
        if install_at is not None and (wait := (install_at - datetime.now(UTC))
                                       .total_seconds()) > 0:
            self._set("firmware", "InstallScheduled", request_id)
            await asyncio.sleep(wait)
        # never install under a running transaction (the model has no transaction-ended hook)
        while any(c.facts.tx is not None for c in self.core.model.connectors.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        command = self.core.settings.firmware_install_command
        if not command:
            log.warning("%s: signed firmware %s verified; no VOLTBUS_FIRMWARE_INSTALL_COMMAND",
                        self.core.id, target)
            self._set("firmware", "InstallationFailed", request_id)
            return
        self._set("firmware", "Installing", request_id)
        done = await asyncio.to_thread(subprocess.run, [*shlex.split(command), str(target)],
                                       check=False)
        if done.returncode != 0:
            log.warning("%s: firmware install hook exited %d", self.core.id, done.returncode)
            self._set("firmware", "InstallVerificationFailed"
                      if done.returncode == VERIFY_FAILED_EXIT else "InstallationFailed",
                      request_id)
            return
        # the new firmware runs after the restart: Installed (and FirmwareUpdated) follow its
        # accepted BootNotification (security.StationSecurity.after_boot), as for UpdateFirmware
        self.security.signed_firmware_installed(request_id)
        self._set("firmware", "InstallRebooting", request_id)
        self.core.restart_after_install()

    def start_job(self) -> None:
        """Start the job a request prepared, once its answer is out."""
        job, self._job = self._job, None
        if job is None:
            return
        kind, coro = job
        task = asyncio.get_running_loop().create_task(coro)
        self.jobs["tasks"][kind] = task

    def after_certificate_signed(self) -> None:
        """Reconnect with the new certificate (profile 3) once the answer is out."""
        self.after_change()
