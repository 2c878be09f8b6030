"""Real clients talking through the proxy: curl, requests, httpx, and raw sockets."""

from __future__ import annotations

import os
import shlex
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import requests

from support.proxy import EMAIL, TOKEN_192, basic
from support.recipes import Recipe
from support.upstream import Seen

CLIENT_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]


def curl(proxy_url: str, url: str, cafile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Plain curl, as a user would run it, with the proxy's CA and nothing else trusted."""
    return subprocess.run(
        ["curl", "-sS", "--proxy", proxy_url, "--cacert", str(cafile), "--max-time", "30", *args, url],
        capture_output=True,
        text=True,
        env=CLIENT_ENV,
        check=False,
        timeout=60,
    )


def with_requests(proxy_url: str, url: str, cafile: Path, headers: dict[str, str]) -> Reply:
    with requests.Session() as session:
        session.trust_env = False
        r = session.get(url, proxies={"https": proxy_url, "http": proxy_url}, verify=str(cafile), headers=headers)
        return Reply(r.status_code, r.text, dict(r.headers))


def with_httpx(proxy_url: str, url: str, cafile: Path, headers: dict[str, str]) -> Reply:
    context = ssl.create_default_context(cafile=str(cafile))
    with httpx.Client(proxy=proxy_url, verify=context, trust_env=False) as client:
        r = client.get(url, headers=headers)
        return Reply(r.status_code, r.text, dict(r.headers))


def raw_connect(
    proxy_host: str, proxy_port: int, connect_to: str, headers: dict[str, str] | None = None
) -> tuple[bytes, socket.socket]:
    """Send a bare CONNECT and return the proxy's reply head (and body, if it closes)."""
    sock = socket.create_connection((proxy_host, proxy_port), timeout=15)
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    sock.sendall(f"CONNECT {connect_to}:443 HTTP/1.1\r\nHost: {connect_to}:443\r\n{extra}\r\n".encode())
    reply = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        reply += chunk
        if reply.startswith(b"HTTP/1.1 200") and b"\r\n\r\n" in reply:
            break
    return reply, sock


def open_tunnel(
    proxy_host: str,
    proxy_port: int,
    connect_to: str,
    sni: str,
    cafile: Path,
    connect_headers: dict[str, str] | None = None,
) -> ssl.SSLSocket:
    """CONNECT to `connect_to` and handshake with `sni`; the TLS socket is ready for raw bytes.

    Hostname checking is off so that a deliberately mismatched SNI still completes; trust is
    still limited to `cafile`, which tells us who terminated TLS.
    """
    head, sock = raw_connect(proxy_host, proxy_port, connect_to, connect_headers)
    assert head.startswith(b"HTTP/1.1 200"), head
    context = ssl.create_default_context(cafile=str(cafile))
    context.check_hostname = False
    return context.wrap_socket(sock, server_hostname=sni)


def read_until_closed(sock: socket.socket) -> bytes:
    reply = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not chunk:
            break
        reply += chunk
    return reply


def raw_tunnel(
    proxy_host: str,
    proxy_port: int,
    connect_to: str,
    sni: str,
    cafile: Path,
    request: bytes,
    connect_headers: dict[str, str] | None = None,
) -> tuple[bytes, ssl.SSLSocket]:
    """CONNECT to `connect_to`, handshake with `sni`, send `request` verbatim, return the reply."""
    tls = open_tunnel(proxy_host, proxy_port, connect_to, sni, cafile, connect_headers)
    tls.sendall(request)
    return read_until_closed(tls), tls


def with_env_exports(
    proxy_port: int, confdir: Path, home: Path, script: str, *env_args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run `script` in sh after `eval "$(atlassian-auth-proxy env ENV_ARGS)"`, as a user's shell would.

    Nothing else is set: the proxy, its CA and every client setting come from the exports. Standard
    input is no terminal, as in a script, cron or CI, wherever the tests run.
    """
    bin_dir = Path(sys.executable).parent
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(home),
        "ATLASSIAN_PROXY_LISTEN_PORT": str(proxy_port),
        "ATLASSIAN_PROXY_CONFDIR": str(confdir),
        **settings,
    }
    return subprocess.run(
        ["sh", "-c", f'eval "$(atlassian-auth-proxy env {shlex.join(env_args)})" && {script}'],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=120,
    )


def require(what: str, present: bool) -> None:
    """A runtime the test needs: skipped where missing, except in CI (CI=true), which must have it (.ci/run)."""
    if not present:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must provide {what} (see .ci/run)")
        pytest.skip(f"{what} is not installed")


def run_recipe(
    proxy, site, where: Path, recipe: Recipe, *env_args: str, **settings: str
) -> tuple[subprocess.CompletedProcess[str], list[Seen]]:
    """A docs recipe, as written, in `where` after the `env` exports: its files beside it, then its command.

    Returns what it printed and every request that reached the stand-in while it ran.
    """
    recipe.write_files(where)
    before = len(site.record.requests)
    result = with_env_exports(proxy.port, proxy.confdir, where, recipe.command, *env_args, **settings)
    return result, site.record.requests[before:]


def assert_identity(
    arrived: list[Seen], authorization: str = basic(EMAIL, TOKEN_192), sni: str = "acme.atlassian.net"
) -> None:
    """Something reached the site, all of it through a tunnel to `sni` and with the configured identity alone."""
    assert arrived, "nothing reached the site"
    assert {tuple(v for k, v in r.headers if k.lower() == "authorization") for r in arrived} == {(authorization,)}
    assert {r.sni for r in arrived} == {sni}


def status_and_body(proxy, url: str, *args: str) -> tuple[str, str]:
    """curl through `proxy`: the status code (as text) and the body."""
    result = curl(proxy.url, url, proxy.ca_file, "-w", "%{http_code}", *args)
    return result.stdout[-3:], result.stdout[:-3]


def assert_still_serving(proxy) -> None:
    """The proxy answers a normal request at once: a fault elsewhere did not take it down."""
    started = time.monotonic()
    assert status_and_body(proxy, "https://acme.atlassian.net/rest/api/3/myself")[0] == "200"
    assert time.monotonic() - started < 1.0
