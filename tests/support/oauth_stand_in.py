"""A TLS stand-in for Atlassian's token endpoint and API gateway on loopback, behaving like them for a service account.

`auth.atlassian.com` (`POST /oauth/token`) mints access tokens for one client id and secret, as
Atlassian does for a service account's OAuth client credentials: form or JSON body, `401
invalid_client` for a wrong id or secret, `expires_in` as the test sets it, optionally after a
delay (so concurrent first requests overlap one mint). `api.atlassian.com` accepts only an
access token it minted that is neither expired nor revoked, and answers 401 otherwise. Every
attempt to mint and every request at the gateway is recorded, with the verdict on its token.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support.upstream import LoopbackServer, make_context

TOKEN_HOST = "auth.atlassian.com"
GATEWAY = "api.atlassian.com"
CLIENT_ID = "sa-Client-0123456789abcdef"
CLIENT_SECRET = "ATOAsecret-for-tests_0123456789abcdefXYZ"
CLOUD_ID = "5ca1ab1e-0000-4000-8000-00000000c0de"
ACCOUNT = {"accountId": "712020:service-account", "displayName": "Acme Bot", "accountType": "app"}


@dataclass
class Issued:
    expires: float
    revoked: bool = False


@dataclass
class AtGateway:
    """One request as the gateway received it, and what it made of its token."""

    method: str
    path: str
    authorization: str | None
    verdict: str
    """`valid`, `expired`, `revoked`, `unknown` (not one it minted) or `none`."""
    cookie: str | None = None


@dataclass
class OAuthRecord:
    lock: threading.Lock = field(default_factory=threading.Lock)
    expires_in: float = 3600
    delay: float = 0.0
    secret: str = CLIENT_SECRET
    limited: int = 0
    """Answer this many more POSTs to the token endpoint with 429 and `Retry-After: retry_after`."""
    retry_after: int = 60
    attempts: list[bool] = field(default_factory=list)
    """Every POST to the token endpoint: whether it minted."""
    tokens: dict[str, Issued] = field(default_factory=dict)
    gateway: list[AtGateway] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    """Every body the token endpoint received (where the secret may be, and only there)."""

    @property
    def mints(self) -> int:
        with self.lock:
            return sum(self.attempts)

    def revoke_all(self) -> None:
        with self.lock:
            for issued in self.tokens.values():
                issued.revoked = True

    def verdicts(self) -> list[str]:
        with self.lock:
            return [seen.verdict for seen in self.gateway]

    def issued(self) -> list[str]:
        with self.lock:
            return list(self.tokens)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OAuthServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any], head_only: bool = False, **fields: str) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in fields.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head_only:
            self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _host(self) -> str:
        return self.headers.get("Host", "").partition(":")[0]

    def do_POST(self) -> None:
        if self._host() == TOKEN_HOST and urlsplit(self.path).path == "/oauth/token":
            self._token()
        else:
            self._gateway()

    def _token(self) -> None:
        record = self.server.record
        raw = self._body()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            form = json.loads(raw or b"{}")
        else:
            form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
        if record.delay:
            time.sleep(record.delay)
        good = (
            form.get("grant_type") == "client_credentials"
            and form.get("client_id") == CLIENT_ID
            and form.get("client_secret") == record.secret
        )
        with record.lock:
            limited = record.limited > 0
            record.limited -= limited
            record.attempts.append(good and not limited)
            record.bodies.append(raw)
        if limited:
            self._json(429, {"error": "rate_limited"}, Retry_After=str(record.retry_after))
            return
        if not good:
            self._json(401, {"error": "invalid_client", "error_description": "Unauthorized"})
            return
        token = "eyJ" + secrets.token_urlsafe(48)
        with record.lock:
            record.tokens[token] = Issued(time.monotonic() + record.expires_in)
        self._json(
            200, {"access_token": token, "expires_in": record.expires_in, "token_type": "Bearer", "scope": "read:jira"}
        )

    def _verdict(self, authorization: str | None) -> str:
        if authorization is None:
            return "none"
        scheme, _, token = authorization.partition(" ")
        record = self.server.record
        with record.lock:
            issued = record.tokens.get(token) if scheme == "Bearer" else None
        if issued is None:
            return "unknown"
        if issued.revoked:
            return "revoked"
        return "expired" if time.monotonic() >= issued.expires else "valid"

    def _gateway(self) -> None:
        if self.command in ("POST", "PUT"):
            self._body()
        authorization = self.headers.get("Authorization")
        verdict = self._verdict(authorization)
        record = self.server.record
        seen = AtGateway(self.command, self.path, authorization, verdict, self.headers.get("Cookie"))
        with record.lock:
            record.gateway.append(seen)
        head_only = self.command == "HEAD"
        if verdict != "valid":
            self._json(401, {"code": 401, "message": "Unauthorized"}, head_only)
        elif urlsplit(self.path).path.endswith("/rest/api/3/myself"):
            self._json(200, ACCOUNT, head_only)
        else:
            self._json(200, {"method": self.command, "path": self.path}, head_only)

    do_GET = do_HEAD = do_PUT = do_DELETE = _gateway


class OAuthServer(LoopbackServer):
    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(context, Handler)
        self.record = OAuthRecord()

    def reset(
        self,
        expires_in: float = 3600,
        delay: float = 0.0,
        secret: str = CLIENT_SECRET,
        limited: int = 0,
        retry_after: int = 60,
    ) -> OAuthRecord:
        """A fresh record: no tokens, no attempts; the endpoint answers as told from now on."""
        self.record = OAuthRecord(
            expires_in=expires_in, delay=delay, secret=secret, limited=limited, retry_after=retry_after
        )
        return self.record

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def start(cert: Any) -> OAuthServer:
    """The stand-in with `cert` (issued for auth.atlassian.com and api.atlassian.com)."""
    server = OAuthServer(make_context(cert))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
