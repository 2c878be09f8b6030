"""Credential injection: gather the facts of where a request really goes, ask the verdict, act on it.

The decision itself is `policy.verdict.decide`; this hook only reads mitmproxy's view of the
connection, writes what was decided into the flow's record, and swaps the credentials.
"""

from __future__ import annotations

import asyncio
import logging
import time

from mitmproxy import connection, http, tls
from mitmproxy.proxy.mode_specs import ReverseMode

from proxy_addon.addons import fields
from proxy_addon.addons.replies import backed_off_reply, proxy_reply
from proxy_addon.credentials.identity import Reach, Unreachable, confirm_rejection
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import is_loopback
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.scoped import GATEWAY, Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.token_health import API_TOKENS_PAGE, Change, Holder, TokenHealth, rejection_reason
from proxy_addon.policy.unauthorized import (
    Confirmations,
    IdentityPage,
    Kind,
    OncePer,
    classify,
    identity_page,
    renamed_to,
)
from proxy_addon.policy.verdict import METHOD_OVERRIDES, Policy, RequestFacts, decide, refusal, should_intercept

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
        client_loopback=plain_hop and is_loopback(peer[0] if peer else None),
        client=client,
        method_override=override,
    )


class CredentialInjector:
    """Replaces the client's credentials with the site's identity on requests the verdict allows.

    It also records each site's verdict on its token (`TokenHealth`): after a rejection,
    requests to that (site, host) are answered locally until a probe succeeds or the token
    changes. Only a definitive rejection pauses: a scope miss never does, and any other 401
    is first confirmed by the site's identity page (see `policy.unauthorized`).
    """

    def __init__(self) -> None:
        self.policy = Policy(SiteTable.of(()), Gateway())
        self.clients = ClientTable()
        """The `[[clients]]`: the record's user names the client whose bounds a request must keep."""
        self.credentials: dict[str, Credentials] = {}
        self.sites: dict[str, Site] = {}
        self.health = TokenHealth()
        self.confirmations = Confirmations()
        self.reach = Reach()
        """How the proxy's own confirmation requests reach a site: the way proxied ones go."""
        self._logged = OncePer()
        self._tasks: set[asyncio.Task[None]] = set()
        self._confirming: set[Holder] = set()
        """Probes whose 401 is being confirmed: their slot is freed by the confirmation's verdict."""

    def use(self, site: Site, credentials: Credentials) -> None:
        """A new token for `site`: forget what its hosts said about the previous one."""
        self.credentials[site.name] = credentials
        self.sites[site.name] = site
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
        record = FlowRecord.of(flow.metadata)
        facts = facts_of(flow, self.clients.get(record.user))
        verdict = decide(facts, self.policy, self.health, time.monotonic(), (flow.client_conn.id, flow.id))
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
        if record.site is None or record.host is None:
            return
        status, seen = response.status_code, fields.values(response.headers, VERDICT_FIELDS)
        self._note_rename(record.site, record.host, status, seen.get("location"))
        kind = classify(status, seen, False)
        if kind is Kind.SCOPE_MISS:
            self._note_scope_miss(record.site, flow)
            self._judge(record, None)
            return
        if kind is not None:
            record.auth_failed = True
        if kind is not Kind.AMBIGUOUS:
            self._judge(record, rejection_reason(status, seen) if kind else None)
            return
        # Only an ambiguous 401 needs the identity page; every other answer is judged above.
        sent_to = GATEWAY if flow.request.host == GATEWAY else record.host
        page = self._identity_page(record.site, sent_to, flow.request.port)
        route = _route(flow.request.path)
        if page is None:
            self._judge(record, f"HTTP 401, and site {record.site} has no identity page of its own to confirm it")
        elif flow.request.method == "GET" and (sent_to, route) == (page.host, page.path):
            self._judge(record, "HTTP 401")  # the identity page itself answers every valid token
        else:
            self._confirm(flow, record, page, f"{flow.request.method} {route}")

    def response(self, flow: http.HTTPFlow) -> None:
        self._ended(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._ended(flow)

    def _ended(self, flow: http.HTTPFlow) -> None:
        """A flow's end frees a probe slot it held, unless the confirmation of its 401 still decides."""
        if (holder := (flow.client_conn.id, flow.id)) not in self._confirming:
            self.health.ended(*holder)

    def client_disconnected(self, client: connection.Client) -> None:
        """Also the end of every flow mitmproxy's HTTP layer lost track of (it raised): none keeps a probe slot."""
        self.health.ended(client.id)

    def _identity_page(self, site: str, sent_to: str, port: int) -> IdentityPage | None:
        """The identity page for credentials sent to `sent_to`, if it is the site's own.

        The confirmation carries the token, so it goes only where the token already may go: a
        host of the same site, or the gateway under the site's own cloudId. (Bitbucket's git
        host, for one, has its identity page on api.bitbucket.org, which may be another site's.)
        """
        entry = self.sites[site]
        cloud_id = self.policy.gateway.cloud_id(entry)
        page = identity_page(sent_to, port, entry.scheme is Scheme.BEARER, cloud_id)
        own = self.policy.sites.lookup(page.host, page.port)
        if (page.host == GATEWAY and cloud_id is not None) or (own is not None and own.name == site):
            return page
        return None

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

    def _confirm(self, flow: http.HTTPFlow, record: FlowRecord, page: IdentityPage, request: str) -> None:
        """An ambiguous 401: ask the identity page in the background, one confirmation per (site, host)."""
        site, host, stamp = record.site, record.host, record.stamp
        if site is None or host is None or stamp is None:
            return
        if not self.confirmations.start(site, host):
            # The running confirmation answers for this 401 too; if this request was a probe
            # after a pause, free its slot so the probe is not held by an older question.
            self.health.ended(flow.client_conn.id, flow.id)
            return
        holder = (flow.client_conn.id, flow.id)
        self._confirming.add(holder)
        task = asyncio.get_running_loop().create_task(
            self._confirmation(site, host, stamp, page, self.credentials[site], request, holder)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirmation(
        self,
        site: str,
        host: str,
        stamp: int,
        page: IdentityPage,
        credentials: Credentials,
        request: str,
        holder: Holder,
    ) -> None:
        try:
            rejection = await asyncio.to_thread(confirm_rejection, page, credentials, self.reach)
        except Unreachable as e:
            # Unconfirmed, the 401 counts as a rejection: pausing a good token costs a pause, sending a
            # bad one again and again can lock the account.
            rejection = f"HTTP 401, unconfirmed: {e}"
        finally:
            self.confirmations.finish(site, host)
            self._confirming.discard(holder)
        if rejection is None and self._logged.first("denied", site, request):
            logger.warning(
                "%s answered 401 to %s, but %s%s accepts the API token of site %s: the account lacks a permission "
                "that request needs; the answer goes to the client and the token stays in use.",
                host,
                request,
                page.host,
                page.path,
                site,
            )
        self._record_verdict(site, host, stamp, rejection)
        self.health.ended(*holder)

    def _judge(self, record: FlowRecord, rejection: str | None) -> None:
        site, host, stamp = record.site, record.host, record.stamp
        if site is not None and host is not None and stamp is not None:
            self._record_verdict(site, host, stamp, rejection)

    def _record_verdict(self, site: str, host: str, stamp: int, rejection: str | None) -> None:
        """Record the site's verdict on the token; log once per change of state."""
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

    def done(self) -> None:
        for task in self._tasks:
            task.cancel()


def _route(path: str) -> str:
    """The path without its query: queries carry JQL and other data that stays out of the log."""
    return path.partition("?")[0]
