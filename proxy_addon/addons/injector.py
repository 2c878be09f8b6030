"""Credential injection: gather the facts of where a request really goes, ask the verdict, act on it.

The decision itself is `policy.verdict.decide`; this module only reads mitmproxy's view of the
connection and request (the TLS ClientHello, the request head), writes what was decided into
the flow's record, and puts the credential in place: a placeholder in the flow, the real value
only in the copy the wire sends (`WireSource`). What the site's answer says of the token is
`addons.token_verdicts`.

A client-credentials site's request waits for a fresh access token first when its token is due
(`credentials.minted`; the first such request starts the one mint of its site, the others wait
for it); without one it is answered locally with 502.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from mitmproxy import http, tls
from mitmproxy.proxy.mode_specs import ReverseMode

from proxy_addon.addons import fields
from proxy_addon.addons.moves import moved, remember_destination
from proxy_addon.addons.prepared import Prepared, no_sites
from proxy_addon.addons.replies import refuse
from proxy_addon.credentials.minted import REJECTED_RETRY_SECONDS, TOKEN_HOST, MintFailed, MintRejected
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import is_loopback_address
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import Refusal
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.policy.verdict import (
    METHOD_OVERRIDES,
    Moved,
    RequestFacts,
    Verdict,
    decide,
    refusal,
    should_intercept,
)

logger = logging.getLogger(__name__)

REDACTED = "[redacted by atlassian-auth-proxy]"


def facts_of(flow: http.HTTPFlow, client: Client | None = None) -> RequestFacts:
    """The verdict's view of a request, from one pass over the raw header fields.

    In reverse mode the configured target stands in for the SNI: the client speaks plain HTTP
    on loopback and the destination is fixed by configuration. An `https://` request sent in
    plain text without CONNECT (a plain hop) has no client SNI either: mitmproxy opens TLS to
    the URL's host with that host as SNI and verifies it, so the URL's host stands in for it.
    `client` is the `[[clients]]` client the request logged in as. The method is taken as sent:
    mitmproxy's `Request.method` upper-cases it, but the site receives the bytes the client sent,
    and methods are case-sensitive (`get` is not `GET`).
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
        method=request.data.method.decode("utf-8", "surrogateescape"),
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

    After a rejection, requests to the site's hosts (or to the one host its home contradicts) are
    answered locally until the proxy's own check succeeds or the token changes: `decide` reads
    token health, and a request that finds the pause over waits for the check (`Outbound.ready`).
    """

    def __init__(self, health: TokenHealth, outbound: Outbound) -> None:
        self.health = health
        self.outbound = outbound
        self.policy = no_sites()
        self.clients = ClientTable()
        """The `[[clients]]`: the record's user names the client whose bounds a request must keep."""

    def use(self, prepared: Prepared) -> None:
        self.policy, self.clients = prepared.policy, prepared.clients

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
        now = time.monotonic()
        verdict = decide(facts, self.policy, self.health, now)
        if verdict.check_due:
            return self._after_check(flow, facts, verdict)
        site = verdict.site
        if verdict.decision is Decision.INJECT and site is not None and self.outbound.mints.due(site.name, now):
            return self._after_mint(flow, facts, verdict, site.name)
        self._act(flow, facts, verdict)
        return None

    async def _after_mint(self, flow: http.HTTPFlow, facts: RequestFacts, verdict: Verdict, site: str) -> None:
        """A client-credentials site's token is due: wait for the mint, or answer 502 without one."""
        try:
            await self.outbound.mints.fresh(site)
        except MintRejected as e:
            refuse(
                flow,
                Refusal.CLIENT_CREDENTIALS_REJECTED,
                site=site,
                token_host=TOKEN_HOST,
                why=e.why,
                retry_every=REJECTED_RETRY_SECONDS,
            )
            return
        except MintFailed as e:
            refuse(flow, Refusal.MINT_FAILED, site=site, token_host=TOKEN_HOST, why=e.why, retry_after=e.retry_after)
            return
        self._act(flow, facts, verdict)

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
            self._inject(flow.request, verdict.moved_to)
            record.host = verdict.host
            remember_destination(flow)
        elif (refused := refusal(verdict, facts)) is not None:
            which, named = refused
            refuse(flow, which, **named)

    @staticmethod
    def _inject(request: http.Request, moved_to: Moved | None) -> None:
        """The flow gets a placeholder; the real value goes only into what is sent (`WireSource`). A request the
        verdict moves (to the gateway, or a classic site's gateway form to the site) goes there."""
        if moved_to is not None:
            request.host, request.port, request.path = moved_to.host, 443, moved_to.path
            request.host_header = moved_to.host
        fields.replace(request.headers, fields.CREDENTIALS, b"authorization", REDACTED.encode())


class WireSource:
    """The real Authorization value of an injected request, for the copy the wire sends (addons/wire.py).

    Asked once, when the head goes to the server; that is also when the token counts as sent
    (the record's `stamp`, which the token verdict on the answer reads). A request that no longer
    goes where its verdict sent it (`moves`) gets none.
    """

    def __init__(self, health: TokenHealth, credentials: CredentialRegistry) -> None:
        self.health = health
        self.credentials = credentials

    def __call__(self, flow: http.HTTPFlow) -> str | None:
        record = FlowRecord.of(flow.metadata)
        if record.decision is not Decision.INJECT or record.site is None or flow.response is not None:
            return None
        if moved(flow) is not None:
            return None
        record.stamp = self.health.stamp()
        return self.credentials[record.site].authorization.get_secret_value()
