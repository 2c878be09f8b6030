"""Proxy authentication: only clients that know a proxy login may use the proxy.

The login is ATLASSIAN_PROXY_PROXY_AUTH's one user, or one of the `[[clients]]`, each with its
own. Shaped like mitmproxy's built-in `proxyauth`, with three differences: the password is
compared in constant time, only a digest of `user:password` is kept (never the password), and
only the user name goes into the flow's record, so saved flows cannot hold the password.
"""

from __future__ import annotations

import logging
import weakref

from mitmproxy import connection, http

from proxy_addon.addons import fields
from proxy_addon.addons.replies import proxy_reply
from proxy_addon.policy.clients import ClientTable
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision, FlowRecord

logger = logging.getLogger(__name__)

REALM = "atlassian-auth-proxy"
PROXY_AUTHORIZATION = frozenset({b"proxy-authorization"})


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
        self.clients = ClientTable()
        self.authenticated: weakref.WeakKeyDictionary[connection.Client, str] = weakref.WeakKeyDictionary()

    @property
    def required(self) -> bool:
        return self.login is not None or bool(self.clients)

    def user_of(self, client: connection.Client) -> str | None:
        """Who the connection's CONNECT authenticated as, if it did."""
        return self.authenticated.get(client)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self.required and (user := self._authenticate(flow)):
            self.authenticated[flow.client_conn] = user

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if self.required:
            user = self.authenticated.get(flow.client_conn)
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
        user = self._check(flow.request.headers.pop("proxy-authorization", None))
        record = FlowRecord.of(flow.metadata)
        if user is None:
            record.decision = Decision.PROXY_AUTH
            flow.response = auth_required()
            peer = flow.client_conn.peername
            logger.warning("407: %s from %s without valid proxy credentials", flow.request.method, peer and peer[0])
            return None
        record.user = user
        return user
