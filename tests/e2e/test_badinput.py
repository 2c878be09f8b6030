"""Bad client input: each gets an error or a close, and the proxy keeps serving everyone else."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator

import pytest

from support.clients import assert_still_serving, open_tunnel, read_until_closed
from support.proxy import Proxy, proxy_env, start_proxy

CLIENT_TIMEOUT = 2.0
BIG_HEADER = b"X-Big: " + b"a" * 100_000 + b"\r\n"


@pytest.fixture(scope="module")
def limited(site, ca_file, confdir) -> Iterator[Proxy]:
    proxy = start_proxy(proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_CLIENT_TIMEOUT=str(CLIENT_TIMEOUT)))
    yield proxy
    proxy.stop()


def connect(proxy) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=CLIENT_TIMEOUT + 5)


def assert_no_crash(proxy):
    assert "mitmproxy has crashed" not in proxy.output
    assert "Traceback" not in proxy.output


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\xff\xfe garbage \x01\x02\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x00\x05hello"],
    ids=["binary", "bad-version", "tls-to-plain-port"],
)
def test_garbage_gets_an_error_or_a_close(limited, garbage):
    with connect(limited) as sock:
        sock.sendall(garbage)
        reply = read_until_closed(sock)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 400"), reply[:100]
    assert_still_serving(limited)
    assert_no_crash(limited)


def test_a_100_kb_header_line_gets_431_and_nothing_goes_upstream(limited, site):
    seen = len(site.record.requests)
    tls = open_tunnel(limited.host, limited.port, "acme.atlassian.net", "acme.atlassian.net", limited.ca_file)
    with tls:
        tls.sendall(b"GET /big HTTP/1.1\r\nHost: acme.atlassian.net\r\n" + BIG_HEADER + b"\r\n")
        reply = read_until_closed(tls)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:100]
    assert b"the limit is 65536 bytes" in reply
    assert len(site.record.requests) == seen
    assert_still_serving(limited)


def test_a_100_kb_header_line_in_a_plain_request_gets_431(limited, plain_site):
    with connect(limited) as sock:
        sock.sendall(
            f"GET http://127.0.0.1:{plain_site.port}/big HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
            + BIG_HEADER
            + b"\r\n"
        )
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:100]
    assert b"atlassian-auth-proxy: the request head is" in reply, "the proxy answered, not the server"
    assert all(seen.path != "/big" for seen in plain_site.record.requests)


def test_an_unterminated_request_is_closed_after_the_client_timeout(limited):
    started = time.monotonic()
    with connect(limited) as sock:
        sock.sendall(b"GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert_still_serving(limited)
        reply = read_until_closed(sock)
    assert reply == b""
    assert CLIENT_TIMEOUT - 0.5 < time.monotonic() - started < CLIENT_TIMEOUT + 2
    assert_still_serving(limited)


def test_a_client_sending_one_byte_a_second_is_cut_off(limited):
    request = b"GET /slowloris HTTP/1.1\r\nHost: acme.atlassian.net\r\n\r\n"
    started = time.monotonic()
    sent = 0
    with connect(limited) as sock:
        sock.settimeout(1.0)
        for byte in request[: int(CLIENT_TIMEOUT) + 4]:
            try:
                sock.sendall(bytes([byte]))
                sent += 1
                if sock.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
    elapsed = time.monotonic() - started
    assert sent < len(request), "the whole request got through"
    assert elapsed < CLIENT_TIMEOUT + 2.5
    assert_still_serving(limited)


def test_a_client_that_disconnects_mid_upload_leaves_the_proxy_serving(limited, site):
    tls = open_tunnel(limited.host, limited.port, "acme.atlassian.net", "acme.atlassian.net", limited.ca_file)
    with tls:
        tls.sendall(b"PUT /upload HTTP/1.1\r\nHost: acme.atlassian.net\r\nContent-Length: 10000000\r\n\r\n")
        tls.sendall(b"x" * 1_000_000)
    assert_still_serving(limited)
    assert_no_crash(limited)


def test_a_keep_alive_connection_serves_many_requests_within_the_deadline(limited):
    tls = open_tunnel(limited.host, limited.port, "acme.atlassian.net", "acme.atlassian.net", limited.ca_file)
    with tls:
        for i in range(3):
            tls.sendall(f"GET /keepalive/{i} HTTP/1.1\r\nHost: acme.atlassian.net\r\n\r\n".encode())
            response = http.client.HTTPResponse(tls)
            response.begin()
            assert response.status == 200
            assert f"/keepalive/{i}".encode() in response.read()
            time.sleep(CLIENT_TIMEOUT * 0.6)


def test_a_tunnel_that_is_not_decrypted_outlives_the_client_timeout(limited, site, ca_file):
    tls = open_tunnel(limited.host, limited.port, "other.example.test", "other.example.test", ca_file)
    with tls:
        time.sleep(CLIENT_TIMEOUT + 1)
        tls.sendall(b"GET /long-lived-tunnel HTTP/1.1\r\nHost: other.example.test\r\n\r\n")
        response = http.client.HTTPResponse(tls)
        response.begin()
        assert response.status == 200
    assert site.record.last().path == "/long-lived-tunnel"


def test_a_raw_tcp_tunnel_outlives_the_client_timeout(limited):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with connect(limited) as sock:
            sock.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            peer, _ = server.accept()
            with peer:
                peer.settimeout(CLIENT_TIMEOUT + 5)
                sock.sendall(b"\x00raw bytes, not http")
                assert peer.recv(100) == b"\x00raw bytes, not http"
                time.sleep(CLIENT_TIMEOUT + 1)
                sock.sendall(b"\x00still open")
                assert peer.recv(100) == b"\x00still open"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_proxy_made_answer_to_a_body_past_stream_large_bodies_is_sent_without_a_crash(limited, site, framing):
    """mitmproxy streams a body past `stream_large_bodies` (1 MiB), and refuses to stream a request that
    already has its answer: the refusal set at its head must still reach the client, its body dropped."""
    seen = len(site.record.requests)
    body = b"x" * (3 * 1024 * 1024)
    with connect(limited) as sock:
        if framing == "chunked":
            head = b"Transfer-Encoding: chunked\r\n"
            chunk = 64 * 1024
            payload = b"".join(b"%x\r\n%s\r\n" % (chunk, body[i : i + chunk]) for i in range(0, len(body), chunk))
            payload += b"0\r\n\r\n"
        else:
            head, payload = b"Content-Length: %d\r\n" % len(body), body
        target = b"POST http://acme.atlassian.net/rest/api/3/issue HTTP/1.1\r\nHost: acme.atlassian.net\r\n"
        sock.sendall(target + head + b"\r\n")
        sock.sendall(payload)
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 403"), reply[:200]
    assert len(site.record.requests) == seen
    assert_still_serving(limited)
    assert_no_crash(limited)
