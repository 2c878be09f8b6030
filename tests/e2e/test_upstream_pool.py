"""The warm upstream pool with the real parts: the proxy, curl and httpx, stand-ins that drop connections.

Each client is a new process or a new httpx client, so a new connection to the proxy, as a script's
loop makes; the pool's warm connections are the only ones shared between them. A stand-in that
closes connections (`support/chaos_site.py`) makes the pool's warm connections die while they wait
and as they are used: no GET may fail for it, each must carry the injected credential, and a POST
must never reach the site twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from e2e.test_event_streams import read_events

from proxy_addon.policy.upstream_pool import Warmth

from support import h2_upstream, upstream
from support.chaos_site import ARRIVAL_AGE, BODY, ChaosSite, server_context
from support.clients import curl
from support.proxy import EMAIL, TOKEN_192, Proxy, basic, proxy_env, start_proxy, wait_for

MYSELF = "https://acme.atlassian.net/rest/api/3/myself"
WARM = re.compile(r"GET https://acme\.atlassian\.net:443/\S* 200 \S+ credentials=injected upstream=warm")


@pytest.fixture
def chaos_ca(tmp_path: Path) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path / "chaos-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def chaos(ca: trustme.CA, **behaviour: object) -> ChaosSite:
    good = server_context(ca.issue_cert("acme.atlassian.net"))
    wrong = server_context(ca.issue_cert("wrong.example.test"))
    return ChaosSite(good, wrong, **behaviour).start()  # type: ignore[arg-type]


@pytest.fixture
def pool_proxy(site: upstream.UpstreamServer, tmp_path: Path) -> Iterator:
    """`(target port, upstream CA, **env) -> Proxy`: the proxy with acme.atlassian.net on that port."""
    started: list[Proxy] = []

    def make(port: int, ca_file: Path, name: str = "pool", **env: str) -> Proxy:
        connect_to = f"acme.atlassian.net=127.0.0.1:{port},*.example.test=127.0.0.1:{site.port}"
        proxy = start_proxy(proxy_env(site, ca_file, tmp_path / name, ATLASSIAN_PROXY_CONNECT_TO=connect_to, **env))
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


def warm_lines(proxy: Proxy) -> int:
    return len(WARM.findall(proxy.output))


def gets_with_random_gaps(proxy: Proxy, site: ChaosSite, seed: int, gaps: tuple[float, float]) -> list[str]:
    """40 GETs, each a new curl, with random gaps: what went wrong for the client."""
    rng = random.Random(seed)
    failures = []
    for number in range(40):
        time.sleep(rng.uniform(*gaps))  # a script's pause, in which the site's timeouts act: what is tested
        result = curl(proxy.url, f"{MYSELF}?n={number}", proxy.ca_file)
        if result.returncode != 0 or result.stdout.encode() != BODY:
            failures.append(f"GET {number}: {result.returncode} {result.stdout[:100]!r} {result.stderr[:200]}")
    return failures


def test_a_site_closing_idle_connections_after_a_short_timeout_costs_no_get(pool_proxy, chaos_ca):
    ca, ca_file = chaos_ca
    site = chaos(ca, lifetime=(0.4, 0.4), reset_share=0.0)
    try:
        proxy = pool_proxy(site.port, ca_file)
        assert gets_with_random_gaps(proxy, site, seed=3, gaps=(0.0, 0.7)) == []
        assert {r.authorization for r in site.requests} == {basic(EMAIL, TOKEN_192)}
        assert len(site.requests) >= 40
        assert warm_lines(proxy) >= 5, "requests went on warm connections"
        assert site.closed_idle > 0, "the site closed idle connections (warm ones among them)"
    finally:
        site.stop()


def test_a_site_resetting_connections_at_random_costs_no_get(pool_proxy, chaos_ca):
    ca, ca_file = chaos_ca
    site = chaos(ca, lifetime=(0.1, 1.0), reset_share=0.5, close_on_arrival=0.4, seed=11)
    try:
        proxy = pool_proxy(site.port, ca_file)
        assert gets_with_random_gaps(proxy, site, seed=7, gaps=(0.0, 0.6)) == []
        assert {r.authorization for r in site.requests} == {basic(EMAIL, TOKEN_192)}
        assert warm_lines(proxy) >= 5
        assert site.closed_on_arrival > 0, "the site dropped warm connections as requests arrived"
        assert "sending it again" in proxy.output, "a GET whose warm connection closed under it went again"
    finally:
        site.stop()


def test_posts_never_go_first_on_a_warm_connection_nor_twice_to_the_site(pool_proxy, chaos_ca):
    ca, ca_file = chaos_ca
    site = chaos(ca, lifetime=(30.0, 30.0), close_on_arrival=1.0)
    try:
        proxy = pool_proxy(site.port, ca_file)
        for number in range(6):
            time.sleep(ARRIVAL_AGE + 0.1)  # the warm connections wait long enough to be dropped as they are used
            assert curl(proxy.url, f"{MYSELF}?get={number}", proxy.ca_file).stdout.encode() == BODY
            time.sleep(ARRIVAL_AGE + 0.1)
            posted = curl(proxy.url, f"{MYSELF}?post={number}", proxy.ca_file, "-X", "POST", "--data", "{}")
            assert posted.stdout.encode() == BODY, posted.stderr
        posts = [r.path for r in site.requests if r.method == "POST"]
        assert sorted(posts) == [f"/rest/api/3/myself?post={n}" for n in range(6)], "each POST reached it once"
        assert site.closed_on_arrival >= 5, "warm connections the GETs took were closed under them"
        assert warm_lines(proxy) == 0, "every GET whose warm connection closed went on a new one"
        assert not re.search(r"POST \S+ \S+ \S+ credentials=injected upstream=warm", proxy.output)
    finally:
        site.stop()


def test_a_chunked_get_through_a_site_dropping_warm_connections_as_requests_arrive_succeeds(pool_proxy, chaos_ca):
    """A chunked body (unknown length) streams, so it cannot be sent again: on a warm connection the site dropped as
    it arrived, the client got an error that a new connection, as without the pool, would not have given it."""
    ca, ca_file = chaos_ca
    site = chaos(ca, lifetime=(30.0, 30.0), close_on_arrival=1.0)
    try:
        proxy = pool_proxy(site.port, ca_file)
        assert curl(proxy.url, MYSELF, proxy.ca_file).stdout.encode() == BODY
        for number in range(3):
            time.sleep(ARRIVAL_AGE + 0.1)  # the warm connections wait long enough to be dropped as they are used
            chunked = ("-X", "GET", "-H", "Transfer-Encoding: chunked", "--data-binary", "{}")
            got = curl(proxy.url, f"{MYSELF}?streamed={number}", proxy.ca_file, *chunked)
            assert got.stdout.encode() == BODY, got.stdout
        assert "upstream=warm" not in proxy.output, "each went on a connection dialled for it"
    finally:
        site.stop()


def json_records(proxy: Proxy) -> list[dict]:
    return [json.loads(line) for line in proxy.lines if line.startswith('{"time"') and '"method"' in line]


def test_a_wrong_name_certificate_reached_through_the_pool_is_refused_exactly_as_without_it(pool_proxy, chaos_ca):
    ca, ca_file = chaos_ca
    site = chaos(ca, lifetime=(30.0, 30.0))
    try:
        pooled = pool_proxy(
            site.port,
            ca_file,
            ATLASSIAN_PROXY_LOG_FORMAT="json",
            **{"ATLASSIAN_PROXY_UPSTREAM_POOL_MAX_AGE_SECONDS": "1"},
        )
        bare = pool_proxy(
            site.port, ca_file, "bare", ATLASSIAN_PROXY_LOG_FORMAT="json", ATLASSIAN_PROXY_UPSTREAM_POOL="false"
        )
        assert curl(pooled.url, MYSELF, pooled.ca_file).stdout.encode() == BODY
        site.use_wrong = True
        switched = site.accepted
        wait_for(lambda: site.accepted >= switched + 2, what="warm connections made after the switch")
        seen = len(site.requests)
        through_pool = curl(pooled.url, MYSELF, pooled.ca_file, "-w", "\n%{http_code}")
        without = curl(bare.url, MYSELF, bare.ca_file, "-w", "\n%{http_code}")
        assert through_pool.stdout == without.stdout
        assert through_pool.stdout.endswith("\n502")
        assert "its TLS certificate is not trusted" in through_pool.stdout
        assert len(site.requests) == seen, "nothing reached a site with a wrong-name certificate"
        wait_for(lambda: len(json_records(pooled)) >= 2 and json_records(bare), what="the request lines")
        assert (
            json_records(pooled)[-1]["decision"] == json_records(bare)[-1]["decision"] == "refused-untrusted-upstream"
        )
        assert "a warm connection to acme.atlassian.net failed (its TLS certificate is not trusted)" in pooled.output
    finally:
        site.stop()


def one_client(proxy: Proxy, http2: bool = False) -> httpx.Client:
    """A new client, so a new connection to the proxy, as a new process makes."""
    context = ssl.create_default_context(cafile=str(proxy.ca_file))
    return httpx.Client(proxy=proxy.url, verify=context, http2=http2, trust_env=False, timeout=httpx.Timeout(5.0))


def test_an_event_stream_on_a_warm_connection_arrives_event_by_event(make_proxy, site):
    proxy = make_proxy()
    with one_client(proxy) as client:
        assert client.get(MYSELF).status_code == 200
    wait_for(lambda: "upstream=" in proxy.output, what="the first request's line")
    connections = site.record.connections
    wait_for(lambda: site.record.connections >= connections + 1, what="the pool to warm a connection")
    with one_client(proxy) as client, client.stream("GET", "https://acme.atlassian.net/events") as response:
        assert read_events(response, site.record) == [f"event {n}" for n in range(upstream.EVENTS)]
    wait_for(lambda: "/events 200" in proxy.output, what="the stream's line")
    assert re.search(r"/events 200 \S+ credentials=injected upstream=warm", proxy.output)
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)


def test_an_http2_site_through_the_pool_stays_http2(pool_proxy, ca, ca_file):
    h2_site = h2_upstream.H2Server(ca.issue_cert("acme.atlassian.net"))
    try:
        proxy = pool_proxy(h2_site.port, ca_file)
        with one_client(proxy, http2=True) as client:
            assert client.get(MYSELF).http_version == "HTTP/2"
        for number in range(3):
            with one_client(proxy, http2=True) as client:
                reply = client.get(f"{MYSELF}?n={number}")
                assert (reply.status_code, reply.http_version) == (200, "HTTP/2")
        wait_for(lambda: proxy.output.count("upstream=") >= 4, what="the request lines")
        assert warm_lines(proxy) >= 2
        assert len(h2_site.record.requests) == 4, "every request reached the HTTP/2-only site"
        assert {dict(r.headers).get("authorization") for r in h2_site.record.requests} == {basic(EMAIL, TOKEN_192)}
    finally:
        h2_site.close()


def test_tunnelled_hosts_are_never_warmed(pool_proxy, chaos_ca, site, ca_file):
    ca, chaos_ca_file = chaos_ca
    acme = chaos(ca, lifetime=(30.0, 30.0))
    try:
        proxy = pool_proxy(acme.port, chaos_ca_file)
        assert curl(proxy.url, MYSELF, proxy.ca_file).stdout.encode() == BODY
        wait_for(lambda: acme.accepted >= 3, what="the pool to warm acme.atlassian.net")
        before = site.record.connections
        for _ in range(3):
            assert curl(proxy.url, "https://other.example.test/tunnelled", ca_file).returncode == 0
        assert "tunnel other.example.test:443" in proxy.output
        assert site.record.connections == before + 3, "one connection per tunnel, none warmed"
    finally:
        acme.stop()


def test_with_the_pool_off_nothing_is_warmed_or_logged(make_proxy, site):
    proxy = make_proxy(ATLASSIAN_PROXY_UPSTREAM_POOL="false", ATLASSIAN_PROXY_ADMIN_PORT="0")
    before = site.record.connections
    for number in range(4):
        assert curl(proxy.url, f"{MYSELF}?off={number}", proxy.ca_file).returncode == 0
    wait_for(lambda: proxy.output.count("credentials=injected") >= 4, what="the request lines")
    assert site.record.connections == before + 4, "one upstream connection per client, as before the pool"
    assert "upstream=" not in proxy.output
    assert "upstream pool" not in proxy.output


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_an_idle_proxy_with_a_warm_pool_stays_within_10_mb_of_one_without(make_proxy, site):
    on = make_proxy()
    off = make_proxy(ATLASSIAN_PROXY_UPSTREAM_POOL="false")
    for proxy in (on, off):
        for number in range(5):
            assert curl(proxy.url, f"{MYSELF}?rss={number}", proxy.ca_file).returncode == 0
    connections = site.record.connections
    wait_for(lambda: site.record.connections >= connections + 2, what="the pool to warm")
    difference_mb = (rss_kb(on.process.pid) - rss_kb(off.process.pid)) / 1024
    assert difference_mb <= 10


def test_the_sites_in_flight_cap_bounds_its_warm_connections(make_proxy, site):
    proxy = make_proxy(ATLASSIAN_PROXY_MAX_IN_FLIGHT="1", ATLASSIAN_PROXY_UPSTREAM_POOL_SIZE="3")
    before = site.record.connections
    assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    wait_for(lambda: site.record.connections >= before + 2, what="the request's connection and one warm one")
    time.sleep(0.5)  # what is tested is that no more open: time for two more to have opened
    assert site.record.connections == before + 2, "max_in_flight 1 allows one warm connection, not 3"


def open_connections_to(pid: int, port: int) -> int:
    """The process's TCP connections to loopback `port` still open: its sockets (by inode) in the kernel's table."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


@pytest.mark.parametrize(("max_in_flight", "bound"), [("1000", 2 * Warmth.MAX_KEYS), ("3", 3)])
def test_a_client_naming_many_hosts_under_a_wildcard_keeps_no_more_warm_than_the_bounds(
    make_proxy, site, max_in_flight, bound
):
    """Each name under `*.atlassian.net` was a key of its own, each clamped to the site's cap alone: a client
    requesting 24 names had the proxy hold 48 connections open (24 000 for 12 000 names: the proxy out of file
    descriptors) and renew them every 10 s. Now at most `MAX_KEYS` keys, and the site's cap over all its keys."""
    proxy = make_proxy(ATLASSIAN_PROXY_MAX_IN_FLIGHT=max_in_flight)
    for number in range(Warmth.MAX_KEYS + 8):
        assert curl(proxy.url, f"https://h{number}.atlassian.net/rest/api/3/myself", proxy.ca_file).returncode == 0
    wait_for(lambda: open_connections_to(proxy.process.pid, site.port) >= bound, what="the pool to warm its keys")
    time.sleep(0.5)  # what is tested is that no more stay open: time for the others to have opened
    assert open_connections_to(proxy.process.pid, site.port) == bound


class HandshakeHanger:
    """A TLS site that serves its first connection, then takes every later one and never answers its ClientHello:
    the warm connections the first request brings wait for an answer that never comes."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context, self.accepted, self.port = context, 0, 0
        ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._serve(ready)), daemon=True).start()
        assert ready.wait(10)

    async def _serve(self, ready: threading.Event) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.accepted > 1:
            await reader.read()  # until the proxy closes it
            writer.close()
            return
        await writer.start_tls(self.context)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (len(BODY), BODY))
        await writer.drain()
        writer.close()


def test_a_site_that_never_answers_a_warm_handshake_gets_the_upstream_timeout_504(pool_proxy, chaos_ca):
    """A request waiting for a warm connection's handshake is not yet on it (`flow.server_conn` is the one before),
    so the upstream timeout closed nothing: the client waited for the site, or tcp_timeout (600 s)."""
    ca, ca_file = chaos_ca
    site = HandshakeHanger(server_context(ca.issue_cert("acme.atlassian.net")))
    proxy = pool_proxy(site.port, ca_file, ATLASSIAN_PROXY_UPSTREAM_TIMEOUT="1")
    assert curl(proxy.url, MYSELF, proxy.ca_file).stdout.encode() == BODY
    wait_for(lambda: site.accepted >= 3, what="the warm connections")
    started = time.monotonic()
    got = curl(proxy.url, f"{MYSELF}?second", proxy.ca_file, "-w", "%{http_code}", "--max-time", "8")
    assert got.stdout.endswith("504"), (got.stdout, got.stderr)
    assert time.monotonic() - started < 5
    assert "did not answer within 1 s; closed its connection" in proxy.output
