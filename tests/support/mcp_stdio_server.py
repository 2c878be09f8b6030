"""A minimal stdio MCP server, as an MCP host would start one: its one tool calls Jira.

It knows nothing of the proxy and sends no credentials; whatever reaches the site comes from
the environment `atlassian-auth-proxy exec` gives it (urllib reads `https_proxy`, OpenSSL
reads `SSL_CERT_FILE`).
"""

from __future__ import annotations

import json
import urllib.request

from mcp.server.fastmcp import FastMCP

server = FastMCP("jira-stand-in-client")


@server.tool()
def myself() -> str:
    """The Jira user the site sees for this server's requests."""
    with urllib.request.urlopen("https://acme.atlassian.net/rest/api/3/myself?via=mcp-stdio", timeout=20) as r:
        return json.dumps({"status": r.status, "displayName": json.load(r)["displayName"]})


if __name__ == "__main__":
    server.run("stdio")
