"""Fail closed (issue 11): every check refuses when it cannot decide; none lets a request through by raising."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

from support import h2_upstream
from support.clients import open_tunnel, raw_connect, read_until_closed
from support.proxy import TOKEN_192, basic, command, mitmdump, proxy_env, run_cli, wait_for

LOGIN = "ci:Pr0xy-pa55word-9f3e"
VALID = basic(*LOGIN.split(":")).encode()


def raw_head(host: str, port: int, head: bytes) -> bytes:
    """Send `head` verbatim (any bytes) and return what the proxy answers until it closes or accepts."""
    with socket.create_connection((host, port), timeout=15) as sock:
        sock.sendall(head)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


@pytest.fixture
def guarded(make_proxy):
    return make_proxy(ATLASSIAN_PROXY_PROXY_AUTH=LOGIN)


@pytest.mark.parametrize(
    "value",
    [b"Basic \xc3\xa9", b"Basic \xe9", VALID + b"\xff", b"Basic " + "é".encode() * 3],
    ids=["utf8-e-acute", "latin1-byte", "valid-then-ff", "non-ascii-run"],
)
def test_non_ascii_proxy_authorization_gets_407_for_connect_and_plain_http(guarded, plain_site, value):
    connect = b"CONNECT acme.atlassian.net:443 HTTP/1.1\r\nHost: acme.atlassian.net:443\r\nProxy-Authorization: "
    assert raw_head(guarded.host, guarded.port, connect + value + b"\r\n\r\n").startswith(b"HTTP/1.1 407")
    seen = len(plain_site.record.requests)
    plain = (
        f"GET http://127.0.0.1:{plain_site.port}/internal HTTP/1.1\r\nHost: 127.0.0.1:{plain_site.port}\r\n".encode()
        + b"Proxy-Authorization: "
        + value
        + b"\r\nConnection: close\r\n\r\n"
    )
    assert raw_head(guarded.host, guarded.port, plain).startswith(b"HTTP/1.1 407")
    assert len(plain_site.record.requests) == seen


def tunnel_request(proxy, head: bytes) -> bytes:
    tls = open_tunnel(proxy.host, proxy.port, "acme.atlassian.net", "acme.atlassian.net", proxy.ca_file)
    with tls:
        tls.sendall(head)
        return read_until_closed(tls)


@pytest.mark.parametrize("host", ["acme.atlassian.net:²", "acme.atlassian.net:٤٤٣", "acme.atlassian.net:𝟒𝟒𝟑"])
def test_unparsable_host_authority_is_400_and_nothing_goes_upstream(proxy, site, host):
    seen = len(site.record.requests)
    head = (
        f"GET /rest/api/3/myself HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic Y2xpZW50OnNlY3JldA==\r\n"
        "Cookie: own=1\r\nConnection: close\r\n\r\n"
    ).encode()
    reply = tunnel_request(proxy, head)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"Traceback" not in reply
    assert len(site.record.requests) == seen


def h2_get(proxy, path: str) -> tuple[int, bytes]:
    """One HTTP/2 GET through a tunnel to acme.atlassian.net with `:path` exactly as given."""
    head, sock = raw_connect(proxy.host, proxy.port, "acme.atlassian.net")
    assert head.startswith(b"HTTP/1.1 200"), head
    context = ssl.create_default_context(cafile=str(proxy.ca_file))
    context.set_alpn_protocols(["h2"])
    with context.wrap_socket(sock, server_hostname="acme.atlassian.net") as tls:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        headers = [(":method", "GET"), (":scheme", "https"), (":authority", "acme.atlassian.net"), (":path", path)]
        conn.send_headers(1, headers, end_stream=True)
        tls.sendall(conn.data_to_send())
        status, body = 0, b""
        while True:
            data = tls.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    return status, body
            tls.sendall(conn.data_to_send())
        return status, body


def test_http2_path_holding_an_absolute_url_for_another_host_gets_no_credentials(make_proxy, ca):
    h2_site = h2_upstream.H2Server(ca.issue_cert("acme.atlassian.net"))
    try:
        proxy = make_proxy(
            ATLASSIAN_PROXY_HOSTS="acme.atlassian.net",
            ATLASSIAN_PROXY_CONNECT_TO=f"acme.atlassian.net=127.0.0.1:{h2_site.port}",
        )
        assert h2_get(proxy, "/h2")[0] == 200
        seen = len(h2_site.record.requests)
        status, body = h2_get(proxy, "https://globex.atlassian.net/h2")
        assert status == 421, body
        assert len(h2_site.record.requests) == seen
        assert h2_get(proxy, "https://acme.atlassian.net/h2")[0] == 200
    finally:
        h2_site.close()


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        (
            ("--listen-host", "127.0.0.1", "--mode", "regular@0.0.0.0:0"),
            {},
            "mode regular: refusing to listen on 0.0.0.0",
        ),
        (
            ("--listen-host", "127.0.0.1", "--mode", "reverse:https://acme.atlassian.net@0.0.0.0:0"),
            {},
            "mode reverse: refusing to listen on 0.0.0.0",
        ),
        (("--listen-host", "127.0.0.1", "--mode", "socks5"), {"ATLASSIAN_PROXY_PROXY_AUTH": LOGIN}, "mode socks5"),
        (("--listen-host", "127.0.0.1", "--set", "ssl_insecure=true"), {}, "ssl_insecure would send the API token"),
    ],
    ids=["regular-spec-every-interface", "reverse-spec-every-interface", "socks5-with-login", "ssl-insecure"],
)
def test_mitmdump_modes_and_options_that_skip_a_check_are_refused(site, ca_file, tmp_path, options, env, expected):
    addon = Path(__file__).parents[2] / "proxy_addon" / "addon.py"
    result = subprocess.run(
        [mitmdump(), "-s", str(addon), "--listen-port", "0", *options],
        env=proxy_env(site, ca_file, tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0, result.stdout
    assert expected in result.stdout + result.stderr


def test_control_characters_a_client_chose_are_escaped_in_the_log(make_proxy):
    proxy = make_proxy()
    head = (  # plain http to a credential host: refused locally, still logged with its path
        b"GET http://acme.atlassian.net/a\x1b]0;pwned\x07\x1b[2Jb HTTP/1.1\r\n"
        b"Host: acme.atlassian.net\r\nConnection: close\r\n\r\n"
    )
    assert raw_head(proxy.host, proxy.port, head).startswith(b"HTTP/1.1 403")
    wait_for(lambda: "/a\\x1b]0;pwned\\x07\\x1b[2Jb" in proxy.output, what="the escaped log line")
    assert "\x1b" not in proxy.output
    assert "\x07" not in proxy.output


@pytest.mark.parametrize(
    "header",
    [b"X-Note: a\rAuthorization: x", b"X-Note: a\x00b", b"X-Note: a\r\n Authorization: x"],
    ids=["bare-cr", "nul", "obs-fold"],
)
def test_ambiguous_header_bytes_are_400_and_nothing_goes_upstream(proxy, site, header):
    seen = len(site.record.requests)
    head = (
        b"GET /rest/api/3/myself HTTP/1.1\r\nHost: acme.atlassian.net\r\n" + header + b"\r\nConnection: close\r\n\r\n"
    )
    reply = tunnel_request(proxy, head)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert len(site.record.requests) == seen
    assert tunnel_request(
        proxy, b"GET /ok HTTP/1.1\r\nHost: acme.atlassian.net\r\nConnection: close\r\n\r\n"
    ).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("name", ["evilatlassian.net", "acme.atlassian.net.example.test", "a.b.atlassian.net"])
def test_login_sends_the_token_only_to_a_real_site_name(site, ca_file, tmp_path, name):
    seen = len(site.record.requests)
    env = proxy_env(site, ca_file, tmp_path, HOME=str(tmp_path), ATLASSIAN_PROXY_API_TOKEN=None)
    result = run_cli("login", "--email", "me@acme.example", "--site", name, env=env, stdin=TOKEN_192 + "\n")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"--site: {name} is not an Atlassian Cloud site" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(site.record.requests) == seen


def test_a_token_file_replaced_by_a_fifo_keeps_the_token_and_sigterm_still_stops(make_proxy, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN_192)
    proxy = make_proxy(ATLASSIAN_PROXY_API_TOKEN=None, ATLASSIAN_PROXY_API_TOKEN_FILE=str(token_file))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    os.replace(fifo, token_file)
    wait_for(lambda: "not a regular file" in proxy.output, what="the watcher's reason")
    proxy.stop(timeout=20)  # raises TimeoutExpired if the watcher still blocks shutdown


NETNS_ADDRESS = "10.1.2.3"
"""An address of a private network namespace's loopback device that `localhost` is made to resolve to."""


def in_netns_where_localhost_is(address: str, hosts: Path, argv: list[str]) -> list[str]:
    """`argv` in a new user, mount and network namespace where `localhost` resolves to `address` only.

    Nothing leaves the namespace: it has only its own loopback device, which gets `address` too.
    """
    hosts.write_text(f"{address} localhost\n")
    script = f'ip link set lo up && ip addr add {address}/32 dev lo && mount --bind {hosts} /etc/hosts && exec "$@"'
    return ["unshare", "--user", "--map-root-user", "--mount", "--net", "sh", "-c", script, "sh", *argv]


def require_namespaces() -> None:
    probe = ["unshare", "--user", "--map-root-user", "--mount", "--net", "true"]
    if shutil.which("unshare") is None or subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must allow unprivileged user namespaces (unshare -rmn)")
        pytest.skip("unprivileged user namespaces are not available (unshare -rmn)")


@pytest.mark.parametrize("runner", ["run", "mitmdump"])
def test_a_listen_name_that_binds_a_non_loopback_address_stops_the_start(site, ca_file, tmp_path, runner):
    require_namespaces()
    addon = Path(__file__).parents[2] / "proxy_addon" / "addon.py"
    argv = {
        "run": [*command(), "run", "--listen-host", "localhost", "--listen-port", "0"],
        "mitmdump": [mitmdump(), "-s", str(addon), "--listen-host", "localhost", "--listen-port", "0"],
    }[runner]
    result = subprocess.run(
        in_netns_where_localhost_is(NETNS_ADDRESS, tmp_path / "hosts", argv),
        env=proxy_env(site, ca_file, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == {"run": 2, "mitmdump": 1}[runner], output  # run: like any bad setting
    assert f"the proxy is listening on {NETNS_ADDRESS}, which is not a loopback address" in output
    assert "Traceback" not in output
    if runner == "run":
        last = result.stderr.splitlines()[-1]
        assert last.startswith(f"atlassian-auth-proxy: error: the proxy is listening on {NETNS_ADDRESS}"), output
        assert "Error logged during startup" not in output
        assert "atlassian-auth-proxy listening on http://" not in output
