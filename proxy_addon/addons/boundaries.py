"""Jira-project and Confluence-space boundaries of `[[clients]]`: the hook that applies `policy.boundaries`.

Only credentialed requests of a client with `jira_projects` or `confluence_spaces` are judged,
in the layout of the site they go to (`policy.layouts`); it runs after the injector (which
decided that credentials go) and after `Streaming`. The path and query are judged at the
request head; a route judged by its body (a POST search, a create) is buffered instead of
streamed, up to `MAX_BODY`, and judged in `request`, before anything of it goes upstream. An id
in a path or body is looked up with the site's own credentials through `credentials.outbound`
(token health applies: nothing is looked up during a pause) and its key kept for a while; a
lookup that fails refuses, it never allows. The lookups a request causes count against its
client's `requests_per_minute`, in the window `ClientRate` keeps (the store's, when one is
shared), and at most `LOOKUPS_AT_ONCE` of a client's run at a time. A lookup a rate-limit hold
covers is not sent: the request gets the hold's local 429.

A refusal is the proxy's own reply (`addons.replies.refuse`): the injected credentials leave the flow.
A request it lets go keeps its method and path on the record (`addons.moves`): the wire refuses it if
another addon changes them afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping

from mitmproxy import http

from proxy_addon.addons.moves import remember_route
from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.rate_limit_holds import refuse_held
from proxy_addon.addons.replies import refuse
from proxy_addon.credentials.http_client import Unreachable
from proxy_addon.credentials.outbound import HeldBack, Outbound, Withheld
from proxy_addon.policy.boundaries.body import MAX_BODY
from proxy_addon.policy.boundaries.judge import judge
from proxy_addon.policy.boundaries.judgements import Allowed, Judgement, NeedsBody, NeedsLookup, Refused, Rewritten
from proxy_addon.policy.boundaries.lookups import LookupFailed, Ref, key_of, lookup_path
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import normalize_host
from proxy_addon.policy.layouts import Prefixes, layout_of
from proxy_addon.policy.rate import ClientRates
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import REFUSAL_OF, Refusal
from proxy_addon.state.rates import SharedRates
from proxy_addon.state.store import Store

MAX_LOOKUPS = 50
"""Distinct ids one request may make the proxy look up."""
LOOKUPS_AT_ONCE = 4
"""Lookups of one client in flight at once; the rest wait."""
MAX_CACHED = 100_000
CACHE_SECONDS = 300.0
"""How long a looked-up id's key is trusted before it is looked up again."""
UNKNOWN_CACHE_SECONDS = 30.0
"""How long "the site does not know this id" (404) is trusted: a client probing fresh ids pays each time."""


type Place = tuple[str, str, int]
"""Where an id was looked up: the site, and the host and port its request went to."""


class KeyCache:
    """The key each looked-up id belongs to (None: the site does not know it), per host, for a while.

    Keyed by the host the request went to and the gateway prefix, not only the site: under a
    wildcard one site spans many Cloud hosts, and id 20001 on one is another issue on the next.
    An entry lasts `ttl` seconds (`unknown_ttl` for an id the site does not know): an issue or
    page can move to another project or space, or be created, and its id must not keep the old
    answer for the whole run. Bounded: past `limit` entries the oldest go, so a client probing
    ids costs lookups, not memory.
    """

    def __init__(
        self, limit: int = MAX_CACHED, ttl: float = CACHE_SECONDS, unknown_ttl: float = UNKNOWN_CACHE_SECONDS
    ) -> None:
        self.limit, self.ttl, self.unknown_ttl = limit, ttl, unknown_ttl
        self.keys: dict[tuple[Place, str, str, str], tuple[str | None, float]] = {}

    @staticmethod
    def _slot(place: Place, ref: Ref) -> tuple[Place, str, str, str]:
        return place, ref.prefix, ref.kind, ref.id

    def _fresh(self, slot: tuple[Place, str, str, str], now: float) -> bool:
        entry = self.keys.get(slot)
        return entry is not None and entry[1] > now

    def known(self, place: Place, refs: frozenset[Ref]) -> dict[Ref, str | None] | None:
        """The keys of all `refs`, or None when one of them was not looked up lately."""
        now = time.monotonic()
        slots = {ref: self._slot(place, ref) for ref in refs}
        if not all(self._fresh(slot, now) for slot in slots.values()):
            return None
        return {ref: self.keys[slot][0] for ref, slot in slots.items()}

    def missing(self, place: Place, refs: frozenset[Ref]) -> list[Ref]:
        now = time.monotonic()
        return [ref for ref in refs if not self._fresh(self._slot(place, ref), now)]

    def put(self, place: Place, ref: Ref, key: str | None) -> None:
        slot = self._slot(place, ref)
        self.keys.pop(slot, None)
        if len(self.keys) >= self.limit:
            self.keys.pop(next(iter(self.keys)))
        self.keys[slot] = key, time.monotonic() + (self.ttl if key is not None else self.unknown_ttl)


def place_of(flow: http.HTTPFlow, site: str) -> Place:
    return site, flow.request.host, flow.request.port


class Boundaries:
    """Refuses what a bounded client's request would reach outside its projects or spaces; confines its searches."""

    def __init__(self, outbound: Outbound, shared: SharedRates | None = None) -> None:
        self.clients = ClientTable()
        self.outbound = outbound
        self.rates = ClientRates()
        self.shared = SharedRates(Store()) if shared is None else shared
        self.layouts: Mapping[str, Prefixes | None] = {}
        self.cache = KeyCache()
        self._lookups: dict[str, asyncio.Semaphore] = {}

    def use(self, prepared: Prepared) -> None:
        """The clients' bounds, the `requests_per_minute` windows their lookups count in (`ClientRate`'s),
        and each site's declared layout."""
        self.clients, self.rates = prepared.clients, prepared.rates
        self.layouts = {site.name: site.layout for site in prepared.table.sites}
        self._lookups = {}

    def _bounded(self, flow: http.HTTPFlow) -> tuple[Client, str] | None:
        if flow.response is not None or not self.clients:
            return None
        record = FlowRecord.of(flow.metadata)
        client = self.clients.get(record.user)
        if record.decision is not Decision.INJECT or client is None or not client.bounded or record.site is None:
            return None
        return client, record.site

    def requestheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        bounded = self._bounded(flow)
        if bounded is None:
            return None
        client, site = bounded
        return self._judge(flow, client, site, None)

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        record = FlowRecord.of(flow.metadata)
        if not record.held:
            return None
        record.held = False  # judged now: nothing goes upstream before this hook has finished
        bounded = self._bounded(flow)
        if bounded is None:
            return None
        client, site = bounded
        try:
            body = flow.request.get_content(strict=True) or b""
        except ValueError:
            refuse(flow, Refusal.UNKNOWN_ENCODING, client=client.name)
            return None
        if len(body) > MAX_BODY:
            too_large(flow, client)
            return None
        return self._judge(flow, client, site, body)

    def _judge(self, flow: http.HTTPFlow, client: Client, site: str, body: bytes | None) -> Awaitable[None] | None:
        """Judge with what the cache knows; only a lookup the cache cannot answer makes this wait."""
        known: dict[Ref, str | None] = {}
        judgement = self._judgement(flow, client, site, body, known)
        while isinstance(judgement, NeedsLookup):
            cached = self.cache.known(place_of(flow, site), judgement.refs)
            if cached is None:
                return self._look_up_and_judge(flow, client, site, body, known, judgement)
            known.update(cached)
            judgement = self._judgement(flow, client, site, body, known)
        self._act(flow, client, judgement, body)
        return None

    def _judgement(
        self, flow: http.HTTPFlow, client: Client, site: str, body: bytes | None, known: dict[Ref, str | None]
    ) -> Judgement:
        """`judge` in the layout of where the request goes: the host decides (Cloud, the gateway), else the site."""
        layout = layout_of(normalize_host(flow.request.host), self.layouts.get(site))
        return judge(flow.request.method, flow.request.path, client, body, known, layout)

    async def _look_up_and_judge(
        self,
        flow: http.HTTPFlow,
        client: Client,
        site: str,
        body: bytes | None,
        known: dict[Ref, str | None],
        judgement: Judgement,
    ) -> None:
        place = place_of(flow, site)
        while isinstance(judgement, NeedsLookup):
            missing = self.cache.missing(place, judgement.refs)
            if len(missing) + len(known) > MAX_LOOKUPS:
                refuse(flow, Refusal.TOO_MANY_LOOKUPS, client=client.name)
                return
            if not await self._look_up_all(flow, client, site, missing):
                return
            known.update(self.cache.known(place, judgement.refs) or {})
            judgement = self._judgement(flow, client, site, body, known)
        self._act(flow, client, judgement, body)

    async def _look_up_all(self, flow: http.HTTPFlow, client: Client, site: str, refs: list[Ref]) -> bool:
        """Look `refs` up, or answer the flow locally and say False.

        Token health first (nothing is sent during a pause: the local 401 of a paused request),
        then the client's rate (each lookup counts; no room for all: the local 429, nothing
        sent), then at most `LOOKUPS_AT_ONCE` of the client's lookups at a time.
        """
        host = FlowRecord.of(flow.metadata).host or flow.request.host
        retry_after = await self.outbound.ready(site, host, flow.request.port)
        if retry_after is not None:
            refuse(flow, Refusal.BACKED_OFF, host=host, retry_after=retry_after)
            return False
        limit = client.requests_per_minute
        if limit is not None:
            retry_after = await self.shared.admit(self.rates, client.name, limit, len(refs))
            if retry_after is not None:
                refuse(flow, Refusal.RATE_LIMITED, client=client.name, limit=limit, retry_after=retry_after)
                return False
        slots = self._lookups.setdefault(client.name, asyncio.Semaphore(LOOKUPS_AT_ONCE))
        try:
            async with asyncio.TaskGroup() as group:
                for ref in refs:
                    group.create_task(self._look_up(flow, site, host, ref, slots))
        except* Withheld as paused:
            retry_after = max(e.retry_after for e in paused.exceptions if isinstance(e, Withheld))
            refuse(flow, Refusal.BACKED_OFF, host=host, retry_after=retry_after)
        except* HeldBack as held:
            if flow.response is None:
                first = next(e for e in held.exceptions if isinstance(e, HeldBack))
                refuse_held(flow, site, first.host, first.held)
        except* LookupFailed as failed:
            if flow.response is None:  # a pause that began meanwhile says more
                refuse(flow, Refusal.LOOKUP_FAILED, client=client.name, error=failed.exceptions[0])
        return flow.response is None

    async def _look_up(self, flow: http.HTTPFlow, site: str, host: str, ref: Ref, slots: asyncio.Semaphore) -> None:
        request = flow.request
        async with slots:
            try:
                status, document = await self.outbound.get(site, host, (request.host, request.port), lookup_path(ref))
            except Unreachable as e:
                raise LookupFailed(str(e)) from None
        self.cache.put(place_of(flow, site), ref, key_of(ref, status, document))

    def _act(self, flow: http.HTTPFlow, client: Client, judgement: Judgement, body: bytes | None) -> None:
        if isinstance(judgement, Refused):
            refuse(flow, REFUSAL_OF[judgement.decision], reason=judgement.reason)
        elif isinstance(judgement, Rewritten):
            if judgement.path is not None:
                flow.request.path = judgement.path
            if judgement.body is not None:
                flow.request.content = judgement.body
            remember_route(flow)
        elif isinstance(judgement, Allowed):
            remember_route(flow)
        elif isinstance(judgement, NeedsBody) and body is None:
            self._buffer(flow, client)
        else:
            refuse(flow, Refusal.UNJUDGED, client=client.name)

    def _buffer(self, flow: http.HTTPFlow, client: Client) -> None:
        """Keep the body back for the `request` hook: it has to be read before anything is sent.

        `held` tells the wire the same: mitmproxy may still decide to stream the body (options,
        another addon), and a held request that starts streaming is refused, never sent.
        """
        headers = flow.request.headers
        length = headers.get("content-length", "")
        if "transfer-encoding" in headers or not length.isdigit() or int(length) > MAX_BODY:
            too_large(flow, client)
            return
        flow.request.stream = False
        FlowRecord.of(flow.metadata).held = True


def too_large(flow: http.HTTPFlow, client: Client) -> None:
    refuse(flow, Refusal.BODY_TOO_LARGE, client=client.name, limit_kib=MAX_BODY // 1024)
