"""Credential injection: gather the facts of where a request really goes, ask the verdict, act on it.

The decision itself is `policy.verdict.decide`; this hook only reads mitmproxy's view of the
connection, writes what was decided into the flow's record, and swaps the credentials.
"""

from __future__ import annotations

import logging
import time

from mitmproxy import http, tls
from mitmproxy.proxy.mode_specs import ReverseMode

from proxy_addon.addons.replies import backed_off_reply, proxy_reply
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.hosts import is_loopback
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.scoped import GATEWAY, Gateway
from proxy_addon.policy.sites import Site, SiteTable
from proxy_addon.policy.token_health import API_TOKENS_PAGE, Change, TokenHealth, rejection_reason
from proxy_addon.policy.verdict import Policy, RequestFacts, decide, refusal, should_intercept

logger = logging.getLogger(__name__)

REDACTED = "[redacted by atlassian-auth-proxy]"
CLIENT_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


def facts_of(flow: http.HTTPFlow) -> RequestFacts:
    """The verdict's view of a request. In reverse mode the configured target stands in for the
    SNI: the client speaks plain HTTP on loopback and the destination is fixed by configuration.
    An `https://` request sent in plain text without CONNECT (a plain hop) has no client SNI
    either: mitmproxy opens TLS to the URL's host with that host as SNI and verifies it, so the
    URL's host stands in for it."""
    request = flow.request
    headers = request.headers
    names = headers.get_all("host")
    if request.authority:
        names.append(request.authority)
    reverse = isinstance(flow.client_conn.proxy_mode, ReverseMode)
    plain_hop = not reverse and not flow.client_conn.tls and request.scheme == "https"
    peer = flow.client_conn.peername
    return RequestFacts(
        scheme=request.scheme,
        method=request.method,
        path=request.path,
        host=request.host,
        port=request.port,
        sni=request.host if reverse or plain_hop else flow.client_conn.sni,
        names=tuple(names),
        origin=headers.get("origin"),
        fetch_site=headers.get("sec-fetch-site"),
        plain_hop=plain_hop,
        client_loopback=is_loopback(peer[0] if peer else None),
    )


class CredentialInjector:
    """Replaces the client's credentials with the site's identity on requests the verdict allows.

    It also records each site's verdict on its token (`TokenHealth`): after a rejection,
    requests to that (site, host) are answered locally until a probe succeeds or the token
    changes.
    """

    def __init__(self) -> None:
        self.policy = Policy(SiteTable.of(()), Gateway())
        self.credentials: dict[str, Credentials] = {}
        self.health = TokenHealth()

    def use(self, site: Site, credentials: Credentials) -> None:
        """A new token for `site`: forget what its hosts said about the previous one."""
        self.credentials[site.name] = credentials
        self.health.token_changed(site.name)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        address = data.context.server.address
        host, port = address[:2] if address else (None, None)
        if not should_intercept(self.policy, host, port, data.client_hello.sni):
            data.ignore_connection = True
            logger.info("tunnel %s:%s (not a credential host; passed through encrypted)", host, port)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        facts = facts_of(flow)
        verdict = decide(facts, self.policy, self.health, time.monotonic())
        record = FlowRecord.of(flow.metadata)
        record.decision = verdict.decision
        if verdict.site is not None:
            record.site = verdict.site.name
        if verdict.decision is Decision.INJECT and verdict.site is not None and verdict.host is not None:
            self._inject(flow.request, record, verdict.gateway_path, self.credentials[verdict.site.name])
            record.host = verdict.host
        elif verdict.decision is Decision.BACKED_OFF:
            flow.response = backed_off_reply(facts.host, verdict.retry_after)
        elif (refused := refusal(verdict, facts)) is not None:
            flow.response = proxy_reply(*refused)

    def _inject(self, request: http.Request, record: FlowRecord, path: str | None, credentials: Credentials) -> None:
        if path is not None:
            request.host, request.port, request.path = GATEWAY, 443, path
            request.host_header = GATEWAY
        for name in CLIENT_CREDENTIAL_HEADERS:
            request.headers.pop(name, None)
        request.headers["authorization"] = credentials.authorization.get_secret_value()
        record.stamp = self.health.stamp()

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        record = FlowRecord.of(flow.metadata)
        if record.decision is not Decision.INJECT or flow.response is None:
            return
        self._redact(flow)
        flow.response.headers.pop("set-cookie", None)
        self._judge(record, rejection_reason(flow.response.status_code, flow.response.headers))

    def error(self, flow: http.HTTPFlow) -> None:
        record = FlowRecord.of(flow.metadata)
        if record.decision is not Decision.INJECT:
            return
        self._redact(flow)
        if record.site is not None and record.host is not None and record.stamp is not None:
            self.health.unanswered(record.site, record.host, record.stamp)

    def _judge(self, record: FlowRecord, rejection: str | None) -> None:
        """Record the site's verdict on the token; log once per change of state."""
        site, host, stamp = record.site, record.host, record.stamp
        if site is None or host is None or stamp is None:
            return
        change = self.health.judge(site, host, stamp, rejection, time.monotonic())
        if change is Change.REJECTED:
            logger.warning(
                "%s rejected the API token of site %s (%s): it may be revoked or expired. Create a new one at %s "
                "and store it (atlassian-auth-proxy login, or the token file); until then requests to %s are "
                "answered locally with 401 for %.0f s, then one request tests the token again.",
                host,
                site,
                rejection,
                API_TOKENS_PAGE,
                host,
                self.health.pause(site, host),
            )
        elif change is Change.ACCEPTED:
            logger.info("%s accepts the API token again; requests pass as usual", host)

    @staticmethod
    def _redact(flow: http.HTTPFlow) -> None:
        """The header is on the wire by now; keep it out of dumps, saved flows and later hooks."""
        if "authorization" in flow.request.headers:
            flow.request.headers["authorization"] = REDACTED
