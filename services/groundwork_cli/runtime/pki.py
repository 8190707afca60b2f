"""A local certificate authority and the edge's server certificate, created at
first start and kept in the state directory (trust the CA to call the edge over TLS)."""

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


@dataclass(frozen=True)
class Pki:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    def cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"


def ensure_mesh_certs(pki: Pki, identities: dict[str, str]) -> None:
    """One certificate per mesh identity (name -> SPIFFE ID), under pki/mesh/."""
    for name, spiffe in identities.items():
        ensure_server_cert(pki, f"mesh/{name}", [name], [], [spiffe])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ensure_ca(pki: Pki) -> None:
    if pki.ca_cert.exists() and pki.ca_key.exists():
        return
    pki.directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Groundwork local CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(pki.ca_key, key)
    pki.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_server_cert(
    pki: Pki, name: str, dns: list[str], ips: list[str], uris: list[str] | None = None
) -> None:
    """Issue `name`.crt for the given names unless a valid one exists. A cert with
    a URI SAN is a mesh identity: usable as server and as client (mTLS)."""
    uris = uris or []
    if pki.cert(name).exists() and pki.key(name).exists():
        existing = x509.load_pem_x509_certificate(pki.cert(name).read_bytes())
        sans = existing.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have = {str(v) for v in sans.get_values_for_type(x509.IPAddress)}
        have |= set(sans.get_values_for_type(x509.UniformResourceIdentifier))
        fresh = existing.not_valid_after_utc > _now() + dt.timedelta(days=1)
        if set(ips) | set(uris) <= have and fresh:
            return
    alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    alt_names += [x509.UniformResourceIdentifier(uri) for uri in uris]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if uris else [])
    _issue(
        pki, name, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])]), alt_names, usages
    )


def issue_client_cert(pki: Pki, name: str, user: str, groups: list[str]) -> None:
    """A client certificate as Kubernetes reads one: the user in CN, groups in O."""
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
    subject += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    _issue(pki, name, x509.Name(subject), [], [ExtendedKeyUsageOID.CLIENT_AUTH])


def _issue(
    pki: Pki,
    name: str,
    subject: x509.Name,
    alt_names: list[x509.GeneralName],
    usages: list[x509.ObjectIdentifier],
) -> None:
    ensure_ca(pki)
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    pki.cert(name).parent.mkdir(parents=True, exist_ok=True)
    _write_key(pki.key(name), key)
    pki.cert(name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
