"""Jira-project and Confluence-space boundaries of `[[clients]]`: the hook that applies `policy.boundaries`.

Only credentialed requests of a client with `jira_projects` or `confluence_spaces` are judged,
in the layout of the site they go to (`policy.layouts`); it runs after the injector (which
decided that credentials go) and after `Streaming`. The path and query are judged at the
request head; a route judged by its body (a POST search, a create) is buffered instead of
streamed, up to `MAX_BODY`, and judged in `request`, before anything of it goes upstream. An id
in a path or body is looked up once with the site's own credentials (in a thread, through
CONNECT_TO and the upstream CA bundle, like the proxy's other requests), and its key kept for
the run; a lookup that fails refuses, it never allows.

A refusal is the proxy's own reply; the injected credentials are dropped from the flow.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Mapping

from mitmproxy import http

from proxy_addon.addons.fail_closed import DROPPED_HEADERS
from proxy_addon.addons.replies import proxy_reply
from proxy_addon.credentials.identity import Reach, Unreachable, look_up
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.boundaries import (
    MAX_BODY,
    Allowed,
    Judgement,
    LookupFailed,
    NeedsBody,
    NeedsLookup,
    Ref,
    Refused,
    Rewritten,
    judge,
    key_of,
    lookup_path,
)
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import normalize_host
from proxy_addon.policy.layouts import Prefixes, layout_of
from proxy_addon.policy.record import Decision, FlowRecord

MAX_LOOKUPS = 50
"""Distinct ids one request may make the proxy look up."""
MAX_CACHED = 100_000
CACHE_SECONDS = 300.0
"""How long a looked-up id's key is trusted before it is looked up again."""


type Place = tuple[str, str, int]
"""Where an id was looked up: the site, and the host and port its request went to."""


class KeyCache:
    """The key each looked-up id belongs to (None: the site does not know it), per host, for a while.

    Keyed by the host the request went to and the gateway prefix, not only the site: under a
    wildcard one site spans many Cloud hosts, and id 20001 on one is another issue on the next.
    An entry lasts `ttl` seconds: an issue or page can move to another project or space, and
    its id must not keep the old answer for the whole run. Bounded: past `limit` entries the
    oldest go, so a client probing ids costs lookups, not memory.
    """

    def __init__(self, limit: int = MAX_CACHED, ttl: float = CACHE_SECONDS) -> None:
        self.limit, self.ttl = limit, ttl
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
        self.keys[slot] = key, time.monotonic() + self.ttl


def place_of(flow: http.HTTPFlow, site: str) -> Place:
    return site, flow.request.host, flow.request.port


class Boundaries:
    """Refuses what a bounded client's request would reach outside its projects or spaces; confines its searches."""

    def __init__(self, credentials: Mapping[str, Credentials]) -> None:
        self.clients = ClientTable()
        self.credentials = credentials
        self.reach = Reach()
        self.layouts: Mapping[str, Prefixes | None] = {}
        self.cache = KeyCache()
        self._awaiting_body: weakref.WeakSet[http.HTTPFlow] = weakref.WeakSet()

    def use(self, clients: ClientTable, reach: Reach, layouts: Mapping[str, Prefixes | None] | None = None) -> None:
        """The clients' bounds, how lookups reach the sites (as proxied requests do), each site's declared layout."""
        self.clients, self.reach, self.layouts = clients, reach, layouts or {}

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
        if flow not in self._awaiting_body:
            return None
        self._awaiting_body.discard(flow)
        bounded = self._bounded(flow)
        if bounded is None:
            return None
        client, site = bounded
        try:
            body = flow.request.get_content(strict=True) or b""
        except ValueError:
            refuse(flow, 400, Decision.BAD_QUERY, f"client {client.name}: the body's Content-Encoding is unknown")
            return None
        if len(body) > MAX_BODY:
            refuse(flow, 413, Decision.BODY_TOO_LARGE, too_large(client))
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
        while isinstance(judgement, NeedsLookup):
            missing = self.cache.missing(place_of(flow, site), judgement.refs)
            if len(missing) + len(known) > MAX_LOOKUPS:
                refuse(flow, 403, Decision.OUT_OF_BOUNDS, f"client {client.name}: too many ids to look up at once")
                return
            try:
                await asyncio.gather(*(self._look_up(flow, site, ref) for ref in missing))
            except LookupFailed as e:
                refuse(
                    flow,
                    502,
                    Decision.LOOKUP_FAILED,
                    f"client {client.name}: could not look up the project or space of an id in this request "
                    f"({e}), so it was not sent",
                )
                return
            known.update(self.cache.known(place_of(flow, site), judgement.refs) or {})
            judgement = self._judgement(flow, client, site, body, known)
        self._act(flow, client, judgement, body)

    async def _look_up(self, flow: http.HTTPFlow, site: str, ref: Ref) -> None:
        credentials = self.credentials[site]
        request = flow.request
        try:
            status, document = await asyncio.to_thread(
                look_up, request.host, request.port, lookup_path(ref), credentials, self.reach
            )
        except Unreachable as e:
            raise LookupFailed(str(e)) from None
        self.cache.put(place_of(flow, site), ref, key_of(ref, status, document))

    def _act(self, flow: http.HTTPFlow, client: Client, judgement: Judgement, body: bytes | None) -> None:
        if isinstance(judgement, Refused):
            refuse(flow, judgement.status, judgement.decision, judgement.reason)
        elif isinstance(judgement, Rewritten):
            if judgement.path is not None:
                flow.request.path = judgement.path
            if judgement.body is not None:
                flow.request.content = judgement.body
        elif isinstance(judgement, NeedsBody) and body is None:
            self._buffer(flow, client)
        elif not isinstance(judgement, Allowed):
            refuse(flow, 403, Decision.OUT_OF_BOUNDS, f"client {client.name}: this request could not be judged")

    def _buffer(self, flow: http.HTTPFlow, client: Client) -> None:
        """Keep the body back for the `request` hook: it has to be read before anything is sent."""
        headers = flow.request.headers
        length = headers.get("content-length", "")
        if "transfer-encoding" in headers or not length.isdigit() or int(length) > MAX_BODY:
            refuse(flow, 413, Decision.BODY_TOO_LARGE, too_large(client))
            return
        flow.request.stream = False
        self._awaiting_body.add(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._awaiting_body.discard(flow)


def too_large(client: Client) -> str:
    return (
        f"client {client.name}: this route is judged by its body, which must come with a Content-Length "
        f"of at most {MAX_BODY // 1024} KiB"
    )


def refuse(flow: http.HTTPFlow, status: int, decision: Decision, reason: str) -> None:
    """Answer locally; nothing of the request goes to the site, and the injected credentials leave the flow.

    `stream` is cleared: `Streaming` may have set it, and mitmproxy cannot answer a streaming request.
    """
    FlowRecord.of(flow.metadata).decision = decision
    for name in DROPPED_HEADERS:
        flow.request.headers.pop(name, None)
    flow.request.stream = False
    flow.response = proxy_reply(status, reason)
