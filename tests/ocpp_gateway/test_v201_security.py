"""OCPP 2.0.1 security, certificates, logs and secure firmware (issue 11, blocks A, M, N01, L01)
on the version-neutral core the 1.6 security extension uses, against the dev central system in
2.0.1 with schema validation on and its rules (security201.py), over real WebSockets; TLS with
certificates made here (tests/fixtures/pki.py). The CertificateHashData expected is computed from
the certificate itself, as in test_security_certificates.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ocpp.v201 import call

from tests.fixtures.csms import Csms
from tests.fixtures.pki import CA
from tests.ocpp_gateway.conftest import Rig
from tests.ocpp_gateway.test_firmware import FIRMWARE, FileServer, restarted
from tests.ocpp_gateway.test_security_certificates import expected_hash
from tests.ocpp_gateway.test_security_firmware_log import files, signed, statuses, when
from tests.ocpp_gateway.test_security_profiles import (
    KEY,
    client_certificate_cn,
    servers,
    signed_and_kept,
)

__all__ = ["files", "servers"]  # the fixtures

CSMS_ROOT, MF_ROOT = "CSMSRootCertificate", "ManufacturerRootCertificate"


async def online(rig: Rig, **extra: Any) -> None:
    await rig.start_gateway(ocpp_version="2.0.1", **extra)
    await rig.csms.wait_for(rig.id, "BootNotification")


async def install(csms: Csms, station: str, kind: str, pem: bytes | str) -> str:
    text = pem.decode() if isinstance(pem, bytes) else pem
    answer = await csms.send(station, call.InstallCertificate(certificate_type=kind,
                                                              certificate=text))
    return str(answer["status"])


async def profile_of(csms: Csms, station: str) -> str:
    answer = await csms.send(station, call.GetVariables(get_variable_data=[{
        "component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}}]))
    return str(answer["getVariableResult"][0]["attributeValue"])


def network_profile(security_profile: int, url: str) -> call.SetNetworkProfile:
    return call.SetNetworkProfile(configuration_slot=1, connection_data={
        "ocpp_version": "OCPP20", "ocpp_transport": "JSON", "ocpp_csms_url": url,
        "message_timeout": 30, "security_profile": security_profile,
        "ocpp_interface": "Wired0"})


async def test_install_list_and_delete_roots_in_201(rig: Rig) -> None:
    """M03-M05 on the store the 1.6 extension uses: CSMS and manufacturer roots installed,
    listed (all, or by type), deleted; the ISO 15118 roots are refused."""
    await online(rig)
    csms = rig.csms
    assert await csms.send(rig.id, call.GetInstalledCertificateIds()) == {"status": "NotFound"}
    cpo, maker = CA("voltbus test CPO"), CA("voltbus test manufacturer")
    assert await install(csms, rig.id, CSMS_ROOT, cpo.cert_pem) == "Accepted"
    assert await install(csms, rig.id, MF_ROOT, maker.cert_pem) == "Accepted"
    assert await install(csms, rig.id, CSMS_ROOT, "not a certificate") == "Rejected"
    assert (await csms.send(rig.id, call.InstallCertificate(
        certificate_type="V2GRootCertificate", certificate=cpo.cert_pem.decode())))[
        "status"] == "Rejected"
    listed = await csms.send(rig.id, call.GetInstalledCertificateIds())
    assert listed == {"status": "Accepted", "certificateHashDataChain": [
        {"certificateType": CSMS_ROOT, "certificateHashData": expected_hash(cpo)},
        {"certificateType": MF_ROOT, "certificateHashData": expected_hash(maker)}]}
    only = await csms.send(rig.id, call.GetInstalledCertificateIds(certificate_type=[MF_ROOT]))
    assert only["certificateHashDataChain"] == [
        {"certificateType": MF_ROOT, "certificateHashData": expected_hash(maker)}]
    assert (await csms.send(rig.id, call.GetInstalledCertificateIds(
        certificate_type=["V2GRootCertificate"]))) == {"status": "NotFound"}
    assert await csms.send(rig.id, call.DeleteCertificate(
        certificate_hash_data=expected_hash(maker))) == {"status": "Accepted"}
    assert await csms.send(rig.id, call.DeleteCertificate(
        certificate_hash_data=expected_hash(maker))) == {"status": "NotFound"}
    await csms.wait_for(rig.id, "SecurityEventNotification",
                        where=lambda p: p.get("techInfo") == f"{MF_ROOT} deleted")
    events = [m.payload.get("techInfo") for m in csms.received(rig.id, "SecurityEventNotification")
              if m.payload["type"] == "ReconfigurationOfSecurityParameters"]
    assert events == ["CentralSystemRootCertificate installed", f"{MF_ROOT} installed",
                      f"{MF_ROOT} deleted"]
    assert csms.violations(rig.id) == []


@pytest.mark.expected_errors  # the refused downgrade and profile 3 without a certificate
async def test_profile_2_sign_certificate_then_profile_3_over_tls_in_201(
        servers: Any, tmp_path: Path) -> None:
    """A00/A01: profile 2 (TLS + Basic auth) from the settings; A05: no downgrade, no profile 3
    before a certificate; A02/A03: TriggerMessage SignChargingStationCertificate, a real CSR (key
    0600), CertificateSigned by the CSMS's CA; then profile 3 with that client certificate."""
    make, rig_on = servers
    cpo = CA("voltbus test CPO")
    tls = await make(ssl_context=cpo.server_context(tmp_path, client_ca=cpo,
                                                    require_client=False))
    tls.behaviour.certificate_authority = (cpo.cert_pem, cpo.key_pem)
    rig = await rig_on(tls)
    ca_file = tmp_path / "cpo.pem"
    ca_file.write_bytes(cpo.cert_pem)
    await rig.start_gateway(ocpp_version="2.0.1", csms_ca_file=ca_file, csms_auth_key=KEY)
    await tls.wait_for(rig.id, "BootNotification")
    assert tls.central.version(rig.id) == "2.0.1"
    assert await profile_of(tls, rig.id) == "2"
    assert await tls.send(rig.id, network_profile(1, tls.url)) == {"status": "Rejected"}
    assert await tls.send(rig.id, network_profile(3, tls.url)) == {"status": "Rejected"}
    assert (await tls.send(rig.id, call.SetVariables(set_variable_data=[{
        "component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"},
        "attribute_value": "0"}])))["setVariableResult"][0]["attributeStatus"] == "Rejected"
    assert await tls.send(rig.id, call.TriggerMessage(
        requested_message="SignChargingStationCertificate")) == {"status": "Accepted"}
    sign = await tls.wait_for(rig.id, "SignCertificate")
    assert sign["certificateType"] == "ChargingStationCertificate"
    assert sign["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    await signed_and_kept(tls, rig.id, tmp_path / "data")
    assert await tls.send(rig.id, network_profile(3, tls.url)) == {"status": "Accepted"}
    await tls.wait_for(rig.id, "BootNotification", count=2)
    assert await client_certificate_cn(tls, rig.id) == rig.id
    assert await profile_of(tls, rig.id) == "3"
    assert tls.violations(rig.id) == []


async def test_get_log_and_a_signed_firmware_update_in_201(rig: Rig, files: FileServer,
                                                          tmp_path: Path) -> None:
    """N01 GetLog SecurityLog (Uploading, Uploaded, then Idle when triggered) and L01: the
    signed firmware's FirmwareStatusNotification sequence to Installed after the restart."""
    maker = CA("voltbus test manufacturer")
    signer = maker.issue("firmware signer", usage="code")
    install_cmd = f"cp -t {tmp_path}"
    await online(rig, firmware_install_command=install_cmd)
    csms = rig.csms
    answer = await csms.send(rig.id, call.GetLog(log={
        "remote_location": f"http://127.0.0.1:{files.port}/logs"}, log_type="SecurityLog",
        request_id=7))
    assert answer["status"] == "Accepted"
    await csms.wait_for(rig.id, "LogStatusNotification", where=lambda p: p["status"] ==
                        "Uploaded")
    assert f"/logs/{answer['filename']}" in files.uploads
    assert await csms.send(rig.id, call.TriggerMessage(
        requested_message="LogStatusNotification")) == {"status": "Accepted"}
    await csms.wait_for(rig.id, "LogStatusNotification", count=3)
    assert statuses(rig, "LogStatusNotification") == [("Uploading", 7), ("Uploaded", 7),
                                                      ("Idle", None)]
    assert await install(csms, rig.id, MF_ROOT, maker.cert_pem) == "Accepted"
    firmware = {"location": f"http://127.0.0.1:{files.port}/fw/image.bin",
                "retrieve_date_time": when(), "signing_certificate": signer.cert_pem.decode(),
                "signature": signed(signer)}
    assert await csms.send(rig.id, call.UpdateFirmware(request_id=42, firmware=firmware)) == {
        "status": "Accepted"}
    await csms.wait_for(rig.id, "FirmwareStatusNotification",
                        where=lambda p: p["status"] == "InstallRebooting")
    await restarted(rig, ocpp_version="2.0.1", firmware_install_command=install_cmd,
                    firmware_version="2.0")
    await csms.wait_for(rig.id, "FirmwareStatusNotification",
                        where=lambda p: p["status"] == "Installed")
    assert statuses(rig, "FirmwareStatusNotification") == [
        ("Downloading", 42), ("Downloaded", 42), ("SignatureVerified", 42), ("Installing", 42),
        ("InstallRebooting", 42), ("Installed", 42)]
    assert (tmp_path / "image.bin").read_bytes() == FIRMWARE
    event = await csms.wait_for(rig.id, "SecurityEventNotification",
                                where=lambda p: p["type"] == "FirmwareUpdated")
    assert event["techInfo"] == "2.0"
    assert csms.violations(rig.id) == []


@pytest.mark.expected_errors  # the bad signature and the stranger's certificate
async def test_bad_signature_stranger_and_unsigned_firmware_in_201(
        rig: Rig, files: FileServer, tmp_path: Path) -> None:
    """L01: a signature that does not verify ends in InvalidSignature (and the
    InvalidFirmwareSignature event), nothing installed; a signing certificate of another maker is
    InvalidCertificate before any download; an unsigned update (L02) is Rejected."""
    maker, stranger = CA("voltbus test manufacturer"), CA("someone else")
    signer, foreign = maker.issue("signer", usage="code"), stranger.issue("x", usage="code")
    await online(rig, firmware_install_command=f"cp -t {tmp_path}")
    csms = rig.csms
    assert await install(csms, rig.id, MF_ROOT, maker.cert_pem) == "Accepted"
    location = f"http://127.0.0.1:{files.port}/fw/image.bin"

    def firmware(cert: Any, signature: str | None) -> dict[str, Any]:
        out = {"location": location, "retrieve_date_time": when()}
        if signature is not None:
            out |= {"signing_certificate": cert.cert_pem.decode(), "signature": signature}
        return out
    assert await csms.send(rig.id, call.UpdateFirmware(request_id=6, firmware=firmware(
        foreign, signed(foreign)))) == {"status": "InvalidCertificate"}
    await csms.wait_for(rig.id, "SecurityEventNotification",
                        where=lambda p: p["type"] == "InvalidFirmwareSigningCertificate")
    assert files.gets == 0
    unsigned = await csms.send(rig.id, call.UpdateFirmware(request_id=8,
                                                           firmware=firmware(None, None)))
    assert unsigned["status"] == "Rejected"
    assert await csms.send(rig.id, call.UpdateFirmware(request_id=5, firmware=firmware(
        signer, signed(signer, b"another image")))) == {"status": "Accepted"}
    await csms.wait_for(rig.id, "FirmwareStatusNotification",
                        where=lambda p: p["status"] == "InvalidSignature")
    assert statuses(rig, "FirmwareStatusNotification") == [
        ("Downloading", 5), ("Downloaded", 5), ("InvalidSignature", 5)]
    event = await csms.wait_for(rig.id, "SecurityEventNotification",
                                where=lambda p: p["type"] == "InvalidFirmwareSignature")
    assert event["techInfo"] == "image.bin"
    assert not (tmp_path / "image.bin").exists()
    assert csms.violations(rig.id) == []
