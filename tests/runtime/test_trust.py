"""The CA bundles the proxy writes: the public CAs plus one more, as PEM and as a Java truststore."""

from __future__ import annotations

import warnings
from pathlib import Path

import certifi
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.utils import CryptographyDeprecationWarning

from proxy_addon.runtime.trust import (
    CA_CERT_NAME,
    CLIENT_BUNDLE_NAME,
    TRUSTSTORE_PASSWORD,
    write_client_bundle,
    write_client_truststore,
    write_upstream_bundle,
)

BEGIN = "-----BEGIN CERTIFICATE-----"
PUBLIC = Path(certifi.where()).read_text().count(BEGIN)


def test_nothing_is_written_before_mitmproxy_made_its_ca(tmp_path):
    assert write_client_bundle(tmp_path) is None
    assert write_client_truststore(tmp_path) is None


def test_the_client_bundle_is_the_public_cas_and_the_proxys_and_java_gets_the_same(tmp_path, ca):
    ca.cert_pem.write_to_path(str(tmp_path / CA_CERT_NAME))
    bundle = write_client_bundle(tmp_path)
    assert bundle == tmp_path / CLIENT_BUNDLE_NAME
    text = bundle.read_text()
    assert text.count(BEGIN) == PUBLIC + 1
    assert text.rstrip().endswith(ca.cert_pem.bytes().decode().rstrip())
    truststore = write_client_truststore(tmp_path)
    assert truststore is not None
    with warnings.catch_warnings(action="ignore", category=CryptographyDeprecationWarning):
        store = pkcs12.load_pkcs12(truststore.read_bytes(), TRUSTSTORE_PASSWORD.encode())
    assert len(store.additional_certs) == PUBLIC + 1


def test_the_upstream_bundle_adds_the_extra_ca_to_the_public_ones(tmp_path, ca):
    extra = tmp_path / "corp-ca.pem"
    ca.cert_pem.write_to_path(str(extra))
    written = write_upstream_bundle(extra, tmp_path / "confdir")
    assert written.read_text().count(BEGIN) == PUBLIC + 1
    assert not list((tmp_path / "confdir").glob("*.partial")), "written whole, then moved in place"
