"""A private CA and server certificates for the compose stack's TLS (mosquitto 8883, the API).

mosquitto/init_broker.py calls ensure() on every start when VOLTBUS_TLS_DIR is set: the CA is
made once (10 years) and kept; each server certificate (2 years) is made again when missing,
when its names changed (VOLTBUS_TLS_NAMES) or when it has less than 30 days left. Clients
trust `ca.crt` (Home Assistant's broker settings, a browser, `mosquitto_sub --cafile`).
Keys are 0600 and owned by the process that serves them (the broker's uid, the API's uid).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS, SERVER_DAYS, RENEW_DAYS = 3650, 730, 30
BASE_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Server:
    """One server certificate: file stem (stem.crt, stem.key), extra names, key owner uid."""

    stem: str
    names: tuple[str, ...]
    uid: int | None = None


def _write(path: Path, data: bytes, mode: int, uid: int | None = None) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if uid is not None and os.geteuid() == 0:
        os.chown(tmp, uid, uid)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "voltbus"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _san(names: tuple[str, ...]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    return cert, key


def _new_ca(directory: Path, now: dt.datetime) -> tuple[x509.Certificate,
                                                         ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("voltbus local CA")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write(directory / "ca.key", _key_pem(key), 0o600)
    _write(directory / "ca.crt", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _current(directory: Path, server: Server, names: tuple[str, ...], ca: x509.Certificate,
             now: dt.datetime) -> bool:
    """Whether stem.crt exists, is signed by this CA, has these names and is not expiring."""
    try:
        cert = x509.load_pem_x509_certificate((directory / f"{server.stem}.crt").read_bytes())
        (directory / f"{server.stem}.key").stat()
    except (OSError, ValueError):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (cert.issuer == ca.subject and san == _san(names)
            and cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_DAYS))


def ensure(directory: Path, servers: list[Server], names: tuple[str, ...] = ()) -> list[str]:
    """Make the CA and every server certificate current; the file stems (re)made."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    made: list[str] = []
    loaded = _load_ca(directory)
    if loaded is None or loaded[0].not_valid_after_utc - now < dt.timedelta(days=RENEW_DAYS):
        loaded = _new_ca(directory, now)
        made.append("ca")
    ca, ca_key = loaded
    for server in servers:
        all_names = tuple(dict.fromkeys((*server.names, *names, *BASE_NAMES)))
        if "ca" not in made and _current(directory, server, all_names, ca, now):
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(all_names[0]))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
                .add_extension(_san(all_names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write(directory / f"{server.stem}.key", _key_pem(key), 0o600, server.uid)
        _write(directory / f"{server.stem}.crt", cert.public_bytes(serialization.Encoding.PEM)
               + ca.public_bytes(serialization.Encoding.PEM), 0o644, server.uid)
        made.append(server.stem)
    return made
