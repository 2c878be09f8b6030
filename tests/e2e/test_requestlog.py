"""The request log: text by default; with LOG_FORMAT=json one JSON object per line, no secrets."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import ssl
import subprocess

from support.clients import CLIENT_ENV, curl
from support.proxy import EMAIL, TOKEN_192, wait_for

FIELDS = {"time", "client", "user", "method", "scheme", "host", "port", "path", "status", "error"}
FIELDS |= {"duration_ms", "decision", "upstream"}


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


def test_a_failed_tunnel_is_logged_as_connect_host_and_port(make_proxy, site):
    proxy = make_proxy(
        ATLASSIAN_PROXY_CONNECT_TO=f"dead.atlassian.net=127.0.0.9:9,*.atlassian.net=127.0.0.1:{site.port}"
    )
    assert curl(proxy.url, "https://dead.atlassian.net/x", proxy.ca_file).returncode != 0
    wait_for(lambda: "CONNECT dead.atlassian.net:443 502 " in proxy.output, what="the CONNECT line")
    assert "://dead.atlassian.net" not in proxy.output


def test_a_failed_tunnel_has_no_scheme_or_path_in_the_json_log(make_proxy, site):
    proxy = make_proxy(
        ATLASSIAN_PROXY_LOG_FORMAT="json",
        ATLASSIAN_PROXY_CONNECT_TO=f"dead.atlassian.net=127.0.0.9:9,*.atlassian.net=127.0.0.1:{site.port}",
    )
    assert curl(proxy.url, "https://dead.atlassian.net/x", proxy.ca_file).returncode != 0
    assert proxy.stop() == 0
    (line,) = [line for line in map(json.loads, proxy.output.splitlines()) if line.get("method") == "CONNECT"]
    assert (line["scheme"], line["host"], line["port"], line["path"], line["status"]) == (
        None,
        "dead.atlassian.net",
        443,
        None,
        502,
    )


def handshake_lines(proxy) -> list[str]:
    return [line for line in proxy.output.splitlines() if "TLS handshake" in line]


def test_a_client_that_does_not_trust_the_ca_is_logged_once_with_its_address_and_why(proxy, site):
    # curl without --cacert: it trusts only the system's CAs, so it refuses the proxy's certificate.
    # The session's proxy is shared, so only the lines this test adds are counted.
    before = len(handshake_lines(proxy))
    result = subprocess.run(
        ["curl", "-sS", "--proxy", proxy.url, "--max-time", "30", "https://acme.atlassian.net/rest/api/3/myself"],
        capture_output=True,
        text=True,
        env=CLIENT_ENV,
        check=False,
        timeout=60,
    )
    assert result.returncode == 60, result.stderr  # curl's "peer certificate cannot be authenticated"
    wait_for(lambda: handshake_lines(proxy)[before:], what="the handshake line")
    (line,) = handshake_lines(proxy)[before:]
    assert re.search(r"client 127\.0\.0\.1:\d+: TLS handshake for acme\.atlassian\.net failed: ", line), line
    assert "it does not trust the proxy's CA" in line
    assert "Client TLS handshake failed" not in proxy.output  # mitmproxy's own line is not written as well


def test_a_client_that_closes_during_the_handshake_without_a_word_is_logged(make_proxy, site):
    """What Mono and .NET do when they do not trust the CA: read the proxy's certificate and hang up."""
    proxy = make_proxy(ATLASSIAN_PROXY_LOG_FORMAT="json")
    with socket.create_connection((proxy.host, proxy.port)) as sock:
        sock.sendall(b"CONNECT acme.atlassian.net:443 HTTP/1.1\r\nHost: acme.atlassian.net:443\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        hello = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="acme.atlassian.net")
        with contextlib.suppress(ssl.SSLWantReadError):
            hello.do_handshake()
        sock.sendall(outgoing.read())
        assert sock.recv(65536)  # the proxy's ServerHello and certificate, which this client never answers
    wait_for(lambda: handshake_lines(proxy), what="the handshake line")
    (line,) = [json.loads(line) for line in handshake_lines(proxy)]
    assert line["level"] == "warning"
    assert line["message"].startswith("client 127.0.0.1:")
    assert "closed the connection during the handshake" in line["message"]
