"""Upstream faults: a short 502/504 naming the host and the failure, and the proxy keeps serving."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import trustme

from support import upstream
from support.clients import assert_still_serving, curl, status_and_body, with_requests
from support.proxy import Proxy, proxy_env, start_proxy

MYSELF = "https://acme.atlassian.net/rest/api/3/myself"
TIMEOUT = 1.0


@pytest.fixture(scope="module")
def untrusted_site() -> Iterator[upstream.UpstreamServer]:
    """A site whose certificate comes from a CA the proxy does not trust."""
    server = upstream.start(trustme.CA().issue_cert("untrusted.atlassian.net"))
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def broken_h2_site(ca) -> Iterator[upstream.UpstreamServer]:
    server = upstream.start(ca.issue_cert("h2.atlassian.net"), alpn=["h2"])
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def faulty(site, ca_file, confdir, untrusted_site, broken_h2_site) -> Iterator[Proxy]:
    proxy = start_proxy(
        proxy_env(
            site,
            ca_file,
            confdir,
            ATLASSIAN_PROXY_UPSTREAM_TIMEOUT=str(TIMEOUT),
            ATLASSIAN_PROXY_CONNECT_TO=(
                f"untrusted.atlassian.net=127.0.0.1:{untrusted_site.port},"
                f"h2.atlassian.net=127.0.0.1:{broken_h2_site.port},*.atlassian.net=127.0.0.1:{site.port}"
            ),
        )
    )
    yield proxy
    proxy.stop()


def assert_no_internal_detail(body, site):
    for internal in ("127.0.0.1", str(site.port), "mitmproxy", "<html"):
        assert internal not in body


def test_reset_mid_response_gets_502_naming_the_host(faulty, site):
    status, body = status_and_body(faulty, "https://acme.atlassian.net/reset")
    assert status == "502"
    assert body == (
        "atlassian-auth-proxy: the request to acme.atlassian.net failed: "
        "the connection closed before the response was complete\n"
    )
    assert_no_internal_detail(body, site)
    assert_still_serving(faulty)


def test_concurrent_failures_each_name_their_own_host(faulty):
    hosts = [f"tenant{i}.atlassian.net" for i in range(16)]
    with ThreadPoolExecutor(len(hosts)) as pool:
        replies = list(pool.map(lambda host: status_and_body(faulty, f"https://{host}/reset"), hosts))
    for host, (status, body) in zip(hosts, replies, strict=True):
        assert status == "502"
        assert body.startswith(f"atlassian-auth-proxy: the request to {host} failed:"), body


def test_http2_clients_get_the_same_short_answer(faulty, broken_h2_site):
    result = curl(faulty.url, "https://h2.atlassian.net/x", faulty.ca_file, "--http2", "-i")
    assert "HTTP/2 502" in result.stdout, result.stdout
    assert result.stdout.endswith(
        "\n\natlassian-auth-proxy: the request to h2.atlassian.net failed: "
        "the connection closed before the response was complete\n"
    )
    assert_still_serving(faulty)


def test_untrusted_upstream_certificate_gets_502_and_no_request_is_sent(faulty, site, untrusted_site):
    status, body = status_and_body(faulty, "https://untrusted.atlassian.net/rest/api/3/myself")
    assert status == "502"
    assert body == (
        "atlassian-auth-proxy: the request to untrusted.atlassian.net failed: its TLS certificate is not trusted\n"
    )
    assert not untrusted_site.record.requests, "nothing, credentials least of all, went to the untrusted site"
    assert_no_internal_detail(body, untrusted_site)
    assert_still_serving(faulty)


def test_stalled_upstream_gets_504_after_the_timeout_while_others_are_served(faulty, site):
    site.record.stall_release.clear()
    replies: list[tuple[str, str]] = []
    started = time.monotonic()
    stalled = threading.Thread(
        target=lambda: replies.append(status_and_body(faulty, "https://acme.atlassian.net/stall"))
    )
    stalled.start()
    try:
        assert_still_serving(faulty)
        stalled.join(TIMEOUT + 10)
    finally:
        site.record.stall_release.set()
    elapsed = time.monotonic() - started
    assert replies == [
        (
            "504",
            "atlassian-auth-proxy: acme.atlassian.net did not answer within 1 s (ATLASSIAN_PROXY_UPSTREAM_TIMEOUT)\n",
        )
    ]
    assert TIMEOUT <= elapsed < TIMEOUT + 3
    assert "did not answer within 1 s" in faulty.output
    assert_still_serving(faulty)


def test_429_passes_through_with_its_headers_and_is_never_retried(proxy, site):
    """On a host of its own: the 429 holds that tenant for its Retry-After (tests/e2e/test_rate_limits.py)."""
    before = sum(seen.path == "/ratelimited" for seen in site.record.requests)
    reply = with_requests(proxy.url, "https://faults-429.atlassian.net/ratelimited", proxy.ca_file, {})
    assert reply.status == 429
    assert reply.body == '{"message": "rate limited"}'
    for name, value in upstream.RATE_LIMIT_HEADERS.items():
        assert reply.headers[name] == value
    after = sum(seen.path == "/ratelimited" for seen in site.record.requests)
    assert after - before == 1, "the proxy must not retry"
