"""Certificates made in the test: a CA, server and client certificates signed by it,
for the etcd and MySQL TLS tests.

Why made here rather than kept as files: a checked-in key would be a real key in the
repository, and a made one can name exactly the host the test needs (an IP address
SAN for 127.0.0.1, or on purpose a name that is not the host). Why not ``openssl``:
the tests need a certificate already expired, one from an unrelated CA and keys that
match, in a few lines and without a shell; the ``cryptography`` package (the ``test``
extra) does all of it in memory. Keys are EC P-256 (fast to make, accepted by
OpenSSL builds of etcd and MariaDB and by Python's ssl); every file is written with
mode 0600 from its creation.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Authority:
    """A self-signed CA that signs leaf certificates; ``cert`` is its PEM file."""

    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    cert: Path

    @classmethod
    def create(cls, directory: Path, name: str) -> "Authority":
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name)
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        path = directory / f"{name}.crt"
        _write(path, certificate.public_bytes(serialization.Encoding.PEM))
        return cls(name, key, certificate, path)

    def issue(self, directory: Path, name: str, *, common_name: str | None = None,
              server: bool = False, expired: bool = False,
              names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> CertFiles:
        """A leaf certificate in ``name``.crt/.key, its CN ``common_name`` (none if
        None: etcd's JSON gateway refuses a client certificate with one once auth is
        on). A server certificate names ``names`` (IP addresses or DNS names) and may
        also serve as a client one (etcd's gateway presents it to etcd itself);
        ``expired`` ended yesterday."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        start, end = (now - 10 * DAY, now - DAY) if expired else (now - DAY, now + 30 * DAY)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        subject = _name(common_name) if common_name else x509.Name([])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_encipherment=False, key_cert_sign=False,
                crl_sign=False, content_commitment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [_general_name(n) for n in names]), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        files = CertFiles(directory / f"{name}.crt", directory / f"{name}.key")
        _write(files.cert, certificate.public_bytes(serialization.Encoding.PEM))
        _write(files.key, key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
        return files


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
