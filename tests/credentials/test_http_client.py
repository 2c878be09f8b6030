"""The proxy's own HTTP client: where a request of its own really connects, what it trusts, how it fails."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest
from pydantic import SecretStr

from proxy_addon.credentials.http_client import Reach, Unreachable, exchange, get, json_object, trust
from proxy_addon.policy.connect_rules import ConnectToRule
from proxy_addon.settings.modes import UpstreamProxy

from support.upstream import make_context

SITE = "acme.atlassian.net"


def test_connect_to_moves_the_tcp_connection_and_keeps_the_name_for_tls():
    reach = Reach(connect_to=(ConnectToRule.parse("*.atlassian.net=127.0.0.1:8443"),))
    connection = reach.connection(SITE, 443)
    assert (connection.host, connection.port) == (SITE, 443), "SNI, Host and the certificate name"
    assert connection.target == ("127.0.0.1", 8443)
    assert reach.connection("example.test", 443).target == ("example.test", 443), "no rule: no move"


def test_through_a_corporate_proxy_it_is_a_tunnel_carrying_the_proxys_login():
    via = UpstreamProxy("corp.example.test", 3128, "user", SecretStr("pa55"))
    connection = Reach(via=via).connection(SITE, 443)
    assert (connection.host, connection.port) == ("corp.example.test", 3128)
    assert (connection._tunnel_host, connection._tunnel_port) == (SITE, 443)
    assert connection._tunnel_headers["Proxy-Authorization"] == "Basic dXNlcjpwYTU1"
    assert "Proxy-Authorization" not in Reach(via=UpstreamProxy("corp", 3128)).connection(SITE, 443)._tunnel_headers


def test_it_trusts_the_public_cas_and_the_upstream_bundle(tmp_path, ca):
    bundle = tmp_path / "corp-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    public = trust(None)
    assert public.verify_mode is ssl.CERT_REQUIRED
    assert public.check_hostname
    assert len(trust(bundle).get_ca_certs()) == len(public.get_ca_certs()) + 1


def test_a_refused_connection_is_unreachable_naming_the_host_and_not_the_address():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    reach = Reach(connect_to=(ConnectToRule.parse(f"{SITE}=127.0.0.1:{port}"),))
    with pytest.raises(Unreachable, match=f"cannot reach {SITE}: the connection was refused") as raised:
        get(SITE, 443, "/rest/api/3/myself", {}, reach)
    assert "127.0.0.1" not in str(raised.value)


@pytest.mark.parametrize(("body", "expected"), [(b'{"a": 1}', {"a": 1}), (b"[1]", {}), (b"<html>", {}), (b"", {})])
def test_only_a_json_object_is_read(body, expected):
    assert json_object(body) == expected


def dripping_site(ca) -> tuple[socket.socket, threading.Event]:
    """A TLS site that answers with a length it then sends a byte every 0.1 s, until told to stop."""
    listener = socket.create_server(("127.0.0.1", 0))
    context = make_context(ca.issue_cert(SITE))
    stop = threading.Event()

    def serve() -> None:
        raw, _ = listener.accept()
        with context.wrap_socket(raw, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{")
            while not stop.wait(0.1):
                try:
                    tls.sendall(b" ")
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    return listener, stop


def test_a_deadline_bounds_the_whole_exchange_with_a_site_that_drips_its_answer(ca, ca_file):
    listener, stop = dripping_site(ca)
    reach = Reach(connect_to=(ConnectToRule.parse(f"{SITE}=127.0.0.1:{listener.getsockname()[1]}"),), extra_ca=ca_file)
    began = time.monotonic()
    try:
        with pytest.raises(Unreachable, match=f"cannot reach {SITE}: no whole answer within 1 s"):
            exchange(SITE, 443, "POST", "/oauth/token", [], b"grant_type=client_credentials", reach, 1024, 1.0)
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - began < 5, "each byte came within TIMEOUT: only the deadline ends it"
