"""Certificate management of the 1.6 security extension (issue 10 §4): InstallCertificate,
GetInstalledCertificateIds, DeleteCertificate, persisted on disk and used for TLS; against the
dev central system (the `ocpp` package's edition 2 schemas) over a real WebSocket. The expected
CertificateHashData is computed here from the certificate itself (OCSP CertID's fields)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from ocpp.v16 import call

from tests.fixtures.csms import Csms
from tests.fixtures.mosquitto import Broker
from tests.fixtures.pki import CA
from tests.ocpp_gateway.conftest import Rig

CS_ROOT, MF_ROOT = "CentralSystemRootCertificate", "ManufacturerRootCertificate"


def expected_hash(ca: CA) -> dict[str, str]:
    """A root's CertificateHashData: SHA-256 of its (issuer) name and of its public key bits."""
    key = ca.cert.public_key().public_bytes(serialization.Encoding.X962,
                                            serialization.PublicFormat.UncompressedPoint)
    return {"hashAlgorithm": "SHA256",
            "issuerNameHash": hashlib.sha256(ca.cert.issuer.public_bytes()).hexdigest(),
            "issuerKeyHash": hashlib.sha256(key).hexdigest(),
            "serialNumber": format(ca.cert.serial_number, "x")}


async def install(rig: Rig, kind: str, pem: bytes | str) -> str:
    text = pem.decode() if isinstance(pem, bytes) else pem
    answer = await rig.csms.send(rig.id, call.InstallCertificate(certificate_type=kind,
                                                                 certificate=text))
    return str(answer["status"])


async def ids(rig: Rig, kind: str) -> dict[str, object]:
    return await rig.csms.send(rig.id, call.GetInstalledCertificateIds(certificate_type=kind))


async def test_install_list_and_delete_roots(rig: Rig) -> None:
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "BootNotification")
    assert await ids(rig, CS_ROOT) == {"status": "NotFound"}
    cpo, maker = CA("voltbus test CPO"), CA("voltbus test manufacturer")
    assert await install(rig, CS_ROOT, cpo.cert_pem) == "Accepted"
    assert await install(rig, MF_ROOT, maker.cert_pem) == "Accepted"
    assert await ids(rig, CS_ROOT) == {"status": "Accepted",
                                       "certificateHashData": [expected_hash(cpo)]}
    assert await ids(rig, MF_ROOT) == {"status": "Accepted",
                                       "certificateHashData": [expected_hash(maker)]}
    # persisted: a restart keeps them
    await rig.stop_gateway()
    await rig.start_gateway()
    await rig.csms.wait_for(rig.id, "BootNotification", count=2)
    assert (await ids(rig, MF_ROOT))["certificateHashData"] == [expected_hash(maker)]
    answer = await rig.csms.send(rig.id, call.DeleteCertificate(
        certificate_hash_data=expected_hash(maker)))
    assert answer == {"status": "Accepted"}
    assert await ids(rig, MF_ROOT) == {"status": "NotFound"}
    assert await rig.csms.send(rig.id, call.DeleteCertificate(
        certificate_hash_data=expected_hash(maker))) == {"status": "NotFound"}
    assert (await ids(rig, CS_ROOT))["status"] == "Accepted"
    reconfigured = [m.payload.get("techInfo") for m in rig.csms.received(
        rig.id, "SecurityEventNotification")
        if m.payload["type"] == "ReconfigurationOfSecurityParameters"]
    assert reconfigured == [f"{CS_ROOT} installed", f"{MF_ROOT} installed",
                            f"{MF_ROOT} deleted"]
    assert rig.csms.violations(rig.id) == []


async def test_install_refuses_what_is_not_a_valid_ca(rig: Rig, tmp_path: Path) -> None:
    await rig.start_gateway(ocpp_config={"CertificateStoreMaxLength": "2"})
    await rig.csms.wait_for(rig.id, "BootNotification")
    cpo = CA("voltbus test CPO")
    assert await install(rig, CS_ROOT, "not a certificate") == "Rejected"
    assert await install(rig, CS_ROOT, cpo.issue("leaf").cert_pem) == "Rejected"  # not a CA
    expired = CA("old", days=-1)
    assert await install(rig, CS_ROOT, expired.cert_pem) == "Rejected"
    assert await ids(rig, CS_ROOT) == {"status": "NotFound"}
    for n in range(2):  # CertificateStoreMaxLength
        assert await install(rig, MF_ROOT, CA(f"maker {n}").cert_pem) == "Accepted"
    assert await install(rig, CS_ROOT, cpo.cert_pem) == "Failed"
    store = tmp_path / "data" / "gateway" / rig.id / "certs"
    assert store.stat().st_mode & 0o777 == 0o700


async def test_installed_root_is_what_tls_trusts_and_the_last_one_cannot_go(
        mosquitto: Broker, station: str, tmp_path: Path) -> None:
    """A root installed over OCPP (not a CA file) is what profile 2 checks the server with, and
    deleting the last one while profile 2 depends on it is Failed."""
    cpo = CA("voltbus test CPO")
    plain = Csms()
    tls = Csms(ssl_context=cpo.server_context(tmp_path))
    for server in (plain, tls):
        server.behaviour.heartbeat_interval_s = 3600
        await server.start()
    rig = Rig(mosquitto, plain, station, tmp_path / "data")
    await rig.start_buses()
    try:
        await rig.start_gateway(csms_auth_key="s3cret-Key-0123456789", csms_tls_url=tls.url)
        await plain.wait_for(rig.id, "BootNotification")
        assert await install(rig, CS_ROOT, cpo.cert_pem) == "Accepted"
        assert await plain.send(rig.id, call.ChangeConfiguration(
            key="SecurityProfile", value="2")) == {"status": "Accepted"}
        await tls.wait_for(rig.id, "BootNotification")
        rig.csms = tls
        assert await rig.csms.send(rig.id, call.DeleteCertificate(
            certificate_hash_data=expected_hash(cpo))) == {"status": "Failed"}
        assert (await ids(rig, CS_ROOT))["status"] == "Accepted"
    finally:
        await rig.close()
        for server in (plain, tls):
            await server.stop()
