"""`atlassian-auth-proxy env`: its exports, eval'd in sh, make plain clients use and trust the proxy."""

from __future__ import annotations

import shlex
import ssl
import subprocess

from proxy_addon.commands.env import render, variables
from proxy_addon.runtime.trust import CLIENT_BUNDLE_NAME
from proxy_addon.settings.model import Settings

from support.clients import with_env_exports
from support.exports import EXPORTED
from support.proxy import EMAIL, TOKEN_192, basic, command

MYSELF = "https://acme.atlassian.net/rest/api/3/myself"


def test_eval_env_then_plain_curl_and_python_requests_get_the_identity(proxy, site, tmp_path):
    script = (
        f"curl -sS --max-time 20 {MYSELF}?via=curl && "
        "python -c \"import requests; r = requests.get('" + MYSELF + "?via=requests', timeout=20); "
        'print(r.status_code, r.json()[\\"displayName\\"])"'
    )
    result = with_env_exports(proxy.port, proxy.confdir, tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("200 Test User\n")
    seen = {r.path: r for r in site.record.requests}
    for via in ("curl", "requests"):
        assert seen[f"/rest/api/3/myself?via={via}"].header("Authorization") == basic(EMAIL, TOKEN_192)


def test_with_proxy_auth_the_exported_proxy_url_carries_the_login(make_proxy, site, tmp_path):
    login = "ci:p@ss w:rd/%-and-more-of-it"
    proxy = make_proxy(ATLASSIAN_PROXY_PROXY_AUTH=login)
    denied = with_env_exports(proxy.port, proxy.confdir, tmp_path, f"curl -sS -o /dev/null -w %{{http_code}} {MYSELF}")
    assert "407" in denied.stdout + denied.stderr, "without the login in the environment the proxy refuses"
    result = with_env_exports(
        proxy.port, proxy.confdir, tmp_path, f"curl -sS --max-time 20 {MYSELF}", ATLASSIAN_PROXY_PROXY_AUTH=login
    )
    assert result.returncode == 0, result.stderr
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)


def test_values_survive_quoting_in_every_shell(tmp_path):
    odd = tmp_path / "it's a \\ dir"
    exports = variables(Settings(listen_port=8123, confdir=odd))
    sh = subprocess.run(
        ["sh", "-c", render(exports, "sh") + 'printf %s "$SSL_CERT_FILE"'], capture_output=True, text=True, check=True
    )
    assert sh.stdout == str(odd / CLIENT_BUNDLE_NAME)
    assert f"set -gx SSL_CERT_FILE '{tmp_path}/it\\'s a \\\\ dir/{CLIENT_BUNDLE_NAME}';" in render(exports, "fish")
    assert f"$env:SSL_CERT_FILE = '{tmp_path}/it''s a \\ dir/{CLIENT_BUNDLE_NAME}'" in render(exports, "powershell")


def test_the_client_bundle_trusts_the_proxy_and_the_public_cas(proxy):
    bundle = proxy.confdir / CLIENT_BUNDLE_NAME
    assert (proxy.confdir / "mitmproxy-ca-cert.pem").read_text() in bundle.read_text()
    context = ssl.create_default_context(cafile=str(bundle))
    assert context.cert_store_stats()["x509_ca"] > 100


def test_env_without_a_known_port_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [*command(), "env", "--listen-port", "0"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "ATLASSIAN_PROXY_LISTEN_PORT is 0" in result.stderr


def test_env_prints_nothing_but_exports(tmp_path):
    result = subprocess.run(
        [*command(), "env", "--listen-port", "8123"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"ATLASSIAN_PROXY_CONFDIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == len(EXPORTED)
    assert all(shlex.split(line)[0] == "export" for line in lines)
    assert "does not exist yet" in result.stderr  # no proxy ever ran with this confdir
