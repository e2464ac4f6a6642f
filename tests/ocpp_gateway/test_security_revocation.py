"""Certificate revocation (1.6 security whitepaper; issue 10 §4): with VOLTBUS_CRL_FILE holding a
CRL made here with `cryptography`, the station refuses a revoked central-system server
certificate in the TLS handshake and raises InvalidCentralSystemCertificate, and answers a
SignedUpdateFirmware whose signing certificate is revoked RevokedCertificate. Real TLS
WebSockets to the dev central system."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.pki import CA
from tests.ocpp_gateway.test_firmware import FileServer
from tests.ocpp_gateway.test_security_firmware_log import files as files
from tests.ocpp_gateway.test_security_firmware_log import online_with_maker, signed, update
from tests.ocpp_gateway.test_security_profiles import servers as servers


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
