# mypy: disable-error-code="misc,untyped-decorator"
# (the ocpp package is untyped: its ChargePoint and @on are Any to mypy)
"""The OCPP 1.6 security extension (Security Whitepaper edition 2) on top of the 1.6 charge
point: SecurityProfile changes, ExtendedTriggerMessage, certificate management
(CertificateSigned, InstallCertificate, GetInstalledCertificateIds, DeleteCertificate),
GetLog with LogStatusNotification, and SignedUpdateFirmware with
SignedFirmwareStatusNotification. The station-initiated SignCertificate and
SecurityEventNotification go out through the station's messenger (messages.py, records.py).

The certificates, the profile's route and the security events are version-neutral
(certificates.py, security.py); this module speaks their 1.6 wire.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ocpp.routing import after, on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from voltbus_ocpp.adapter import StationCore
from voltbus_ocpp.certificates import (
    CENTRAL_SYSTEM_ROOT,
    MANUFACTURER_ROOT,
    CertificateError,
    HashData,
    decode_signature,
    load_chain,
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
from voltbus_ocpp.protocol.v16 import triggers
from voltbus_ocpp.protocol.v16.config_store import ConfigStore
from voltbus_ocpp.protocol.v16.handlers import StationApi, V16ChargePoint
from voltbus_ocpp.protocol.wire_time import parse_time
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)

EXTENDED_TRIGGERS = frozenset({"BootNotification", "LogStatusNotification",
                               "FirmwareStatusNotification", "Heartbeat", "MeterValues",
                               "SignChargePointCertificate", "StatusNotification"})
LOG_BUSY = frozenset({"Uploading"})
FIRMWARE_FINAL = frozenset({"DownloadFailed", "InvalidSignature", "InstallationFailed",
                            "InstallVerificationFailed"})  # through the outbox, never lost
FIRMWARE_BUSY = frozenset({"DownloadScheduled", "Downloading", "Downloaded",
                           "SignatureVerified", "InstallScheduled", "Installing",
                           "InstallRebooting"})


def initial_profile(config: ConfigStore, store: Store, settings: GatewaySettings) -> None:
    """A station whose SecurityProfile was never set (neither by the central system nor in
    VOLTBUS_OCPP_CONFIG) reports the profile its settings amount to: 3 with wss://, a CA and a
    client certificate; 2 with wss://, a CA and an AuthorizationKey; 1 with ws:// and a key;
    else 0 (as configured). Not stored: a later change of the settings changes it."""
    stored = store.db.execute("SELECT value FROM config WHERE key='SecurityProfile'").fetchone()
    if stored is not None or "SecurityProfile" in settings.ocpp_config:
        return
    wss = settings.csms_url.startswith("wss://")
    key = bool(config.authorization_key or settings.auth_key())
    profile = 0
    if wss and settings.csms_ca_file is not None:
        if settings.csms_client_cert_file is not None:
            profile = 3
        elif key:
            profile = 2
    elif not wss and key:
        profile = 1
    config.values["SecurityProfile"] = str(profile)


def _time(value: str | None) -> datetime | None:
    return parse_time(value) if value else None


class V16Security:
    """The security extension's requests, answered with the station core."""

    def __init__(self, core: StationCore, config: ConfigStore) -> None:
        self.core = core
        self.config = config
        self.security = core.security
        self._reconnect = False
        self._trigger: tuple[str, int | None] | None = None
        self._job: Any = None
        self.jobs = core.security.jobs  # kept by the station: they outlive one connection

    def send(self, message: Message) -> None:
        """A live message to the central system."""
        self.core.send(message)

    # --- security profile --------------------------------------------------------------------

    def change_profile(self, value: str) -> str:
        """ChangeConfiguration SecurityProfile (see security.SecurityProfiles.change)."""
        try:
            new = int(value)
        except ValueError:
            return "Rejected"
        if not 0 <= new <= 3:
            return "Rejected"
        changed = new != self.config.security_profile
        status = self.security.profiles.change(new)
        if status == "Accepted" and changed:
            self._reconnect = True
            self.security.events.record("ReconfigurationOfSecurityParameters",
                                        f"SecurityProfile set to {new}")
        return status

    def after_change(self) -> None:
        """Reconnect with the new profile once the answer is out."""
        if self._reconnect:
            self._reconnect = False
            self.core.spawn(self.core.reconnect())

    # --- ExtendedTriggerMessage --------------------------------------------------------------

    def extended_trigger(self, message: str, connector: int | None) -> str:
        """Accepted, Rejected (no such connector) or NotImplemented."""
        if message not in EXTENDED_TRIGGERS:
            return "NotImplemented"
        if connector is not None and connector not in self.core.model.connectors and (
                connector != 0 or message == "MeterValues"):
            return "Rejected"
        return "Accepted"

    def after_extended_trigger(self, message: str, connector: int | None) -> None:
        """Send what an accepted ExtendedTriggerMessage asked for."""
        if self.extended_trigger(message, connector) != "Accepted":
            return
        if message == "SignChargePointCertificate":
            self.sign_certificate()
        elif message == "LogStatusNotification":
            status, request_id = self.jobs["log"]
            self.send(LogStatus(status, request_id) if status in LOG_BUSY
                      else LogStatus("Idle", None))
        elif message == "FirmwareStatusNotification":
            status, request_id = self.jobs["firmware"]
            self.send(SignedFirmwareStatus(status, request_id) if status in FIRMWARE_BUSY
                      else SignedFirmwareStatus("Idle", None))
        else:
            for m in triggers.messages(self.core, message, connector):
                self.send(m)

    # --- certificates ------------------------------------------------------------------------

    def sign_certificate(self) -> None:
        """A new key and its CSR, sent as SignCertificate (the key stays pending, 0600)."""
        csr = self.security.certs.make_csr(self.core.id, self.config.get_str("CpoName"))
        self.send(SignCertificateRequest(csr))

    def certificate_signed(self, chain: str) -> str:
        """CertificateSigned: Accepted when the chain is for the pending key and checks out
        against the installed CentralSystemRootCertificates; with profile 3 the station then
        reconnects with it."""
        limit = self.config.get_int("CertificateSignedMaxChainSize")
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
        if self.config.security_profile == 3:
            self._reconnect = True
        return "Accepted"

    def install_certificate(self, kind: str, pem: str) -> str:
        """InstallCertificate: Accepted, Rejected or Failed."""
        certs = self.security.certs
        certs.max_roots = self.config.get_int("CertificateStoreMaxLength")
        status = certs.install(kind, pem)
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
        if kind == CENTRAL_SYSTEM_ROOT and self.config.security_profile >= 2 and len(
                certs.root_files(CENTRAL_SYSTEM_ROOT)) == 1 and (
                self.core.settings.csms_ca_file is None):
            log.warning("%s: DeleteCertificate refused: the last CentralSystemRootCertificate "
                        "(SecurityProfile %d needs it)", self.core.id,
                        self.config.security_profile)
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

    def get_log(self, log_type: str, request_id: int, location: str, retries: int,
                retry_interval_s: int, oldest: str | None, latest: str | None
                ) -> tuple[str, str | None]:
        """GetLog: (Accepted or AcceptedCanceled, the file name); Rejected for a location
        that cannot be uploaded to. The upload starts after the reply."""
        if urlparse(location).scheme not in ("http", "https", "ftp"):
            return "Rejected", None
        start, stop = _time(oldest), _time(latest)
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

    # --- SignedUpdateFirmware ------------------------------------------------------------------

    def signed_update_firmware(self, request_id: int, firmware: dict[str, Any], retries: int,
                               retry_interval_s: int) -> str:
        """SignedUpdateFirmware: InvalidCertificate when the signing certificate does not
        chain to an installed ManufacturerRootCertificate; else Accepted (AcceptedCanceled
        when it replaces one running), the download starting after the reply."""
        try:
            chain = load_chain(firmware["signingCertificate"])
            verify_chain(chain, self.security.certs.roots(MANUFACTURER_ROOT))
        except CertificateError as exc:
            log.warning("%s: SignedUpdateFirmware: signing certificate refused: %s",
                        self.core.id, exc)
            self.security.events.record("InvalidFirmwareSigningCertificate", str(exc))
            return "InvalidCertificate"
        canceled = self._replace("firmware")
        self._job = ("firmware", self._firmware(
            request_id, firmware["location"], parse_time(firmware["retrieveDateTime"]),
            _time(firmware.get("installDateTime")), chain[0], firmware["signature"], retries,
            retry_interval_s))
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


class SecureChargePoint(V16ChargePoint):
    """The 1.6 charge point with the security extension's requests."""

    def __init__(self, station_id: str, connection: Any, station: StationApi, *,
                 response_timeout: float, security: V16Security) -> None:
        super().__init__(station_id, connection, station, response_timeout=response_timeout)
        self.security = security

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str,
                                **_: Any) -> call_result.ChangeConfiguration:
        if key == "SecurityProfile":
            status = self.security.change_profile(value)
            log.info("%s: ChangeConfiguration SecurityProfile=%s -> %s", self.id, value, status)
            return call_result.ChangeConfiguration(status)
        status = self.station.change_configuration(key, value)
        if key == "AuthorizationKey" and status == "Accepted":
            self.security.security.events.record("ReconfigurationOfSecurityParameters",
                                                 "AuthorizationKey changed")
        return call_result.ChangeConfiguration(status)

    @after(Action.change_configuration)
    def after_change_configuration(self, **_: Any) -> None:
        self.security.after_change()

    @on(Action.extended_trigger_message)
    def on_extended_trigger(self, requested_message: str, connector_id: int | None = None,
                            **_: Any) -> call_result.ExtendedTriggerMessage:
        return call_result.ExtendedTriggerMessage(
            self.security.extended_trigger(requested_message, connector_id))

    @after(Action.extended_trigger_message)
    def after_extended_trigger(self, requested_message: str, connector_id: int | None = None,
                               **_: Any) -> None:
        self.security.after_extended_trigger(requested_message, connector_id)

    @on(Action.certificate_signed)
    def on_certificate_signed(self, certificate_chain: str,
                              **_: Any) -> call_result.CertificateSigned:
        return call_result.CertificateSigned(self.security.certificate_signed(certificate_chain))

    @after(Action.certificate_signed)
    def after_certificate_signed(self, **_: Any) -> None:
        self.security.after_certificate_signed()

    @on(Action.install_certificate)
    def on_install_certificate(self, certificate_type: str, certificate: str,
                               **_: Any) -> call_result.InstallCertificate:
        return call_result.InstallCertificate(
            self.security.install_certificate(certificate_type, certificate))

    @on(Action.get_installed_certificate_ids)
    def on_installed_ids(self, certificate_type: str,
                         **_: Any) -> call_result.GetInstalledCertificateIds:
        found = self.security.installed_ids(certificate_type)
        if not found:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(status="Accepted",
                                                      certificate_hash_data=found)

    @on(Action.delete_certificate)
    def on_delete_certificate(self, certificate_hash_data: dict[str, Any],
                              **_: Any) -> call_result.DeleteCertificate:
        from ocpp.charge_point import snake_to_camel_case
        return call_result.DeleteCertificate(
            self.security.delete_certificate(snake_to_camel_case(certificate_hash_data)))

    @on(Action.get_log)
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int,
                   retries: int | None = None, retry_interval: int | None = None,
                   **_: Any) -> call_result.GetLog:
        status, name = self.security.get_log(
            log_type, request_id, log["remote_location"], retries or 0, retry_interval or 30,
            log.get("oldest_timestamp"), log.get("latest_timestamp"))
        return call_result.GetLog(status=status, filename=name)

    @after(Action.get_log)
    def after_get_log(self, **_: Any) -> None:
        self.security.start_job()

    @on(Action.signed_update_firmware)
    def on_signed_update_firmware(self, request_id: int, firmware: dict[str, Any],
                                  retries: int | None = None, retry_interval: int | None = None,
                                  **_: Any) -> call_result.SignedUpdateFirmware:
        from ocpp.charge_point import snake_to_camel_case
        return call_result.SignedUpdateFirmware(self.security.signed_update_firmware(
            request_id, snake_to_camel_case(firmware), retries or 0, retry_interval or 30))

    @after(Action.signed_update_firmware)
    def after_signed_update_firmware(self, **_: Any) -> None:
        self.security.start_job()
