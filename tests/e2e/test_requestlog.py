"""The request log: text by default; with LOG_FORMAT=json one JSON object per line, no secrets."""

from __future__ import annotations

import base64
import json

from support.clients import curl
from support.proxy import EMAIL, TOKEN_192, wait_for

FIELDS = {"time", "client", "user", "method", "scheme", "host", "port", "path", "status", "error"}
FIELDS |= {"duration_ms", "decision"}


def test_json_log_has_one_object_per_request_with_the_audit_fields_and_no_secret(make_proxy, site):
    proxy = make_proxy(ATLASSIAN_PROXY_LOG_FORMAT="json")
    result = curl(
        proxy.url,
        "https://acme.atlassian.net/rest/api/3/search?jql=project%3DSECRET&maxResults=5",
        proxy.ca_file,
        "-u",
        "client:client-password",
        "-H",
        "Cookie: session=client-cookie",
    )
    assert result.returncode == 0, result.stderr
    assert curl(proxy.url, "http://acme.atlassian.net/cleartext", proxy.ca_file).returncode == 0
    assert proxy.stop() == 0

    lines = [json.loads(line) for line in proxy.output.splitlines()]  # every line is JSON
    requests = [line for line in lines if "decision" in line]
    assert [r["decision"] for r in requests] == ["injected", "refused-cleartext"]
    injected = requests[0]
    assert set(injected) == FIELDS
    assert injected["method"] == "GET"
    assert injected["host"] == "acme.atlassian.net"
    assert injected["path"] == "/rest/api/3/search?jql=…&maxResults=…"
    assert injected["status"] == 200
    assert injected["user"] is None
    assert injected["client"].startswith("127.0.0.1:")
    assert injected["time"].endswith("+00:00")
    assert injected["duration_ms"] >= 0
    assert requests[1]["status"] == 403

    pair = f"{EMAIL}:{TOKEN_192}"
    for secret in (TOKEN_192, pair, base64.b64encode(pair.encode()).decode(), "SECRET", "client-password"):
        assert secret not in proxy.output
    assert "client-cookie" not in proxy.output


def test_text_stays_the_default(proxy, site):
    assert curl(proxy.url, "https://acme.atlassian.net/rest/api/3/myself?a=b", proxy.ca_file).returncode == 0
    line = "GET https://acme.atlassian.net:443/rest/api/3/myself?a=… 200"
    wait_for(lambda: line in proxy.output, what="the text log line")
