"""Issue 11 #3 and #6: the credential exists only on the wire, and request heads are bounded while they arrive."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

from proxy_addon.addons.injector import REDACTED

from support.clients import assert_still_serving, curl, open_tunnel, status_and_body
from support.memory import peak_rss
from support.proxy import EMAIL, TOKEN_192, basic, proxy_env, start_mitmdump, wait_for

SITE = "https://acme.atlassian.net"
WATCH = Path(__file__).parents[1] / "support" / "flow_watch.py"
SECRETS = (basic(EMAIL, TOKEN_192).split()[1], TOKEN_192)
LOGIN = "ci:Pr0xy-pa55word-9f3e"
UNFINISHED_HEAD = 64 * 1024 * 1024
HEAD_RSS_GROWTH_LIMIT = 16 * 1024 * 1024

TRAILER_HEAD = b"POST /upload HTTP/1.1\r\nHost: acme.atlassian.net\r\nTransfer-Encoding: chunked\r\n\r\n"
TRAILER_BODY = b"5\r\nhello\r\n0\r\nX-Checksum: 1234\r\n\r\n"


def send_trailer_request(proxy, site) -> None:
    """A chunked request with a trailer: mitmproxy's HTTP/1 layer raises on it after the head went upstream."""
    with open_tunnel(proxy.host, proxy.port, "acme.atlassian.net", "acme.atlassian.net", proxy.ca_file) as tls:
        tls.sendall(TRAILER_HEAD)
        wait_for(lambda: site.record.last().path == "/upload", what="the trailer request's head upstream")
        tls.sendall(TRAILER_BODY)
        wait_for(lambda: "HTTP trailers are not implemented" in proxy.output, what="mitmproxy's HTTP/1 layer to fail")


def test_no_flow_holds_the_credential_in_flight_saved_or_after_a_crash(site, ca_file, tmp_path):
    saved, watched = tmp_path / "flows.mitm", tmp_path / "watched.json"
    env = proxy_env(site, ca_file, tmp_path, FLOW_WATCH_OUT=str(watched), FLOW_WATCH_SECRETS=",".join(SECRETS))
    env["ATLASSIAN_PROXY_UPSTREAM_POOL"] = "false"  # it counts upstream connections: no warm ones among them
    site.record.slow_arrived.clear()
    site.record.slow_release.clear()
    proxy = start_mitmdump(env, "-s", str(WATCH), "-w", str(saved))
    slow = threading.Thread(target=curl, args=(proxy.url, SITE + "/slow", proxy.ca_file))
    try:
        seen, connections = len(site.record.requests), site.record.connections
        result = curl(proxy.url, SITE + "/rest/api/3/myself", proxy.ca_file, SITE + "/rest/api/3/myself?again")
        assert result.returncode == 0, result.stderr
        assert len(site.record.requests) == seen + 2
        assert site.record.connections == connections + 1, "a new upstream connection, then the same one reused"
        assert [r.header("Authorization") for r in site.record.requests[-2:]] == [basic(EMAIL, TOKEN_192)] * 2

        send_trailer_request(proxy, site)
        assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)

        slow.start()
        wait_for(site.record.slow_arrived.is_set, what="the slow request to reach the site")
        assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
        proxy.stop()  # mitmdump saves the flows still in flight when it stops
    finally:
        site.record.slow_release.set()
        proxy.stop()
        if slow.ident is not None:
            slow.join(30)

    flows = saved.read_bytes()
    assert b"/slow" in flows, "the in-flight request was saved"
    assert REDACTED.encode() in flows
    for secret in SECRETS:
        assert secret.encode() not in flows
    watch = json.loads(watched.read_text())
    assert watch["looks"] > 10, watch
    assert watch["leaks"] == [], f"a flow held the credential while {watch['leaks']} was live"
    assert watch["authorization"] == [REDACTED]


def test_an_unfinished_head_before_the_login_is_cut_off_at_64_kib_with_memory_flat(make_proxy):
    proxy = make_proxy(ATLASSIAN_PROXY_PROXY_AUTH=LOGIN)
    before = peak_rss(proxy.process.pid)
    sent, reply = 0, b""
    with socket.create_connection((proxy.host, proxy.port), timeout=15) as sock:
        sock.sendall(b"GET http://acme.atlassian.net/ HTTP/1.1\r\nHost: acme.atlassian.net\r\nX-Fill: ")
        filler = b"a" * 65536
        try:
            while sent < UNFINISHED_HEAD:
                sock.sendall(filler)
                sent += len(filler)
        except OSError:
            pass
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except OSError:
            pass
    growth = peak_rss(proxy.process.pid) - before
    print(f"sent {sent / 2**20:.1f} MiB of head before the proxy closed; peak RSS grew {growth / 2**20:.1f} MiB")
    assert sent < UNFINISHED_HEAD, "the proxy read the whole unfinished head"
    assert not reply or reply.startswith(b"HTTP/1.1 431"), reply[:200]
    assert growth < HEAD_RSS_GROWTH_LIMIT
    wait_for(lambda: "more than 65536 bytes of request head" in proxy.output, what="the log line")
    assert status_and_body(proxy, SITE + "/rest/api/3/myself", "--proxy-user", LOGIN)[0] == "200"


def test_an_unfinished_head_inside_a_tunnel_gets_431(proxy):
    with open_tunnel(proxy.host, proxy.port, "acme.atlassian.net", "acme.atlassian.net", proxy.ca_file) as tls:
        tls.sendall(b"GET /rest/api/3/myself HTTP/1.1\r\nHost: acme.atlassian.net\r\nX-Fill: " + b"a" * 70000)
        reply = tls.recv(65536)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    assert_still_serving(proxy)


def test_a_head_just_under_the_limit_still_goes_through(proxy, site):
    filler = "a" * (60 * 1024)
    result = curl(proxy.url, SITE + "/rest/api/3/myself", proxy.ca_file, "-H", f"X-Fill: {filler}")
    assert result.returncode == 0, result.stderr
    assert site.record.last().header("X-Fill") == filler
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
