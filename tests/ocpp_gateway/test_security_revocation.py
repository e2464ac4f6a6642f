"""Certificate revocation and AdditionalRootCertificateCheck (1.6 security whitepaper; issue 10
§4): with VOLTBUS_CRL_FILE holding a CRL made here with `cryptography`, the station refuses a
revoked central-system server certificate in the TLS handshake and raises
InvalidCentralSystemCertificate, and answers a SignedUpdateFirmware whose signing certificate is
revoked RevokedCertificate; a new CentralSystemRootCertificate replaces the old one, which stays
as the fallback until the new one verified the server. Real TLS WebSockets to the dev central
system."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from tests.fixtures.pki import CA
from tests.ocpp_gateway.test_firmware import FileServer
from tests.ocpp_gateway.test_security_firmware_log import files as files
from tests.ocpp_gateway.test_security_firmware_log import online_with_maker, signed, update
from tests.ocpp_gateway.test_security_profiles import servers as servers
from voltbus_ocpp.certificates import CertificateStore


@pytest.mark.expected_errors  # "certificate revoked" on each attempt
async def test_a_revoked_central_system_certificate_is_refused(
        servers: Any, tmp_path: Path) -> None:
    make, rig_on = servers
    cpo = CA("voltbus test CPO")
    revoked = cpo.issue("127.0.0.1", server=True)
    crl, ca = tmp_path / "crl.pem", tmp_path / "cpo.pem"
    crl.write_bytes(cpo.crl([revoked]))
    ca.write_bytes(cpo.cert_pem)
    bad = await make(ssl_context=CA.context_for(revoked, tmp_path))
    good = await make(ssl_context=cpo.server_context(tmp_path))
    rig = await rig_on(bad)
    settings = {"csms_ca_file": ca, "crl_file": crl}
    station = await rig.start_gateway(csms_url=bad.url, **settings)
    async with asyncio.timeout(5):  # the refused handshake is in the security log
        while "InvalidCentralSystemCertificate" not in station.security.events.log_text():  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # a log in sqlite: no event to wait on
    assert bad.received(rig.id) == []  # never connected: no BootNotification
    await rig.stop_gateway()
    # the same station towards a server whose certificate is not revoked: it connects, and the
    # event of the refused one reaches the central system
    await rig.start_gateway(csms_url=good.url, **settings)
    event = await good.wait_for(rig.id, "SecurityEventNotification",
                                where=lambda p: p["type"] == "InvalidCentralSystemCertificate")
    assert "revoked" in event["techInfo"]
    assert bad.received(rig.id) == []
    assert good.violations(rig.id) == []


@pytest.mark.expected_errors  # "signing certificate revoked"
async def test_a_revoked_firmware_signing_certificate(rig: Any, files: FileServer,
                                                     tmp_path: Path) -> None:
    maker = CA("voltbus test manufacturer")
    signer, other = maker.issue("old signer", usage="code"), maker.issue("signer", usage="code")
    crl = tmp_path / "crl.pem"
    crl.write_bytes(CA("another CA").crl([signer]) + maker.crl([signer]))
    await online_with_maker(rig, maker, firmware_install_command=f"cp -t {tmp_path}",
                            crl_file=crl)
    assert await update(rig, files, 31, signer, signed(signer)) == {
        "status": "RevokedCertificate"}
    event = await rig.csms.wait_for(rig.id, "SecurityEventNotification",
                                    where=lambda p: p["type"] ==
                                    "InvalidFirmwareSigningCertificate")
    assert "revoked" in event["techInfo"]
    assert files.gets == 0  # nothing downloaded
    # another signing certificate of the same maker, not on the CRL, is taken
    assert await update(rig, files, 32, other, signed(other)) == {"status": "Accepted"}
    await rig.csms.wait_for(rig.id, "SignedFirmwareStatusNotification",
                            where=lambda p: p["status"] == "SignatureVerified")
    assert rig.csms.violations(rig.id) == []


ROOT = "CentralSystemRootCertificate"


async def _roots(csms: Any, station: str) -> list[str]:
    answer = await csms.send(station, call.GetInstalledCertificateIds(certificate_type=ROOT))
    return [h["serialNumber"] for h in answer.get("certificateHashData", [])]


@pytest.mark.expected_errors  # the handshakes the new root cannot verify
async def test_additional_root_certificate_check_and_its_fallback(
        servers: Any, tmp_path: Path) -> None:
    """AdditionalRootCertificateCheck true (whitepaper M05): a new CentralSystemRootCertificate
    must be signed by the installed one and replaces it; the old one stays as the fallback until
    the new one verified the central system, and comes back when it cannot."""
    make, rig_on = servers
    old, new, stranger = CA("old CPO root"), CA("new CPO root"), CA("someone else")
    old_server = await make(ssl_context=old.server_context(tmp_path))
    new_server = await make(ssl_context=new.server_context(tmp_path))
    rig = await rig_on(old_server)
    config = {"MeterValueSampleInterval": "20", "AdditionalRootCertificateCheck": "true"}
    store = CertificateStore(rig.settings().station_dir(rig.id) / "certs")
    assert store.install(ROOT, old.cert_pem.decode()) == "Accepted"  # installed at the factory
    serial = f"{old.cert.serial_number:x}"

    async def connect(server: Any, boots: int) -> None:
        await rig.start_gateway(csms_url=server.url, ocpp_config=config)
        await server.wait_for(rig.id, "BootNotification", count=boots)

    await connect(old_server, 1)
    assert (await old_server.send(rig.id, call.GetConfiguration(
        key=["AdditionalRootCertificateCheck"])))["configurationKey"][0]["value"] == "true"
    assert await old_server.send(rig.id, call.InstallCertificate(
        certificate_type=ROOT, certificate=stranger.cert_pem.decode())) == {"status": "Rejected"}
    cross = old.cross_sign(new).decode()
    assert await old_server.send(rig.id, call.InstallCertificate(
        certificate_type=ROOT, certificate=cross)) == {"status": "Accepted"}
    assert await _roots(old_server, rig.id) != [serial]  # the new one only, the old one waits
    # the central system did not switch its certificate yet: the new root cannot verify it,
    # so the station goes back to the old one and connects again
    await rig.stop_gateway()
    await connect(old_server, 2)
    assert await _roots(old_server, rig.id) == [serial]
    back = await old_server.wait_for(rig.id, "SecurityEventNotification", where=lambda p:
                                     "back to the previous" in p.get("techInfo", ""))
    assert back["type"] == "ReconfigurationOfSecurityParameters"
    # installed again, and now the central system has a certificate of the new root
    assert await old_server.send(rig.id, call.InstallCertificate(
        certificate_type=ROOT, certificate=cross)) == {"status": "Accepted"}
    await rig.stop_gateway()
    await connect(new_server, 1)
    await new_server.wait_for(rig.id, "SecurityEventNotification", where=lambda p:
                              "previous one is removed" in p.get("techInfo", ""))
    assert not store.fallback_pending()
    # the old root is gone: the old certificate is no longer trusted
    await rig.stop_gateway()
    await rig.start_gateway(csms_url=old_server.url, ocpp_config=config)
    await asyncio.sleep(0.5)
    assert len(old_server.received(rig.id, "BootNotification")) == 2
    assert old_server.violations(rig.id) == []
    assert new_server.violations(rig.id) == []
