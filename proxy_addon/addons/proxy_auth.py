"""Proxy authentication: only clients that know a proxy login may use the proxy.

The login is ATLASSIAN_PROXY_PROXY_AUTH's one user, or one of the `[[clients]]`, each with its
own. Shaped like mitmproxy's built-in `proxyauth`, with four differences: the password is
compared in constant time, only a digest of `user:password` is kept (never the password), only
the user name goes into the flow's record, so saved flows cannot hold the password, and guessing
is slow: a peer whose logins as one user failed too often gets `429` for that user for a growing
while, its password not checked at all, and so does a user whose logins failed too often from
everywhere, at peers it never logged in from (`policy.login_throttle`); failures are logged in
one line per peer a minute, not one each.
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
from proxy_addon.policy.login_throttle import MAX_FAILURES_EVERYWHERE, Failure, LoginThrottle
from proxy_addon.policy.proxy_login import ProxyLogin, basic_credentials
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

    def _login_of(self, user: str) -> ProxyLogin | None:
        """The login a claimed user is checked against: that client's, or PROXY_AUTH's one."""
        if self.clients:
            client = self.clients.get(user)
            return client.login if client is not None else None
        return self.login

    def _authenticate(self, flow: http.HTTPFlow) -> str | None:
        header = flow.request.headers.pop("proxy-authorization", None)
        if header is None:  # the challenge many clients wait for before they send a login; it names no user
            refuse(flow, Refusal.PROXY_AUTH)
            return None
        name, password = basic_credentials(header) or ("", "")
        login = self._login_of(name)
        claimed = name if login is not None and login.user == name else None
        peer = flow.client_conn.peername
        address = str(peer[0]) if peer else ""
        now = time.monotonic()
        if (wait := self.throttle.locked(address, claimed, now)) is not None:
            locked_out(flow, wait)
            return None
        if login is None or not login.accepts(name, password):  # PROXY_AUTH's digest, whichever name was sent
            failure = self.throttle.failed(address, claimed, now)
            if failure.locked_for is None and failure.locked_everywhere_for is None:
                refuse(flow, Refusal.PROXY_AUTH)
            else:
                locked_out(flow, max(failure.locked_for or 0.0, failure.locked_everywhere_for or 0.0))
            self._log(flow.request.method, failure)
            return None
        self.throttle.succeeded(address, name)
        FlowRecord.of(flow.metadata).user = name
        return name

    @staticmethod
    def _log(method: str, failure: Failure) -> None:
        user = failure.user or "a name that is no user of the proxy"
        if failure.locked_everywhere_for is not None:
            logger.warning(
                "%s: %d failed proxy logins from anywhere; its logins get 429 for %.0f s, without a password check, "
                "except from addresses it logged in from before",
                user,
                MAX_FAILURES_EVERYWHERE,
                failure.locked_everywhere_for,
            )
        if failure.locked_for is not None:
            logger.warning(
                "%s: %d failed proxy login(s) since the last line about it; its logins as %s get 429 for %.0f s, "
                "without a password check",
                failure.peer,
                failure.report,
                user,
                failure.locked_for,
            )
        elif failure.report and failure.locked_everywhere_for is None:
            logger.warning(
                "407: %s from %s with a wrong proxy login (%d since the last line about it; one line a minute at most)",
                method,
                failure.peer,
                failure.report,
            )
