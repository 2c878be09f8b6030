"""Java: the JVM ignores HTTPS_PROXY and PEM bundles; `JAVA_TOOL_OPTIONS` from `env` is all its recipe in
docs/how-to/clients.md gets."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from proxy_addon.runtime.trust import CLIENT_BUNDLE_NAME, TRUSTSTORE_NAME, TRUSTSTORE_PASSWORD

from support.clients import assert_identity, require, run_recipe
from support.recipes import CLIENTS, recipe


def test_java_http_client_with_only_java_tool_options(proxy, site, tmp_path):
    require("a JDK (java)", shutil.which("java") is not None)
    result, arrived = run_recipe(proxy, site, tmp_path, recipe(CLIENTS, "java"))
    assert result.returncode == 0, result.stderr
    assert "Test User" in result.stdout, result.stdout
    assert [r.path for r in arrived] == ["/rest/api/3/myself"]
    assert_identity(arrived)


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_the_truststore_holds_the_client_bundles_cas_as_trusted_entries(proxy):
    bundle = x509.load_pem_x509_certificates((proxy.confdir / CLIENT_BUNDLE_NAME).read_bytes())
    store = pkcs12.load_pkcs12((proxy.confdir / TRUSTSTORE_NAME).read_bytes(), TRUSTSTORE_PASSWORD.encode())
    assert store.key is None
    assert [entry.certificate for entry in store.additional_certs] == bundle
    if shutil.which("keytool"):
        listing = subprocess.run(
            ["keytool", "-list", "-keystore", str(proxy.confdir / TRUSTSTORE_NAME), "-storepass", TRUSTSTORE_PASSWORD],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert listing.count("trustedCertEntry") == len(bundle)
