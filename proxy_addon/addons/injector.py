"""Credential injection: gather the facts of where a request really goes, ask the verdict, act on it.

The decision itself is `policy.verdict.decide`; this hook only reads mitmproxy's view of the
connection, writes what was decided into the flow's record, and swaps the credentials.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from mitmproxy import http, tls
from mitmproxy.proxy.mode_specs import ReverseMode

from proxy_addon.addons import fields
from proxy_addon.addons.replies import backed_off_reply, proxy_reply
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import is_loopback_address
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.scoped import GATEWAY
from proxy_addon.policy.sites import Site
from proxy_addon.policy.unauthorized import AnswerKind, OncePer, classify, renamed_to
from proxy_addon.policy.verdict import (
    METHOD_OVERRIDES,
    Policy,
    RequestFacts,
    Verdict,
    decide,
    refusal,
    should_intercept,
)

logger = logging.getLogger(__name__)

REDACTED = "[redacted by atlassian-auth-proxy]"
CLIENT_CREDENTIAL_FIELDS = frozenset({b"authorization", b"cookie", b"proxy-authorization"})
VERDICT_FIELDS = frozenset({b"x-failure-category", b"x-seraph-loginreason", b"location"})
"""The response fields the token verdict and the rename check read, gathered in one pass."""
SET_COOKIE = frozenset({b"set-cookie"})


def facts_of(flow: http.HTTPFlow, client: Client | None = None) -> RequestFacts:
    """The verdict's view of a request, from one pass over the raw header fields.

    In reverse mode the configured target stands in for the SNI: the client speaks plain HTTP
    on loopback and the destination is fixed by configuration. An `https://` request sent in
    plain text without CONNECT (a plain hop) has no client SNI either: mitmproxy opens TLS to
    the URL's host with that host as SNI and verifies it, so the URL's host stands in for it.
    `client` is the `[[clients]]` client the request logged in as.
    """
    request = flow.request
    names: list[str] = []
    origin = fetch_site = override = None
    for name, value in request.headers.fields:
        field = name.lower()
        if field == b"host":
            names.append(value.decode("latin-1"))
        elif field == b"origin":
            origin = value.decode("latin-1")
        elif field == b"sec-fetch-site":
            fetch_site = value.decode("latin-1")
        elif field in METHOD_OVERRIDES:
            override = name.decode("latin-1")
    if request.authority:
        names.append(request.authority)
    reverse = isinstance(flow.client_conn.proxy_mode, ReverseMode)
    conn = flow.client_conn
    plain_hop = not reverse and not conn.tls and conn.sni is None and request.scheme == "https"
    peer = conn.peername
    return RequestFacts(
        scheme=request.scheme,
        method=request.method,
        path=request.path,
        host=request.host,
        port=request.port,
        sni=request.host if reverse or plain_hop else flow.client_conn.sni,
        names=tuple(names),
        origin=origin,
        fetch_site=fetch_site,
        plain_hop=plain_hop,
        client_loopback=plain_hop and is_loopback_address(peer[0] if peer else None),
        client=client,
        method_override=override,
    )


class CredentialInjector:
    """Replaces the client's credentials with the site's identity on requests the verdict allows.

    It also reads each site's answers for its verdict on the token (`Outbound.answered`): after
    a rejection, requests to that (site, host) are answered locally until the proxy's own check
    succeeds or the token changes. Only a definitive rejection pauses: a scope miss never does,
    and any other 401 is first confirmed by the site's identity page (see `policy.unauthorized`).
    """

    def __init__(self) -> None:
        self.outbound = Outbound()
        """Token health and the proxy's own credentialed requests (the confirmations, the check after a pause)."""
        self.health = self.outbound.health
        self.credentials = self.outbound.credentials
        self.clients = ClientTable()
        """The `[[clients]]`: the record's user names the client whose bounds a request must keep."""
        self._logged = OncePer()

    @property
    def policy(self) -> Policy:
        return self.outbound.policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self.outbound.policy = policy

    def use(self, site: Site, credentials: Credentials) -> None:
        """A new token for `site`: forget what its hosts said about the previous one."""
        self.outbound.use(site, credentials)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        address = data.context.server.address
        host, port = address[:2] if address else (None, None)
        if not should_intercept(self.policy, host, port, data.client_hello.sni):
            data.ignore_connection = True
            logger.info("tunnel %s:%s (not a credential host; passed through encrypted)", host, port)

    def requestheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        if flow.response is not None:
            return None
        facts = facts_of(flow, self.clients.get(FlowRecord.of(flow.metadata).user))
        verdict = decide(facts, self.policy, self.health, time.monotonic())
        if verdict.check_due:
            return self._after_check(flow, facts, verdict)
        self._act(flow, facts, verdict)
        return None

    async def _after_check(self, flow: http.HTTPFlow, facts: RequestFacts, verdict: Verdict) -> None:
        """The pause is over: wait for the proxy's own check of the token, then decide again.

        Still undecided by the upstream timeout: the local 401, with Retry-After 1.
        """
        if verdict.site is not None and verdict.host is not None:
            await self.outbound.ready(verdict.site.name, verdict.host, facts.port)
        verdict = decide(facts, self.policy, self.health, time.monotonic())
        self._act(flow, facts, verdict)

    def _act(self, flow: http.HTTPFlow, facts: RequestFacts, verdict: Verdict) -> None:
        record = FlowRecord.of(flow.metadata)
        record.decision = verdict.decision
        if verdict.site is not None:
            record.site = verdict.site.name
        if verdict.decision is Decision.INJECT and verdict.site is not None and verdict.host is not None:
            self._inject(flow.request, verdict.gateway_path)
            record.host = verdict.host
        elif verdict.decision is Decision.BACKED_OFF:
            flow.response = backed_off_reply(facts.host, verdict.retry_after)
        elif (refused := refusal(verdict, facts)) is not None:
            flow.response = proxy_reply(*refused)

    @staticmethod
    def _inject(request: http.Request, path: str | None) -> None:
        """The flow gets a placeholder; the real value goes only into what is sent (`wire_credential`)."""
        if path is not None:
            request.host, request.port, request.path = GATEWAY, 443, path
            request.host_header = GATEWAY
        fields.replace(request.headers, CLIENT_CREDENTIAL_FIELDS, b"authorization", REDACTED.encode())

    def wire_credential(self, flow: http.HTTPFlow) -> str | None:
        """The real Authorization value, for the copy of the request the wire gets (see addons/wire.py).

        Asked once, when the head goes to the server; that is also when the token counts as sent.
        """
        record = FlowRecord.of(flow.metadata)
        if record.decision is not Decision.INJECT or record.site is None or flow.response is not None:
            return None
        record.stamp = self.health.stamp()
        return self.credentials[record.site].authorization.get_secret_value()

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        record = FlowRecord.of(flow.metadata)
        if record.decision is not Decision.INJECT or flow.response is None:
            return
        response = flow.response
        fields.drop(response.headers, SET_COOKIE)
        site, host, stamp = record.site, record.host, record.stamp
        if site is None or host is None:
            return
        status, seen = response.status_code, fields.values(response.headers, VERDICT_FIELDS)
        self._note_rename(site, host, status, seen.get("location"))
        if stamp is None:  # the credential never went out: the answer says nothing of it
            kind = classify(status, seen, False)
        else:
            sent_to = GATEWAY if flow.request.host == GATEWAY else host
            request = (flow.request.method, sent_to, flow.request.port, flow.request.path)
            kind = self.outbound.answered(site, host, stamp, status, seen, request)
        if kind is AnswerKind.SCOPE_MISS:
            self._note_scope_miss(site, flow)
        elif kind is not None:
            record.auth_failed = True

    def _note_scope_miss(self, site: str, flow: http.HTTPFlow) -> None:
        route = _route(flow.request.path)
        if self._logged.first("scope", site, route):
            logger.warning(
                "%s: the API token of site %s lacks the scope for %s %s (401 %s); the answer goes to the client "
                "and the token stays in use. Scoped tokens get scopes per route: give the token the scope this "
                "route needs.",
                flow.request.host,
                site,
                flow.request.method,
                route,
                "FAILURE_CLIENT_SCOPE_CHECK",
            )

    def _note_rename(self, site: str, host: str, status: int, location: str | None) -> None:
        """A credential host redirecting to another atlassian.net name: the site was probably renamed."""
        target = renamed_to(status, location, host)
        if target is None or not self._logged.first("rename", host, target):
            return
        where = "HOSTS" if site == "default" else f"the hosts of site {site} in [[sites]]"
        new_site = self.policy.sites.lookup(target, 443)
        gets = (
            f"{target} already gets the credentials of site {new_site.name}"
            if new_site is not None
            else f"{target} gets no credentials until then"
        )
        logger.warning(
            "%s redirects to %s (HTTP %d): the site was probably renamed. Change %s from %s to %s; %s. "
            "The redirect is passed to the client unchanged.",
            host,
            target,
            status,
            where,
            host,
            target,
            gets,
        )

    def done(self) -> None:
        self.outbound.done()


def _route(path: str) -> str:
    """The path without its query: queries carry JQL and other data that stays out of the log."""
    return path.partition("?")[0]
