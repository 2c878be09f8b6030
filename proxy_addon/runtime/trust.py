"""The CA bundles the proxy writes: what clients trust, and what the proxy trusts upstream.

Both are the public CAs (certifi) plus one more CA, built by `write_bundle`:
- clients that replace their trust store (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, ...) get the
  public CAs plus the proxy's CA, so hosts the proxy only tunnels keep working;
- mitmproxy's upstream CA option replaces its default store, so an extra upstream CA
  (`ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE`) is added to the public CAs rather than used alone.

Java reads neither PEM bundles nor `SSL_CERT_FILE`, so the client bundle is also written as a
PKCS12 truststore (`write_client_truststore`) that `JAVA_TOOL_OPTIONS` points the JVM at.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12
from cryptography.utils import CryptographyDeprecationWarning

CA_CERT_NAME = "mitmproxy-ca-cert.pem"
CLIENT_BUNDLE_NAME = "atlassian-auth-proxy-ca-bundle.pem"
UPSTREAM_BUNDLE_NAME = "atlassian-auth-proxy-upstream-ca.pem"
TRUSTSTORE_NAME = "atlassian-auth-proxy-truststore.p12"
TRUSTSTORE_PASSWORD = "changeit"  # noqa: S105 - public: the store holds only public CA certificates
"""Java's well-known default: a truststore's password only guards its integrity MAC, not a secret."""


def write_bundle(path: Path, extra: Path) -> Path:
    """Write the public CAs plus the CAs in `extra` to `path`, atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(Path(certifi.where()).read_text() + "\n" + extra.read_text())
    partial.replace(path)
    return path


def write_client_bundle(confdir: Path) -> Path | None:
    """`<confdir>/atlassian-auth-proxy-ca-bundle.pem`, once mitmproxy has made its CA."""
    ca = confdir / CA_CERT_NAME
    if not ca.is_file():
        return None
    return write_bundle(confdir / CLIENT_BUNDLE_NAME, ca)


def write_upstream_bundle(extra: Path, confdir: Path) -> Path:
    return write_bundle(confdir / UPSTREAM_BUNDLE_NAME, extra)


def write_truststore(path: Path, bundle: Path) -> Path:
    """Write every CA of the PEM `bundle` to a PKCS12 truststore at `path`, atomically.

    `serialize_java_truststore` marks each entry as a trusted certificate (the attribute the
    JDK needs to treat it as a trust anchor); SHA-1/3DES protection is the one every JDK
    from 8 on reads.
    """
    with warnings.catch_warnings(action="ignore", category=CryptographyDeprecationWarning):
        certs = x509.load_pem_x509_certificates(bundle.read_bytes())  # a public CA has a non-positive serial
    entries = [pkcs12.PKCS12Certificate(cert, f"ca-{number:03d}".encode()) for number, cert in enumerate(certs)]
    protection = (
        PrivateFormat.PKCS12.encryption_builder()
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())  # noqa: S303 - the MAC every JDK reads; the content is public
        .build(TRUSTSTORE_PASSWORD.encode())
    )
    partial = path.with_suffix(".partial")
    partial.write_bytes(pkcs12.serialize_java_truststore(entries, protection))
    partial.replace(path)
    return path


def write_client_truststore(confdir: Path) -> Path | None:
    """`<confdir>/atlassian-auth-proxy-truststore.p12`: the client bundle's CAs, for Java."""
    bundle = confdir / CLIENT_BUNDLE_NAME
    if not bundle.is_file():
        return None
    return write_truststore(confdir / TRUSTSTORE_NAME, bundle)
