"""Sandbox PKI: a CA, the apiserver's serving cert, admin and per-tool client certs (Python `cryptography`).

Tool certificates are shaped like Toolforge's (maintain-kubeusers): CN = tool name, O = toolforge.
RSA 2048 and SHA-256 everywhere; extensions kept strict so Go's TLS and Python's ssl both accept them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for a sandbox that lives for weeks; tests that need expired certs mint their own.
DEFAULT_DAYS = 365
# Backdated so a clock that is a little behind does not make a fresh cert "not yet valid".
BACKDATE = dt.timedelta(hours=1)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load(path: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert = x509.load_pem_x509_certificate(path.with_suffix(".crt").read_bytes())
    key = serialization.load_pem_private_key(path.with_suffix(".key").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return cert, key


def ensure_ca(pki: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """Create (once) the sandbox CA in PKI/ca.{crt,key} and the service-account key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    if (pki / "ca.crt").exists():
        return load(pki / "ca")
    key = _key()
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gridshim-sandbox-ca")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=10 * DEFAULT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(pki / "ca.key", key)
    _write_cert(pki / "ca.crt", cert)
    sa = _key()
    _write_key(pki / "sa.key", sa)
    (pki / "sa.pub").write_bytes(
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return cert, key


def issue(
    ca: tuple[x509.Certificate, rsa.RSAPrivateKey],
    *,
    cn: str,
    orgs: tuple[str, ...] = (),
    server: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """Return (cert PEM, key PEM) for a leaf signed by CA. Dates are overridable for expiry tests."""
    ca_cert, ca_key = ca
    key = _key()
    now = dt.datetime.now(dt.UTC)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - BACKDATE)
        .not_valid_after(not_after or now + dt.timedelta(days=DEFAULT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_encipherment=True, key_cert_sign=False, crl_sign=False,
                content_commitment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def request(*, cn: str, orgs: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """Return (CSR PEM, key PEM) for a client certificate CN/O=ORGS that another cluster's signer issues
    (the CertificateSigningRequest API; the e2e suite's external mode)."""
    key = _key()
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_leaf(pki: Path, ca: tuple[x509.Certificate, rsa.RSAPrivateKey], name: str, **kw: object) -> Path:
    """Create PKI/NAME.{crt,key} once; return the path stem."""
    stem = pki / name
    if not stem.with_suffix(".crt").exists():
        crt, key = issue(ca, **kw)  # type: ignore[arg-type]
        stem.with_suffix(".key").write_bytes(key)
        stem.with_suffix(".key").chmod(0o600)
        stem.with_suffix(".crt").write_bytes(crt)
    return stem
