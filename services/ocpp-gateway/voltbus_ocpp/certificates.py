"""The station's certificates (OCPP 1.6 security whitepaper edition 2, section 2.6 and chapter 3):
the root certificates the central system installs (CentralSystemRootCertificate for the TLS
server check, ManufacturerRootCertificate for firmware signatures), the charge point's own key
and certificate (profile 3), the CSR for SignCertificate, chain checks, the CertificateHashData
that names a certificate, and firmware signature checks. Everything uses `cryptography`.

On disk, under the station's directory (0700): `certs/central_system_root/<sha256>.pem`,
`certs/manufacturer_root/<sha256>.pem`, `certs/charge_point/key.pem` (0600) and `cert.pem`
(the chain, leaf first), and `certs/charge_point/pending_key.pem` (0600), the key of the CSR
sent last, until its CertificateSigned arrives.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from voltbus_common.private_files import private_dir, write_private

if TYPE_CHECKING:
    from cryptography import x509

# cryptography is imported where it is used: a gateway that never handles a certificate does
# not load it (0.3-0.5 s at start here, more on a Pi; tests/common/test_footprint.py)

log = logging.getLogger(__name__)

CENTRAL_SYSTEM_ROOT = "CentralSystemRootCertificate"
MANUFACTURER_ROOT = "ManufacturerRootCertificate"
RENEW_AT = 0.2  # a charge point certificate with less than a fifth of its lifetime left is renewed
ROOT_TYPES = {CENTRAL_SYSTEM_ROOT: "central_system_root", MANUFACTURER_ROOT: "manufacturer_root"}


@dataclass(frozen=True)
class HashData:
    """CertificateHashData: how the central system names a certificate (SHA256 here)."""

    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    hash_algorithm: str = "SHA256"

    def wire(self) -> dict[str, str]:
        """The 1.6 camelCase CertificateHashDataType."""
        return {"hashAlgorithm": self.hash_algorithm, "issuerNameHash": self.issuer_name_hash,
                "issuerKeyHash": self.issuer_key_hash, "serialNumber": self.serial_number}


class CertificateError(ValueError):
    """A certificate (chain) that cannot be used: why."""


def load_chain(pem: str) -> list[x509.Certificate]:
    """Every certificate in a PEM text, in order (CertificateError if none or unreadable)."""
    from cryptography import x509
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from None
    if not certs:
        raise CertificateError("no certificate in the PEM text")
    return certs


def _key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's contents (what OCSP's issuerKeyHash hashes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962,
                                serialization.PublicFormat.UncompressedPoint)
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def hash_data(cert: x509.Certificate, issuer: x509.Certificate | None = None) -> HashData:
    """The certificate's CertificateHashData: SHA-256 of the issuer's name (DER) and of the
    issuer's public key, and the serial number in hexadecimal (lower case, no leading zeros).
    A root is its own issuer; for another certificate whose issuer is not known here, its own
    key stands in (documented in docs/ocpp.md)."""
    issuer = issuer or cert
    return HashData(hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
                    hashlib.sha256(_key_bits(issuer)).hexdigest(),
                    format(cert.serial_number, "x"))


def _valid_now(cert: x509.Certificate, now: datetime) -> str | None:
    if now < cert.not_valid_before_utc:
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
    if now > cert.not_valid_after_utc:
        return f"expired at {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
    return None


def verify_chain(chain: list[x509.Certificate], roots: list[x509.Certificate],
                 now: datetime | None = None) -> None:
    """CertificateError unless every certificate of chain (leaf first) is valid now and
    issued by the next, and the last is issued by one of roots (also valid now)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    now = now or datetime.now(UTC)
    if not roots:
        raise CertificateError("no root certificate installed to check it against")
    for cert in chain:
        problem = _valid_now(cert, now)
        if problem:
            raise CertificateError(f"{cert.subject.rfc4514_string()}: {problem}")
    for cert, issuer in itertools.pairwise(chain):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateError(f"{cert.subject.rfc4514_string()} is not issued by "
                                   f"{issuer.subject.rfc4514_string()}: {exc}") from None
    last = chain[-1]
    for root in roots:
        if root.fingerprint(hashes.SHA256()) == last.fingerprint(hashes.SHA256()):
            return  # the chain ends in the root itself
        try:
            last.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if _valid_now(root, now) is None:
            return
    raise CertificateError(f"{last.issuer.rfc4514_string()} is not an installed root")


class RevokedError(CertificateError):
    """A certificate of the chain is on a CRL of its issuer (1.6 security: RevokedCertificate)."""


def load_crls(path: Path | None) -> list[x509.CertificateRevocationList]:
    """The PEM CRLs in the file (VOLTBUS_CRL_FILE); none when unset. CertificateError when
    the file is set but cannot be read: a configured revocation source that fails is never
    taken for "nothing revoked"."""
    if path is None:
        return []
    from cryptography import x509 as x
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"the CRL file {path} cannot be read: {exc}") from None
    marker = b"-----BEGIN X509 CRL-----"
    crls = []
    for part in text.split(marker)[1:]:
        try:
            crls.append(x.load_pem_x509_crl(marker + part))
        except ValueError as exc:
            raise CertificateError(f"the CRL file {path} holds a bad CRL: {exc}") from None
    return crls


def check_revocation(chain: list[x509.Certificate], issuers: list[x509.Certificate],
                     crls: list[x509.CertificateRevocationList]) -> None:
    """RevokedError when a certificate of the chain (leaf first) is listed on a CRL whose
    signature verifies with the certificate's issuer (the next in the chain, or one of
    issuers: the roots). A CRL of another issuer, or whose signature does not verify, is
    ignored for that certificate."""
    if not crls:
        return
    candidates = [*chain[1:], *issuers]
    for cert in chain:
        for crl in crls:
            if crl.issuer != cert.issuer:
                continue
            signer = next((c for c in candidates if c.subject == crl.issuer and
                           crl.is_signature_valid(c.public_key())), None)  # type: ignore[arg-type]
            if signer is None:
                continue
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                raise RevokedError(f"{cert.subject.rfc4514_string()} (serial "
                                   f"{cert.serial_number:x}) is revoked by its issuer's CRL")


def crl_issuers(crls: list[x509.CertificateRevocationList],
                roots: list[x509.Certificate]) -> list[x509.CertificateRevocationList]:
    """The CRLs issued (and signed) by one of roots."""
    return [crl for crl in crls if any(
        root.subject == crl.issuer and crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
        for root in roots)]


def verify_signature(cert: x509.Certificate, signature: bytes, data: bytes) -> None:
    """InvalidSignature unless signature is cert's key's SHA-256 signature of data (RSA
    PKCS#1 v1.5 or ECDSA)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    else:
        raise InvalidSignature(f"unsupported signing key {type(key).__name__}")


def decode_signature(text: str) -> bytes:
    """SignedUpdateFirmware's signature: Base64 (InvalidSignature if it is not)."""
    from cryptography.exceptions import InvalidSignature
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise InvalidSignature("the signature is not Base64") from None


class CertificateStore:
    """The station's certificates on disk (see the module docstring)."""

    def __init__(self, directory: Path, *, max_roots: int = 10) -> None:
        self.dir = directory
        self.max_roots = max_roots

    def _private(self, folder: Path) -> None:
        """The store's directory and folder, 0700 (private_dir leaves parents to the umask)."""
        private_dir(self.dir)
        private_dir(folder)

    def _root_dir(self, kind: str) -> Path:
        return self.dir / ROOT_TYPES[kind]

    # --- root certificates ---------------------------------------------------------------------

    def roots(self, kind: str) -> list[x509.Certificate]:
        """The installed root certificates of a type (unreadable files are skipped)."""
        folder = self._root_dir(kind)
        found: list[x509.Certificate] = []
        for path in sorted(folder.glob("*.pem")) if folder.is_dir() else []:
            try:
                found.extend(load_chain(path.read_text()))
            except (OSError, CertificateError) as exc:
                log.warning("skipping unreadable certificate %s: %s", path, exc)
        return found

    def root_files(self, kind: str) -> list[Path]:
        """The installed root certificate files of a type."""
        folder = self._root_dir(kind)
        return sorted(folder.glob("*.pem")) if folder.is_dir() else []

    @property
    def fallback_dir(self) -> Path:
        """Where AdditionalRootCertificateCheck keeps the CentralSystemRootCertificate a new
        one replaced, until the new one verified the central system."""
        return self._root_dir(CENTRAL_SYSTEM_ROOT) / "fallback"

    def fallback_pending(self) -> bool:
        """A replaced CentralSystemRootCertificate waits as the fallback."""
        folder = self.fallback_dir
        return folder.is_dir() and any(folder.glob("*.pem"))

    def drop_fallback(self) -> None:
        """The new root verified the central system: the old one goes."""
        for path in self.fallback_dir.glob("*.pem"):
            path.unlink(missing_ok=True)

    def restore_fallback(self) -> None:
        """The new root could not verify the central system: the old one comes back."""
        folder = self._root_dir(CENTRAL_SYSTEM_ROOT)
        for path in self.root_files(CENTRAL_SYSTEM_ROOT):
            path.unlink(missing_ok=True)
        for path in self.fallback_dir.glob("*.pem"):
            path.replace(folder / path.name)

    def _replace_root(self, cert: x509.Certificate) -> str | None:
        """AdditionalRootCertificateCheck: cert must be signed by the installed
        CentralSystemRootCertificate (or be it); that one becomes the fallback. Why not, or
        None when cert may be written (the caller writes it)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        current = self.roots(CENTRAL_SYSTEM_ROOT)
        if not current:
            return None  # the first root: nothing to be signed by
        for root in current:
            if root.fingerprint(hashes.SHA256()) == cert.fingerprint(hashes.SHA256()):
                return None
        for root in current:
            try:
                cert.verify_directly_issued_by(root)
            except (ValueError, TypeError, InvalidSignature):
                continue
            self._private(self.fallback_dir)
            self.drop_fallback()  # only the latest replaced root is kept
            for path in self.root_files(CENTRAL_SYSTEM_ROOT):
                path.replace(self.fallback_dir / path.name)
            return None
        return "not signed by the installed CentralSystemRootCertificate"

    def install(self, kind: str, pem: str, now: datetime | None = None, *,
                replace: bool = False) -> str:
        """InstallCertificate: Accepted, Rejected (not a valid CA certificate now; with
        replace, a CentralSystemRootCertificate not signed by the installed one) or Failed
        (the store is full, or it cannot be written). replace (AdditionalRootCertificateCheck):
        a new CentralSystemRootCertificate replaces the installed one, kept as the fallback."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        try:
            certs = load_chain(pem)
        except CertificateError as exc:
            log.warning("InstallCertificate %s rejected: %s", kind, exc)
            return "Rejected"
        cert = certs[0]
        problem = _valid_now(cert, now or datetime.now(UTC))
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if problem or not is_ca:
            log.warning("InstallCertificate %s rejected: %s", kind, problem or "not a CA")
            return "Rejected"
        name = cert.fingerprint(hashes.SHA256()).hex() + ".pem"
        folder = self._root_dir(kind)
        if replace and kind == CENTRAL_SYSTEM_ROOT:
            refused = self._replace_root(cert)
            if refused:
                log.warning("InstallCertificate %s rejected: %s (AdditionalRootCertificateCheck)",
                            kind, refused)
                return "Rejected"
        existing = self.root_files(kind)
        if folder / name not in existing and len(self.all_ids()) >= self.max_roots:
            log.warning("InstallCertificate %s failed: %d certificates installed (the most)",
                        kind, self.max_roots)
            return "Failed"
        try:
            self._private(folder)
            write_private(folder / name, cert.public_bytes(serialization.Encoding.PEM).decode())
        except OSError as exc:
            log.error("InstallCertificate %s failed: %s", kind, exc)
            return "Failed"
        return "Accepted"

    def ids(self, kind: str) -> list[HashData]:
        """GetInstalledCertificateIds of a type."""
        certs = self.roots(kind)
        return [hash_data(c, self._issuer(c, certs)) for c in certs]

    def all_ids(self) -> list[tuple[str, HashData, Path]]:
        """Every installed root: (type, hash data, file)."""
        out: list[tuple[str, HashData, Path]] = []
        for kind in ROOT_TYPES:
            certs = self.roots(kind)
            for path in self.root_files(kind):
                try:
                    cert = load_chain(path.read_text())[0]
                except (OSError, CertificateError):
                    continue
                out.append((kind, hash_data(cert, self._issuer(cert, certs)), path))
        return out

    @staticmethod
    def _issuer(cert: x509.Certificate, certs: list[x509.Certificate]
                ) -> x509.Certificate | None:
        from cryptography.exceptions import InvalidSignature
        for other in certs:
            if other.subject == cert.issuer:
                try:
                    cert.verify_directly_issued_by(other)
                except (ValueError, TypeError, InvalidSignature):
                    continue
                return other
        return None

    def find(self, wanted: HashData) -> tuple[str, Path] | None:
        """The installed root a CertificateHashData names: (type, file)."""
        for kind, data, path in self.all_ids():
            if (data.issuer_name_hash.lower(), data.issuer_key_hash.lower(),
                    data.serial_number.lower().lstrip("0")) == (
                    wanted.issuer_name_hash.lower(), wanted.issuer_key_hash.lower(),
                    wanted.serial_number.lower().lstrip("0")):
                return kind, path
        return None

    # --- the charge point certificate ------------------------------------------------------------

    @property
    def key_file(self) -> Path:
        """The charge point's private key (0600)."""
        return self.dir / "charge_point" / "key.pem"

    @property
    def cert_file(self) -> Path:
        """The charge point's certificate chain, leaf first."""
        return self.dir / "charge_point" / "cert.pem"

    @property
    def pending_key_file(self) -> Path:
        """The key of the last CSR, until its certificate arrives (0600)."""
        return self.dir / "charge_point" / "pending_key.pem"

    def has_client_certificate(self) -> bool:
        """A charge point certificate (and its key) was installed by CertificateSigned."""
        return self.key_file.is_file() and self.cert_file.is_file()

    def due_for_renewal(self, now: datetime | None = None) -> bool:
        """The installed charge point certificate has less than RENEW_AT of its lifetime left
        (the station then asks for a new one itself, before it expires)."""
        if not self.has_client_certificate():
            return False
        try:
            leaf = load_chain(self.cert_file.read_text())[0]
        except (OSError, CertificateError):
            return True
        now = now or datetime.now(UTC)
        life = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds()
        left = (leaf.not_valid_after_utc - now).total_seconds()
        return left < RENEW_AT * life

    def make_csr(self, common_name: str, organization: str) -> str:
        """A new ECDSA P-256 key, kept as the pending key (0600), and its PEM CSR with
        CN=common_name (the charge point identity) and O=organization (CpoName)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]
        if organization:
            names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64]))
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name(names))
               .sign(key, hashes.SHA256()))
        self._private(self.pending_key_file.parent)
        write_private(self.pending_key_file, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode())
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def accept_signed(self, chain_pem: str, *, common_name: str,
                      extra_roots: list[x509.Certificate] | None = None,
                      now: datetime | None = None) -> None:
        """CertificateSigned: the chain's leaf must be for the pending key, carry the charge
        point's identity as CN, and chain to an installed CentralSystemRootCertificate (or
        one of extra_roots: the configured CA file); then it (and the key) become the charge
        point certificate. CertificateError: why not."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.x509.oid import NameOID
        chain = load_chain(chain_pem)
        if not self.pending_key_file.is_file():
            raise CertificateError("no certificate signing request is pending")
        key = serialization.load_pem_private_key(self.pending_key_file.read_bytes(), None)
        leaf = chain[0]
        mine = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        theirs = leaf.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        if mine != theirs:
            raise CertificateError("the certificate is not for the key of the pending CSR")
        names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names or names[0].value != common_name:
            raise CertificateError(f"the certificate's CN is not {common_name!r}")
        verify_chain(chain, self.roots(CENTRAL_SYSTEM_ROOT) + (extra_roots or []), now)
        write_private(self.cert_file, "".join(
            c.public_bytes(serialization.Encoding.PEM).decode() for c in chain))
        os.replace(self.pending_key_file, self.key_file)
