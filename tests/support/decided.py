"""The hooks that decide a credentialed request, configured as the root configures them, for hook tests."""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.test import tflow, tutils
from pydantic import SecretStr

from proxy_addon.addons.boundaries import Boundaries
from proxy_addon.addons.injector import CredentialInjector, WireSource
from proxy_addon.addons.wire import Wire
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import FlowRecord
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import TokenHealth

from support.prepared import prepared

ACME = "acme.atlassian.net"
SITE = Site("default", (HostPattern.parse("*.atlassian.net"),), "me@example.test")
CREDENTIALS = Credentials.of(SITE.user, SecretStr("tok3n-for-hook-tests"), "test")
OPS_AGENT = Client("ops-agent", ProxyLogin.of("ops-agent", "Pr0xy-pa55word-9f3e"), jira_projects=frozenset({"OPS"}))


class Decided:
    """The injector, a boundary, the wire and its credential source, configured as the root does."""

    def __init__(self) -> None:
        health = TokenHealth()
        credentials = CredentialRegistry(health)
        credentials.adopt(SITE, CREDENTIALS)
        outbound = Outbound(health, credentials)
        configured = prepared([SITE], clients=ClientTable.of([OPS_AGENT]))
        outbound.use(configured.policy, configured.reach, outbound.timeout)
        self.injector = CredentialInjector(health, outbound)
        self.injector.use(configured)
        self.boundaries = Boundaries(outbound)
        self.boundaries.use(configured)
        self.source = WireSource(health, credentials)
        self.wire = Wire(self.source)

    def decide(
        self, path: str = "/rest/api/3/myself", user: str | None = None, method: bytes = b"GET"
    ) -> http.HTTPFlow:
        """A request of `user` to acme.atlassian.net, with the client's own Authorization, as the injector and the
        boundary leave it."""
        request = tutils.treq(method=method, host=ACME, port=443, scheme=b"https", authority=b"", path=path.encode())
        request.headers.clear()
        request.headers["host"] = ACME
        request.headers["authorization"] = "Basic Y2xpZW50OmNsaWVudA=="
        f = tflow.tflow(req=request)
        f.client_conn.sni = ACME
        FlowRecord.of(f.metadata).user = user
        self.injector.requestheaders(f)
        self.boundaries.requestheaders(f)
        return f
