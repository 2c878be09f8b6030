"""Atlassian's remote MCP server (`https://mcp.atlassian.com/v1/mcp`) through the proxy, with no client token.

A site whose hosts include `mcp.atlassian.com` gets the injected Basic there too; the answers
come as server-sent events on streams the stand-in keeps open, so they arrive only if the
proxy streams them.
"""

from __future__ import annotations

from support import upstream
from support.clients import curl, with_env_exports
from support.proxy import EMAIL, TOKEN_192, basic

CLIENT = f"""
import asyncio
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

async def main():
    async with streamablehttp_client("https://mcp.atlassian.com{upstream.MCP_PATH}") as (read, write, _):
        async with ClientSession(read, write) as session:
            info = await session.initialize()
            tools = await session.list_tools()
            print(info.serverInfo.name, [tool.name for tool in tools.tools])

asyncio.run(asyncio.wait_for(main(), 20))
"""


def test_initialize_and_tools_list_over_streamable_http_with_no_client_credentials(make_proxy, site, tmp_path):
    proxy = make_proxy(ATLASSIAN_PROXY_HOSTS="*.atlassian.net,mcp.atlassian.com")
    site.record.mcp_hold.clear()
    before = len(site.record.requests)
    (tmp_path / "client.py").write_text(CLIENT)
    try:
        result = with_env_exports(proxy.port, proxy.confdir, tmp_path, "python client.py")
    finally:
        site.record.mcp_hold.set()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"atlassian-mcp-stand-in ['{upstream.MCP_TOOL}']"
    posts = [r for r in site.record.requests[before:] if r.method == "POST"]
    assert len(posts) >= 3, "initialize, the initialized notification and tools/list"
    for request in site.record.requests[before:]:
        assert request.path == upstream.MCP_PATH
        assert request.sni == "mcp.atlassian.com"
        assert request.header("Authorization") == basic(EMAIL, TOKEN_192)


def test_a_401_from_the_mcp_server_reaches_the_client_unconfirmed_and_pauses_nothing(make_proxy, site):
    """The remote MCP server has no identity page: its 401 is the client's (a token without MCP's scopes)."""
    proxy = make_proxy(ATLASSIAN_PROXY_HOSTS="*.atlassian.net,mcp.atlassian.com")
    rejected = basic(EMAIL, TOKEN_192)
    before = len(site.record.requests)
    site.record.rejected.add(rejected)
    try:
        for _ in range(3):
            result = curl(
                proxy.url, "https://mcp.atlassian.com/v1/mcp", proxy.ca_file, "-o", "/dev/null", "-w", "%{http_code}"
            )
            assert result.stdout == "401", result.stderr
    finally:
        site.record.rejected.discard(rejected)
    seen = [(r.method, r.path, r.sni) for r in site.record.requests[before:]]
    assert seen == [("GET", "/v1/mcp", "mcp.atlassian.com")] * 3, "no identity page asked, no request held back"
    assert "rejected the API token" not in proxy.output
