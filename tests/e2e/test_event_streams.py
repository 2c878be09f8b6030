"""Event streams from credential hosts reach the client event by event, not when they end.

The stand-in sends each event only after the test's client has the previous one (see
`upstream.send_events`), so a proxy that buffers a body of unknown length fails on a read
timeout rather than passing slowly.
"""

from __future__ import annotations

import ssl

import httpx
import pytest

from support import h2_upstream, upstream
from support.clients import open_tunnel
from support.proxy import EMAIL, TOKEN_192, basic

READ_TIMEOUT = 5.0


def read_events(response: httpx.Response, record: upstream.Record) -> list[str]:
    """Release one event at a time and read it before releasing the next."""
    received: list[str] = []
    lines = response.iter_lines()
    for number in range(upstream.EVENTS):
        record.next_event.release()
        for line in lines:
            if line.startswith("data: "):
                received.append(line.removeprefix("data: "))
                break
        assert len(received) == number + 1, f"event {number} did not arrive before the stream ended"
    return received


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_http1_event_stream_arrives_event_by_event(proxy, site, framing):
    context = ssl.create_default_context(cafile=str(proxy.ca_file))
    timeout = httpx.Timeout(READ_TIMEOUT)
    with httpx.Client(proxy=proxy.url, verify=context, trust_env=False, timeout=timeout) as client:
        url = f"https://acme.atlassian.net/events?framing={framing}"
        with client.stream("GET", url, headers={"Authorization": "Bearer client-own"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            assert read_events(response, site.record) == [f"event {n}" for n in range(upstream.EVENTS)]
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)


def test_http2_event_stream_without_length_arrives_event_by_event(make_proxy, ca):
    h2_site = h2_upstream.H2Server(ca.issue_cert("acme.atlassian.net"))
    try:
        proxy = make_proxy(ATLASSIAN_PROXY_CONNECT_TO=f"acme.atlassian.net=127.0.0.1:{h2_site.port}")
        context = ssl.create_default_context(cafile=str(proxy.ca_file))
        timeout = httpx.Timeout(READ_TIMEOUT)
        client = httpx.Client(proxy=proxy.url, verify=context, http2=True, trust_env=False, timeout=timeout)
        with client, client.stream("GET", "https://acme.atlassian.net/events") as response:
            assert (response.status_code, response.http_version) == (200, "HTTP/2")
            assert read_events(response, h2_site.record) == [f"event {n}" for n in range(upstream.EVENTS)]
        assert dict(h2_site.record.last().headers)["authorization"] == basic(EMAIL, TOKEN_192)
    finally:
        h2_site.close()


def test_chunked_request_body_reaches_the_site_as_it_is_sent(proxy, site):
    """The second chunk is sent only once the site has the first: a buffered body would deadlock."""
    tls = open_tunnel(proxy.host, proxy.port, "acme.atlassian.net", "acme.atlassian.net", proxy.ca_file)
    with tls:
        tls.sendall(
            b"POST /upload HTTP/1.1\r\nHost: acme.atlassian.net\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"
        )
        assert site.record.chunk_seen.acquire(timeout=READ_TIMEOUT), "the first chunk was held back by the proxy"
        tls.sendall(b"6\r\nsecond\r\n0\r\n\r\n")
        reply = b""
        while b'"bytes": 11' not in reply and (data := tls.recv(65536)):
            reply += data
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
