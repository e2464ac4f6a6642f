"""The dev central system's 1.6 security extension side (security16.py): it flags what a strict
central system refuses (unknown security events, a CSR that is not the station's, a status
naming a request the station never took), and signs an accepted CSR as a CA would."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from ocpp.v16 import call

from tests.devcsms.test_strict16 import stamp, station16
from tests.fixtures.csms import Csms
from tests.fixtures.pki import CA
from voltbus_devcsms import rules
from voltbus_devcsms.security16 import sign_csr


def csr(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])).sign(key, hashes.SHA256()))
    return request.public_bytes(Encoding.PEM).decode()


async def test_security_calls_are_checked(csms: Csms) -> None:
    async with station16(csms) as cp:
        await cp.call(call.SecurityEventNotification(type="StartupOfTheDevice",
                                                     timestamp=stamp(), tech_info=None))
        assert csms.violations("P1") == []
        await cp.call(call.SecurityEventNotification(type="SomethingHappened",
                                                     timestamp=stamp(), tech_info=None))
        assert [v.rule for v in csms.violations("P1")] == [rules.UNKNOWN_SECURITY_EVENT]
        answer = await cp.call(call.SignCertificate(csr=csr("someone-else")))
        assert answer.status == "Rejected"
        answer = await cp.call(call.SignCertificate(csr="-----BEGIN CERTIFICATE REQUEST-----"))
        assert answer.status == "Rejected"
        assert (await cp.call(call.SignCertificate(csr=csr("P1")))).status == "Accepted"
        await cp.call(call.LogStatusNotification(status="Uploading", request_id=9))
        await cp.call(call.SignedFirmwareStatusNotification(status="Downloading",
                                                            request_id=None))
        await cp.call(call.LogStatusNotification(status="Idle", request_id=None))
    assert [v.rule for v in csms.violations("P1")] == [
        rules.UNKNOWN_SECURITY_EVENT, rules.BAD_CSR, rules.BAD_CSR, rules.JOB_REQUEST_ID,
        rules.JOB_REQUEST_ID]


def test_sign_csr_issues_a_client_certificate_under_the_ca() -> None:
    ca = CA("test CPO")
    chain = x509.load_pem_x509_certificates(sign_csr(csr("P1"), ca.cert_pem, ca.key_pem).encode())
    leaf = chain[0]
    leaf.verify_directly_issued_by(ca.cert)
    assert chain[1] == ca.cert
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "P1"
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
