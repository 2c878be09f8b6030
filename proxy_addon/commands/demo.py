"""`atlassian-auth-proxy demo`: see what the proxy does, with no account and no network.

A throwaway CA (made here with `cryptography`), a TLS stand-in for two sites on 127.0.0.1,
the real proxy as a subprocess with CONNECT_TO pointing at the stand-in, and three requests:
one that gets credentials, one plain-http refusal, one tunnelled untouched. Everything lives
in a temporary directory and is stopped before the command returns.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPSConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from proxy_addon.settings.names import ENV_PREFIX

SITE = "acme.atlassian.net"
OTHER = "other.example.test"
PATH = "/rest/api/3/myself"
EMAIL = "demo@example.com"
TOKEN = "demo-token-not-a-real-one-0123456789"  # noqa: S105 - a made-up token for the demo
CLIENT_AUTHORIZATION = "Basic " + base64.b64encode(b"someone@example.com:client-held-token").decode()
CLIENT_COOKIE = "tenant.session.token=client-cookie"
LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")
START_SECONDS = 30.0
TIMEOUT = 15.0


def masked(value: str | None) -> str:
    """`Basic base64(user:token)` with all but the token's first four characters hidden."""
    if value is None:
        return "(none)"
    scheme, _, encoded = value.partition(" ")
    try:
        user, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        return f"{scheme} (not Basic credentials)"
    return f"{scheme} base64({user}:{secret[:4]}…)"


# --- a throwaway CA and a certificate for the stand-in -------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path, names: tuple[str, ...]) -> tuple[Path, Path, Path]:
    """Write a CA, and a server certificate for `names` signed by it; return (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("atlassian-auth-proxy demo CA"))
        .issuer_name(_name("atlassian-auth-proxy demo CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "demo-ca.pem", directory / "site-cert.pem", directory / "site-key.pem"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


# --- the stand-in site ----------------------------------------------------------------------


@dataclass
class Received:
    sni: str | None
    path: str
    headers: dict[str, str]


@dataclass
class Inbox:
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StandIn

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        sni = getattr(self.connection, "sni", None)
        with self.server.inbox.lock:
            headers = {name.lower(): value for name, value in self.headers.items()}
            self.server.inbox.requests.append(Received(sni, self.path, headers))
        body = b'{"accountId": "demo-account", "displayName": "Demo User"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class StandIn(ThreadingHTTPServer):
    """An HTTPS server on 127.0.0.1 answering for every name in its certificate."""

    daemon_threads = True

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.inbox = Inbox()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)

        def remember_sni(sock: Any, name: str | None, _context: ssl.SSLContext) -> None:
            sock.sni = name

        self.context.sni_callback = remember_sni

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(tls, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


# --- the proxy --------------------------------------------------------------------------------


def proxy_env(site_port: int, demo_ca: Path, confdir: Path) -> dict[str, str]:
    """Only the demo's settings: nothing from the user's ATLASSIAN_PROXY_* (a real token stays out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(
        {
            ENV_PREFIX + "EMAIL": EMAIL,
            ENV_PREFIX + "API_TOKEN": TOKEN,
            ENV_PREFIX + "HOSTS": SITE,
            ENV_PREFIX + "CONNECT_TO": f"{SITE}=127.0.0.1:{site_port},{OTHER}=127.0.0.1:{site_port}",
            ENV_PREFIX + "UPSTREAM_CA_BUNDLE": str(demo_ca),
            ENV_PREFIX + "CONFDIR": str(confdir),
        }
    )
    return env


class ProxyProcess:
    """`atlassian-auth-proxy run` on a free loopback port; its output is kept for a failure report."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self.address: tuple[str, int] | None = None
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "proxy_addon.commands.main", "run", "--listen-port", "0"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout or ():
            self.lines.append(line)
            if self.address is None and (match := LISTENING.search(line)):
                self.address = match[1], int(match[2])
                self._ready.set()
        self._ready.set()

    def wait_ready(self) -> tuple[str, int]:
        self._ready.wait(START_SECONDS)
        if self.address is None:
            raise RuntimeError("the proxy did not start:\n" + "".join(self.lines))
        return self.address

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- the three requests ---------------------------------------------------------------------


@dataclass
class Check:
    title: str
    ok: bool
    rows: list[tuple[str, str, str]]
    reply: str
    note: str


def _https_through(proxy: tuple[str, int], host: str, trust: Path, headers: dict[str, str]) -> tuple[int, str]:
    connection = HTTPSConnection(*proxy, timeout=TIMEOUT, context=ssl.create_default_context(cafile=str(trust)))
    connection.set_tunnel(host, 443)
    try:
        connection.request("GET", PATH, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def injected(proxy: tuple[str, int], proxy_ca: Path, inbox: Inbox) -> Check:
    before = len(inbox.requests)
    status, _ = _https_through(proxy, SITE, proxy_ca, {"Authorization": CLIENT_AUTHORIZATION, "Cookie": CLIENT_COOKIE})
    got = inbox.requests[before] if len(inbox.requests) > before else Received(None, "", {})
    expected = "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    ok = status == 200 and got.headers.get("authorization") == expected and "cookie" not in got.headers
    return Check(
        f"https://{SITE}{PATH}",
        ok,
        [
            ("Authorization", masked(CLIENT_AUTHORIZATION), masked(got.headers.get("authorization"))),
            ("Cookie", CLIENT_COOKIE, got.headers.get("cookie", "(removed)")),
            ("TLS SNI", SITE, got.sni or "(none)"),
        ],
        str(status),
        "credentials injected: the client's own were removed, the configured identity was added",
    )


def refused(proxy: tuple[str, int], inbox: Inbox) -> Check:
    before = len(inbox.requests)
    connection = HTTPConnection(*proxy, timeout=TIMEOUT)
    try:
        connection.request("GET", f"http://{SITE}{PATH}", headers={"Authorization": CLIENT_AUTHORIZATION})
        response = connection.getresponse()
        status, body = response.status, response.read().decode("utf-8", "replace").strip()
    finally:
        connection.close()
    arrived = len(inbox.requests) > before
    return Check(
        f"http://{SITE}{PATH}",
        status == 403 and not arrived,
        [
            ("Authorization", masked(CLIENT_AUTHORIZATION), "(nothing arrived)" if not arrived else "(it arrived!)"),
        ],
        f"{status} {body}",
        "refused: credentials never travel over plain http",
    )


def tunnelled(proxy: tuple[str, int], demo_ca: Path, inbox: Inbox) -> Check:
    before = len(inbox.requests)
    try:
        status, _ = _https_through(proxy, OTHER, demo_ca, {"Authorization": CLIENT_AUTHORIZATION})
    except ssl.SSLError:
        status = 0
    got = inbox.requests[before] if len(inbox.requests) > before else Received(None, "", {})
    ok = status == 200 and got.headers.get("authorization") == CLIENT_AUTHORIZATION
    return Check(
        f"https://{OTHER}{PATH}",
        ok,
        [
            ("Authorization", masked(CLIENT_AUTHORIZATION), masked(got.headers.get("authorization"))),
            ("TLS", "trusts only the site's own CA", "the site's certificate, verified" if status else "(failed)"),
        ],
        str(status),
        "tunnelled untouched: not a credential host, so not decrypted and nothing changed",
    )


def render(check: Check, number: int) -> str:
    width = max(len(sent) for _, sent, _ in check.rows) + 2
    lines = [f"{number}. {check.title}", f"   {'':14}{'the client sent':{width}}the site received"]
    lines += [f"   {name:14}{sent:{width}}{received}" for name, sent, received in check.rows]
    lines.append(f"   {'reply':14}{check.reply}")
    lines.append(f"   {'ok' if check.ok else 'FAILED'}: {check.note}")
    return "\n".join(lines)


def run_demo() -> list[Check]:
    with tempfile.TemporaryDirectory(prefix="atlassian-auth-proxy-demo-") as tmp:
        directory = Path(tmp)
        demo_ca, cert, key = make_certificates(directory, (SITE, OTHER))
        site = StandIn(cert, key)
        threading.Thread(target=site.serve_forever, daemon=True).start()
        proxy = ProxyProcess(proxy_env(site.server_address[1], demo_ca, directory / "confdir"), directory)
        try:
            address = proxy.wait_ready()
            print(
                f"a stand-in for {SITE} and {OTHER} on 127.0.0.1:{site.server_address[1]}; "
                f"the proxy on {address[0]}:{address[1]}, injecting for {EMAIL}\n"
            )
            proxy_ca = directory / "confdir" / "mitmproxy-ca-cert.pem"
            return [
                injected(address, proxy_ca, site.inbox),
                refused(address, site.inbox),
                tunnelled(address, demo_ca, site.inbox),
            ]
        finally:
            proxy.stop()
            site.shutdown()
            site.server_close()


def demo_command(_args: argparse.Namespace) -> int:
    try:
        checks = run_demo()
    except (RuntimeError, OSError) as e:
        print(f"demo failed: {e}", file=sys.stderr)
        return 1
    for number, check in enumerate(checks, 1):
        print(render(check, number) + "\n")
    passed = sum(check.ok for check in checks)
    print(f"{passed} of {len(checks)} checks passed")
    return 0 if passed == len(checks) else 1
