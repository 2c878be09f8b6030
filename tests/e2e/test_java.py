"""Java: the JVM ignores HTTPS_PROXY and PEM bundles; `JAVA_TOOL_OPTIONS` from `env` is all it gets."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from proxy_addon.runtime.trust import CLIENT_BUNDLE_NAME, TRUSTSTORE_NAME, TRUSTSTORE_PASSWORD

from support.clients import with_env_exports
from support.proxy import EMAIL, TOKEN_192, basic

MAIN = """
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Main {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newHttpClient();
        HttpRequest request = HttpRequest.newBuilder(URI.create(args[0])).build();
        HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println(response.statusCode() + " " + response.body());
    }
}
"""


def require_java() -> None:
    if shutil.which("java") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have a JDK (see .ci/run)")
        pytest.skip("java is not installed")


def test_java_http_client_with_only_java_tool_options(proxy, site, tmp_path):
    require_java()
    (tmp_path / "Main.java").write_text(MAIN)
    url = "https://acme.atlassian.net/rest/api/3/myself?via=java"
    result = with_env_exports(proxy.port, proxy.confdir, tmp_path, f"java Main.java '{url}'")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("200 "), result.stdout
    assert "Test User" in result.stdout
    seen = site.record.last()
    assert seen.path == "/rest/api/3/myself?via=java"
    assert seen.header("Authorization") == basic(EMAIL, TOKEN_192)


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
