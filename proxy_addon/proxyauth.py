"""Proxy authentication: only clients that know ATLASSIAN_PROXY_PROXY_AUTH may use the proxy.

Shaped like mitmproxy's built-in `proxyauth`, with three differences: the password is compared
in constant time, only a digest of `user:password` is kept (never the password), and only the
user name goes into `flow.metadata`, so saved flows cannot hold the password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from mitmproxy import connection, http
from pydantic import SecretStr

from proxy_addon.errors import proxy_reply

logger = logging.getLogger(__name__)

USER_KEY = "proxy_user"
REALM = "atlassian-auth-proxy"


def _digest(user: str, password: str) -> bytes:
    return hashlib.sha256(f"{user}:{password}".encode()).digest()


@dataclass(frozen=True, slots=True)
class ProxyLogin:
    """The one user allowed to use the proxy. Checks use only the digest; the password is kept
    as a secret solely so `env` can print a proxy URL clients can use."""

    user: str
    digest: bytes = field(repr=False)
    password: SecretStr = field(repr=False, compare=False, default=SecretStr(""))

    @classmethod
    def parse(cls, text: str) -> ProxyLogin:
        """`user:password`, surrounding whitespace ignored; ValueError says what is wrong, never the value."""
        user, sep, password = text.strip().partition(":")
        if not sep or not user or not password:
            raise ValueError("is not USER:PASSWORD (both parts non-empty, e.g. ci:a-long-random-password)")
        if not (user + password).isprintable():
            raise ValueError("contains control characters: use printable characters only")
        return cls(user, _digest(user, password), SecretStr(password))

    def check(self, header: str | None) -> str | None:
        """The user name if the Proxy-Authorization header carries this login, else None."""
        given = basic_credentials(header)
        if given is None:
            return None
        user, password = given
        return user if hmac.compare_digest(_digest(user, password), self.digest) else None

    @classmethod
    def from_file(cls, path: Path) -> ProxyLogin:
        try:
            text = path.expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
            raise ValueError(f"cannot read {str(path)!r} ({reason}); fix the path or its permissions") from None
        try:
            return cls.parse(text)
        except ValueError as e:
            raise ValueError(f"the login in {str(path)!r} {e}") from None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """`Basic base64(user:password)` -> (user, password); None for anything else."""
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def auth_required() -> http.Response:
    response = proxy_reply(
        407, "proxy authentication required: send Proxy-Authorization with the user and password the proxy was given"
    )
    response.headers["Proxy-Authenticate"] = f'Basic realm="{REALM}"'
    return response


class ProxyAuthentication:
    """407 for CONNECT and plain requests without the right Proxy-Authorization.

    A CONNECT that authenticates makes its whole connection authenticated (the requests inside
    the tunnel cannot carry proxy credentials). Proxy-Authorization is meant for this proxy, so
    it is removed from every request, authenticated or not, before anything goes upstream.
    """

    def __init__(self) -> None:
        self.login: ProxyLogin | None = None
        self.authenticated: weakref.WeakKeyDictionary[connection.Client, str] = weakref.WeakKeyDictionary()

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self.login is not None and (user := self._authenticate(self.login, flow)):
            self.authenticated[flow.client_conn] = user

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if self.login is not None:
            user = self.authenticated.get(flow.client_conn)
            if user is not None:
                flow.metadata[USER_KEY] = user
            else:
                self._authenticate(self.login, flow)
        flow.request.headers.pop("proxy-authorization", None)

    @staticmethod
    def _authenticate(login: ProxyLogin, flow: http.HTTPFlow) -> str | None:
        user = login.check(flow.request.headers.pop("proxy-authorization", None))
        if user is None:
            flow.response = auth_required()
            peer = flow.client_conn.peername
            logger.warning("407: %s from %s without valid proxy credentials", flow.request.method, peer and peer[0])
            return None
        flow.metadata[USER_KEY] = user
        return user
