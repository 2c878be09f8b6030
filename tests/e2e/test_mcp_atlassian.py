"""mcp-atlassian under a real MCP host (the MCP Python SDK), configured as docs/how-to/mcp-and-exec.md says.

The host configurations are read from the page; the test replaces only the example paths (and the
example proxy's address) with this machine's, and adds, for `exec`, only what stands in for the
keyring entry and for the real site. mcp-atlassian lives in a virtualenv of its own, as `pipx`
would give it, built from tests/mcp-atlassian/requirements.txt once and kept in the user's cache.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import TextContent

from support.clients import assert_identity, require
from support.proxy import TOKEN_192, basic, command, proxy_env
from support.recipes import MCP_AND_EXEC, Recipe, recipe

REQUIREMENTS = Path(__file__).parents[1] / "mcp-atlassian" / "requirements.txt"
EXAMPLE_PROXY = "/home/you/atlassian-auth-proxy/.venv/bin/atlassian-auth-proxy"
EXAMPLE_SERVER = "/home/you/.local/bin/mcp-atlassian"
EXAMPLE_PROXY_URL = "http://127.0.0.1:8080"
EXAMPLE_CONFDIR = "/home/you/.mitmproxy"
PLACEHOLDERS = ("JIRA_USERNAME", "JIRA_API_TOKEN", "CONFLUENCE_USERNAME", "CONFLUENCE_API_TOKEN")
INSTALL_SECONDS = 600


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


@pytest.fixture(scope="module")
def mcp_atlassian() -> Path:
    """The `mcp-atlassian` command of a virtualenv made from the pinned requirements, once per their content
    and this Python; its dependencies (fastmcp, a newer mcp) stay out of the test extra's environment."""
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()[:16]
    root = cache_home() / "atlassian-auth-proxy-tests"
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"mcp-atlassian-{key}"
    with (root / f"mcp-atlassian-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run on this machine may be building the same one
        if not (venv / "installed").is_file():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)]
            installed = subprocess.run(pip, capture_output=True, text=True, timeout=INSTALL_SECONDS, check=False)
            require(f"mcp-atlassian ({' '.join(pip[1:])}: {installed.stderr[-300:]})", installed.returncode == 0)
            (venv / "installed").write_text(REQUIREMENTS.read_text())
    return venv / "bin" / "mcp-atlassian"


def configured(host_config: Recipe, replacements: dict[str, str]) -> dict[str, Any]:
    """The recipe's server entry `atlassian`, with each example value replaced (each must be there)."""
    text = host_config.files["mcp.json"]
    for example, here in replacements.items():
        assert example in text, f"the {host_config.name} recipe no longer holds {example}"
        text = text.replace(example, here)
    server: dict[str, Any] = json.loads(text)["mcpServers"]["atlassian"]
    return server


def stand_ins(site, ca_file: Path, confdir: Path) -> dict[str, str]:
    """For `exec`'s proxy: the token (which `login` would have put in the keyring) and the way to the stand-in."""
    env = proxy_env(site, ca_file, confdir)
    names = ("ATLASSIAN_PROXY_API_TOKEN", "ATLASSIAN_PROXY_CONNECT_TO", "ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE")
    names += ("ATLASSIAN_PROXY_CONFDIR", "XDG_CONFIG_HOME", "PYTHON_KEYRING_BACKEND")
    return {name: env[name] for name in names}


def as_the_host_starts_it(server: dict[str, Any], env: dict[str, str], where: Path) -> tuple[list[str], str | None]:
    """Start the server as an MCP host would, list its tools and, if it has it, call `jira_get_issue` for OPS-1."""
    params = StdioServerParameters(command=server["command"], args=server.get("args", []), env=env, cwd=str(where))

    async def talk() -> tuple[list[str], str | None]:
        with (where / "server.log").open("w") as log:
            async with stdio_client(params, errlog=log) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                names = [tool.name for tool in (await session.list_tools()).tools]
                if "jira_get_issue" not in names:
                    return names, None
                result = await session.call_tool("jira_get_issue", {"issue_key": "OPS-1"})
                (content,) = result.content
                assert isinstance(content, TextContent), content
                return names, content.text

    return asyncio.run(asyncio.wait_for(talk(), 120))


def assert_reads_jira(tools: list[str], issue: str | None, log: Path) -> None:
    assert [name for name in tools if name.startswith("jira_")], log.read_text()
    assert issue is not None, log.read_text()
    assert json.loads(issue)["summary"] == "the OPS-1 summary", log.read_text()


def test_mcp_atlassian_through_exec_lists_its_tools_and_reads_jira(mcp_atlassian, site, ca_file, confdir, tmp_path):
    server = configured(
        recipe(MCP_AND_EXEC, "mcp-atlassian"), {EXAMPLE_PROXY: command()[0], EXAMPLE_SERVER: str(mcp_atlassian)}
    )
    documented = server["env"]
    added = stand_ins(site, ca_file, confdir)
    assert not set(added) & set(documented)
    before = len(site.record.requests)
    tools, issue = as_the_host_starts_it(server, {**documented, **added}, tmp_path)
    assert_reads_jira(tools, issue, tmp_path / "server.log")
    assert [name for name in tools if name.startswith("confluence_")]
    arrived = site.record.requests[before:]
    assert any(r.path.startswith("/rest/api/2/issue/OPS-1?") for r in arrived)
    assert_identity(arrived, basic(documented["ATLASSIAN_PROXY_EMAIL"], TOKEN_192))


def test_mcp_atlassian_without_placeholder_credentials_offers_no_tools(mcp_atlassian, site, ca_file, confdir, tmp_path):
    """What the page warns of: with only the URLs, mcp-atlassian starts and shows nothing, and says nothing."""
    server = configured(
        recipe(MCP_AND_EXEC, "mcp-atlassian"), {EXAMPLE_PROXY: command()[0], EXAMPLE_SERVER: str(mcp_atlassian)}
    )
    env = {k: v for k, v in server["env"].items() if k not in PLACEHOLDERS}
    assert len(env) == len(server["env"]) - len(PLACEHOLDERS)
    tools, _ = as_the_host_starts_it(server, {**env, **stand_ins(site, ca_file, confdir)}, tmp_path)
    assert tools == []


def test_mcp_atlassian_with_a_running_proxy(mcp_atlassian, proxy, site, tmp_path):
    server = configured(
        recipe(MCP_AND_EXEC, "mcp-atlassian-own-proxy"),
        {EXAMPLE_SERVER: str(mcp_atlassian), EXAMPLE_PROXY_URL: proxy.url, EXAMPLE_CONFDIR: str(proxy.confdir)},
    )
    before = len(site.record.requests)
    tools, issue = as_the_host_starts_it(server, server["env"], tmp_path)
    assert_reads_jira(tools, issue, tmp_path / "server.log")
    assert_identity(site.record.requests[before:])
