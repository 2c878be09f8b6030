"""The CA bundles the proxy writes: what clients trust, and what the proxy trusts upstream.

Both are the public CAs (certifi) plus one more CA, built by `write_bundle`:
- clients that replace their trust store (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, ...) get the
  public CAs plus the proxy's CA, so hosts the proxy only tunnels keep working;
- mitmproxy's upstream CA option replaces its default store, so an extra upstream CA
  (`ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE`) is added to the public CAs rather than used alone.
"""

from __future__ import annotations

from pathlib import Path

import certifi

CA_CERT_NAME = "mitmproxy-ca-cert.pem"
CLIENT_BUNDLE_NAME = "atlassian-auth-proxy-ca-bundle.pem"
UPSTREAM_BUNDLE_NAME = "atlassian-auth-proxy-upstream-ca.pem"


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
