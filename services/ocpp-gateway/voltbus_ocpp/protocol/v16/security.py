# mypy: disable-error-code="misc,untyped-decorator"
# (the ocpp package is untyped: its ChargePoint and @on are Any to mypy)
"""The OCPP 1.6 security extension (Security Whitepaper edition 2) on top of the 1.6 charge
point: SecurityProfile changes, ExtendedTriggerMessage, certificate management
(CertificateSigned, InstallCertificate, GetInstalledCertificateIds, DeleteCertificate),
GetLog with LogStatusNotification, and SignedUpdateFirmware with
SignedFirmwareStatusNotification. The station-initiated SignCertificate and
SecurityEventNotification go out through the station's messenger (messages.py, records.py).

The certificates, the profile's route, the security events (certificates.py, security.py) and
what the requests do (security_requests.py, shared with 2.0.1) are version-neutral; this module
speaks their 1.6 wire.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from voltbus_ocpp.adapter import StationCore
from voltbus_ocpp.protocol.v16 import triggers
from voltbus_ocpp.protocol.v16.config_store import ConfigStore
from voltbus_ocpp.protocol.v16.handlers import StationApi, V16ChargePoint
from voltbus_ocpp.protocol.wire_time import parse_time
from voltbus_ocpp.security import profile_from_settings
from voltbus_ocpp.security_requests import (
    FirmwareRequest,
    SecurityLimits,
    SecurityRequests,
    optional_time,
)
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)

EXTENDED_TRIGGERS = frozenset({"BootNotification", "LogStatusNotification",
                               "FirmwareStatusNotification", "Heartbeat", "MeterValues",
                               "SignChargePointCertificate", "StatusNotification"})


def initial_profile(config: ConfigStore, store: Store, settings: GatewaySettings) -> None:
    """A station whose SecurityProfile was never set (neither by the central system nor in
    VOLTBUS_OCPP_CONFIG) reports the profile its settings amount to
    (security.profile_from_settings). Not stored: a later change of the settings changes it."""
    stored = store.db.execute("SELECT value FROM config WHERE key='SecurityProfile'").fetchone()
    if stored is not None or "SecurityProfile" in settings.ocpp_config:
        return
    key = bool(config.authorization_key or settings.auth_key())
    config.values["SecurityProfile"] = str(profile_from_settings(settings, key=key))


def _limits16(config: ConfigStore) -> SecurityLimits:
    """The 1.6 keys that bound certificates."""
    return SecurityLimits(
        security_profile=lambda: config.security_profile,
        max_chain_chars=lambda: config.get_int("CertificateSignedMaxChainSize"),
        max_roots=lambda: config.get_int("CertificateStoreMaxLength"),
        additional_root_check=lambda: config.get_bool("AdditionalRootCertificateCheck"),
        cpo_name=lambda: config.get_str("CpoName"))


class V16Security(SecurityRequests):
    """The security extension's requests: the 1.6 parts (SecurityProfile, ExtendedTriggerMessage)
    here, the rest version-neutral (security_requests.py)."""

    def __init__(self, core: StationCore, config: ConfigStore) -> None:
        super().__init__(core, _limits16(config))
        self.config = config

    # --- security profile --------------------------------------------------------------------

    def change_profile(self, value: str) -> str:
        """ChangeConfiguration SecurityProfile (see security.SecurityProfiles.change)."""
        try:
            new = int(value)
        except ValueError:
            return "Rejected"
        if not 0 <= new <= 3:
            return "Rejected"
        return self.raise_profile(new)

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
            self.send(self.log_status())
        elif message == "FirmwareStatusNotification":
            self.send(self.firmware_status())
        else:
            for m in triggers.messages(self.core, message, connector):
                self.send(m)

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
        status, name = self.security.get_log(log_type, request_id, log, retries, retry_interval)
        return call_result.GetLog(status=status, filename=name)

    @after(Action.get_log)
    def after_get_log(self, **_: Any) -> None:
        self.security.start_job()

    @on(Action.signed_update_firmware)
    def on_signed_update_firmware(self, request_id: int, firmware: dict[str, Any],
                                  retries: int | None = None, retry_interval: int | None = None,
                                  **_: Any) -> call_result.SignedUpdateFirmware:
        from ocpp.charge_point import snake_to_camel_case
        fw = snake_to_camel_case(firmware)
        return call_result.SignedUpdateFirmware(self.security.signed_update_firmware(
            FirmwareRequest(request_id, fw["location"], parse_time(fw["retrieveDateTime"]),
                            optional_time(fw.get("installDateTime")), fw["signingCertificate"],
                            fw["signature"], retries or 0, retry_interval or 30)))

    @after(Action.signed_update_firmware)
    def after_signed_update_firmware(self, **_: Any) -> None:
        self.security.start_job()
