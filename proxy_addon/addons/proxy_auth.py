"""Proxy authentication: only clients that know a proxy login may use the proxy.

The login is ATLASSIAN_PROXY_PROXY_AUTH's one user, or one of the `[[clients]]`, each with its
own. Shaped like mitmproxy's built-in `proxyauth`, with four differences: the password is
compared in constant time, only a digest of `user:password` is kept (never the password), only
the user name goes into the flow's record, so saved flows cannot hold the password, and guessing
is slow: a peer address whose logins failed too often gets `429` for a growing while, its
password not checked at all (`policy.login_throttle`), and its failures are logged in one line
per minute, not one each.
"""

from __future__ import annotations

import logging
import math
import time
import weakref

from mitmproxy import connection, http

from proxy_addon.addons import fields
from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.replies import refuse
from proxy_addon.policy.clients import ClientTable
from proxy_addon.policy.login_throttle import Failure, LoginThrottle
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import FlowRecord
from proxy_addon.policy.refusals import Refusal

logger = logging.getLogger(__name__)

PROXY_AUTHORIZATION = frozenset({b"proxy-authorization"})


class Logins:
    """Who each client connection's CONNECT authenticated as: the proxy login writes it, the metrics
    read it for tunnels nobody decrypts. Forgotten with the connection."""

    def __init__(self) -> None:
        self._users: weakref.WeakKeyDictionary[connection.Client, str] = weakref.WeakKeyDictionary()

    def user_of(self, client: connection.Client) -> str | None:
        return self._users.get(client)

    def remember(self, client: connection.Client, user: str) -> None:
        self._users[client] = user


def locked_out(flow: http.HTTPFlow, seconds: float) -> None:
    """The answer to a peer locked out after failed logins: whole seconds, at least 1."""
    refuse(flow, Refusal.LOCKED_OUT, retry_after=max(1, math.ceil(seconds)))


class ProxyAuthentication:
    """407 for CONNECT and plain requests without the right Proxy-Authorization.

    A CONNECT that authenticates makes its whole connection authenticated (the requests inside
    the tunnel cannot carry proxy credentials). Proxy-Authorization is meant for this proxy, so
    it is removed from every request, authenticated or not, before anything goes upstream.
    """

    def __init__(self, logins: Logins | None = None) -> None:
        self.logins = Logins() if logins is None else logins
        self.login: ProxyLogin | None = None
        self.clients = ClientTable()
        self.throttle = LoginThrottle()

    def use(self, prepared: Prepared) -> None:
        self.login, self.clients = prepared.login, prepared.clients

    @property
    def required(self) -> bool:
        return self.login is not None or bool(self.clients)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self.required and (user := self._authenticate(flow)):
            self.logins.remember(flow.client_conn, user)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if self.required:
            user = self.logins.user_of(flow.client_conn)
            if user is not None:
                FlowRecord.of(flow.metadata).user = user
            else:
                self._authenticate(flow)
        fields.drop(flow.request.headers, PROXY_AUTHORIZATION)

    def _check(self, header: str | None) -> str | None:
        """The user the header logs in as: a client's name with `[[clients]]`, else PROXY_AUTH's user."""
        if self.clients:
            client = self.clients.authenticate(header)
            return client.name if client is not None else None
        return self.login.check(header) if self.login is not None else None

    def _authenticate(self, flow: http.HTTPFlow) -> str | None:
        header = flow.request.headers.pop("proxy-authorization", None)
        peer = flow.client_conn.peername
        address = str(peer[0]) if peer else ""
        now = time.monotonic()
        if (wait := self.throttle.locked(address, now)) is not None:
            locked_out(flow, wait)
            return None
        user = self._check(header)
        if user is None:
            if header is None:  # the challenge many clients wait for before they send a login
                refuse(flow, Refusal.PROXY_AUTH)
                return None
            failure = self.throttle.failed(address, now)
            if failure.locked_for is None:
                refuse(flow, Refusal.PROXY_AUTH)
            else:
                locked_out(flow, failure.locked_for)
            self._log(flow.request.method, failure)
            return None
        FlowRecord.of(flow.metadata).user = user
        return user

    @staticmethod
    def _log(method: str, failure: Failure) -> None:
        if failure.locked_for is not None:
            logger.warning(
                "%s: %d failed proxy login(s) since the last line about it; its requests get 429 for %.0f s, "
                "without a password check",
                failure.peer,
                failure.report,
                failure.locked_for,
            )
        elif failure.report:
            logger.warning(
                "407: %s from %s with a wrong proxy login (%d since the last line about it; one line a minute at most)",
                method,
                failure.peer,
                failure.report,
            )
