"""Third-party clients, unmodified, through the proxy with nothing but the `env` exports.

Each client talks to https://acme.atlassian.net as it would in real use; the TLS stand-in
records what arrives, which is the proof: the configured identity, not the client's own.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from support.clients import with_env_exports
from support.proxy import EMAIL, TOKEN_192, basic

SITE = "https://acme.atlassian.net"

PYTHON_JIRA = (
    "from jira import JIRA; "
    f"print(JIRA(server='{SITE}', basic_auth=('someone@example.com', 'client-token')).myself()['displayName'])"
)
ATLASSIAN_PYTHON_API = (
    "from atlassian import Jira; "
    f"print(Jira(url='{SITE}', username='someone@example.com', password='client-token').myself()['displayName'])"
)
CLIENTS = {
    "jira": f'python -c "{PYTHON_JIRA}"',
    "atlassian-python-api": f'python -c "{ATLASSIAN_PYTHON_API}"',
    "httpie": f"http --ignore-stdin --print=b -a someone@example.com:client-token {SITE}/rest/api/3/myself",
}


@pytest.mark.parametrize("name", list(CLIENTS))
def test_client_gets_the_configured_identity(proxy, site, tmp_path, name):
    before = len(site.record.requests)
    result = with_env_exports(proxy.port, proxy.confdir, tmp_path, CLIENTS[name])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Test User" in result.stdout
    arrived = site.record.requests[before:]
    assert arrived, "nothing reached the site"
    assert {r.header("Authorization") for r in arrived} == {basic(EMAIL, TOKEN_192)}


def node_honours_env_proxy() -> bool:
    """Ask Node where its fetch goes with a proxy set: both addresses are closed loopback ports."""
    probe = subprocess.run(
        [
            "node",
            "-e",
            'fetch("https://127.0.0.2:2/").catch(e => console.log(e.cause && e.cause.address + ":" + e.cause.port))',
        ],
        env={"PATH": "/usr/bin:/bin", "NODE_USE_ENV_PROXY": "1", "HTTPS_PROXY": "http://127.0.0.3:3"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return re.search(r"127\.0\.0\.3:3", probe.stdout) is not None


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_fetch_gets_the_configured_identity(proxy, site, tmp_path):
    if not node_honours_env_proxy():
        pytest.skip("this Node ignores NODE_USE_ENV_PROXY (it needs Node >= 22.21 or 24); see README")
    before = len(site.record.requests)
    script = f"node -e 'fetch(\"{SITE}/rest/api/3/myself\").then(r => r.json()).then(j => console.log(j.displayName))'"
    result = with_env_exports(proxy.port, proxy.confdir, tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert "Test User" in result.stdout
    assert site.record.requests[before].header("Authorization") == basic(EMAIL, TOKEN_192)
