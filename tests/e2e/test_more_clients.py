"""More real clients, each with nothing but the `env` exports (and, where one is documented, its one line).

Node clients come from `tests/node` (`npm ci --prefix tests/node`, which `.ci/run` does). A
runtime missing on a developer's machine skips; with CI=true it fails, so CI proves every row
of the README's Clients table.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from support.clients import with_env_exports
from support.proxy import EMAIL, TOKEN_192, basic

SITE = "https://acme.atlassian.net"
NODE_MODULES = Path(__file__).parents[1] / "node" / "node_modules"


def require(what: str, present: bool) -> None:
    if not present:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must provide {what} (see .ci/run)")
        pytest.skip(f"{what} is not installed")


def arrived_with_identity(site, before: int, path: str) -> None:
    arrived = [r for r in site.record.requests[before:] if r.path == path]
    assert arrived, f"{path} never reached the site"
    assert {r.header("Authorization") for r in arrived} == {basic(EMAIL, TOKEN_192)}
    assert {r.sni for r in arrived} == {"acme.atlassian.net"}


def run_client(proxy, site, tmp_path, via: str, script: str, **env: str):
    before = len(site.record.requests)
    result = with_env_exports(proxy.port, proxy.confdir, tmp_path, script, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    arrived_with_identity(site, before, f"/rest/api/3/myself?via={via}")
    return result


NODE = {
    "axios": "require('axios').get(URL, {auth: {username: 'someone', password: 'client-token'}})"
    ".then(r => console.log(r.status, r.data.displayName))",
    # before 1.16.1, axios sends `GET https://... HTTP/1.1` to the proxy in plain text instead of CONNECT
    "axios-before-1-16-1": "require('axios-before-1-16-1').get(URL)"
    ".then(r => console.log(r.status, r.data.displayName))",
    "jira.js": "const { Version3Client } = require('jira.js');"
    "new Version3Client({host: 'https://acme.atlassian.net', "
    "authentication: {basic: {email: 'someone@example.com', apiToken: 'client-token'}}})"
    ".myself.getCurrentUser().then(u => console.log(200, u.displayName))",
    "undici": "const { EnvHttpProxyAgent, fetch } = require('undici');"
    "fetch(URL, {dispatcher: new EnvHttpProxyAgent()})"
    ".then(async r => console.log(r.status, (await r.json()).displayName))",
}


@pytest.mark.parametrize("name", list(NODE))
def test_node_clients(proxy, site, tmp_path, name):
    require("node and tests/node/node_modules", shutil.which("node") is not None and NODE_MODULES.is_dir())
    via = name.replace(".", "-")
    script = NODE[name].replace("URL", f"'{SITE}/rest/api/3/myself?via={via}'")
    if name == "jira.js":  # jira.js chooses its own path; mark the request by a query the stand-in keeps
        script = script.replace(".myself.getCurrentUser()", f".myself.getCurrentUser({{expand: 'via={via}'}})")
    (tmp_path / "client.js").write_text(script)
    before = len(site.record.requests)
    result = with_env_exports(proxy.port, proxy.confdir, tmp_path, "node client.js", NODE_PATH=str(NODE_MODULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "200 Test User"
    arrived = site.record.requests[before:]
    assert arrived, "nothing reached the site"
    assert {r.header("Authorization") for r in arrived} == {basic(EMAIL, TOKEN_192)}
    assert {r.sni for r in arrived} == {"acme.atlassian.net"}


def test_python_urllib(proxy, site, tmp_path):
    code = (
        "import json, urllib.request; "
        f"r = urllib.request.urlopen('{SITE}/rest/api/3/myself?via=urllib', timeout=20); "
        "print(r.status, json.load(r)['displayName'])"
    )
    result = run_client(proxy, site, tmp_path, "urllib", f'python -c "{code}"')
    assert result.stdout.strip() == "200 Test User"


def test_aiohttp_with_trust_env(proxy, site, tmp_path):
    code = (
        "import asyncio, aiohttp\n"
        "async def main():\n"
        "    async with aiohttp.ClientSession(trust_env=True) as s:\n"
        f"        async with s.get('{SITE}/rest/api/3/myself?via=aiohttp') as r:\n"
        "            print(r.status, (await r.json())['displayName'])\n"
        "asyncio.run(main())\n"
    )
    (tmp_path / "client.py").write_text(code)
    result = run_client(proxy, site, tmp_path, "aiohttp", "python client.py")
    assert result.stdout.strip() == "200 Test User"


def test_wget_with_the_documented_line(proxy, site, tmp_path):
    require("wget", shutil.which("wget") is not None)
    line = f'wget -q -O - --ca-certificate="$SSL_CERT_FILE" "{SITE}/rest/api/3/myself?via=wget"'
    result = run_client(proxy, site, tmp_path, "wget", line)
    assert "Test User" in result.stdout


def test_git(proxy, site, tmp_path):
    """git reaches the site with the identity; the stand-in is no git server, so git then gives up."""
    require("git", shutil.which("git") is not None)
    before = len(site.record.requests)
    result = with_env_exports(
        proxy.port, proxy.confdir, tmp_path, f"git ls-remote {SITE}/acme/repo.git", GIT_TERMINAL_PROMPT="0"
    )
    assert "SSL" not in result.stderr, result.stderr
    assert "proxy" not in result.stderr.lower(), result.stderr
    arrived_with_identity(site, before, "/acme/repo.git/info/refs?service=git-upload-pack")


GO_MAIN = """package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	response, err := http.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(response.Body)
	fmt.Println(response.StatusCode, string(body))
}
"""


def test_go_net_http(proxy, site, tmp_path):
    require("go", shutil.which("go") is not None)
    (tmp_path / "main.go").write_text(GO_MAIN)
    result = run_client(
        proxy,
        site,
        tmp_path,
        "go",
        f"go run main.go '{SITE}/rest/api/3/myself?via=go'",
        GOCACHE=str(tmp_path / "go-cache"),
        GOPATH=str(tmp_path / "go"),
        GOFLAGS="-mod=mod",
        GOTOOLCHAIN="local",
    )
    assert result.stdout.startswith("200 ")
