"""The proxy's own credentialed requests: one path, under the same token health as the clients'.

The proxy sends a credential on its own for three things: the boundaries' lookups of which
project or space an id belongs to, the confirmation of a 401 (or a failed login) against the
site's identity page, and the check of the token after a pause. Each goes through `Outbound`, which
- asks token health first: during a pause nothing is sent (`Withheld`: the caller answers its
  client with the local 401 a paused request gets), and once a pause is over the one check runs
  first (`ready`);
- sends off the event loop, through `Reach` (CONNECT_TO, the upstream CA bundle, UPSTREAM_PROXY);
- acts on what each answer says of the token (`act`, on `policy.token_verdict`'s reading): a
  rejection pauses the site; a 401 to confirm is confirmed against the identity page of the
  site's home (or, without one, of the host that answered), by one confirmation per site at a
  time that answers for every 401 waiting for it.

The token verdicts on clients' answers (`addons.token_verdicts`) go through `act` too, so the
rules and the lines that say a token was rejected or accepted again exist once.

A client-credentials site's access tokens are minted here too (`mints`, `credentials.minted`):
the mint is one of the proxy's own requests, and a lookup for such a site waits for a fresh
token like a client's request does. Such a site is never paused nor confirmed: a 401 from the
gateway to its token starts a new mint instead (`act`), and a GET or HEAD that got it is sent
again with the new token (`replay`).

The proxy's own requests obey rate-limit holds as clients' do (`state.holds`): a held lookup is
not sent (`HeldBack`: the caller answers its client with the local 429), a held identity page is
not asked (the check after a pause waits, a 401 stays unconfirmed and pauses nothing), and a 429
to any of them starts a hold like a client's 429. With a state store, the check and the
confirmation run in one process at a time for all of them (`Store.once`), and each change of a
pause is told to the others (`state.pauses`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple

from proxy_addon.credentials.http_client import Exchanged, Reach, Unreachable, exchange, fetch, json_object
from proxy_addon.credentials.minted import Mints
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.policy.holds import Held
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import SiteTable
from proxy_addon.policy.token_health import API_TOKENS_PAGE, RECHECK_SECONDS, Change, Scope, TokenHealth
from proxy_addon.policy.token_verdict import Reading, Sent, TokenVerdict, read_answer, token_page
from proxy_addon.policy.unauthorized import IdentityPage, OncePer, PageAnswer, confirmed, read_identity_page
from proxy_addon.policy.verdict import Policy
from proxy_addon.settings.model import Settings
from proxy_addon.state.holds import SharedHolds
from proxy_addon.state.pauses import SharedPauses
from proxy_addon.state.store import Store, Verdict

logger = logging.getLogger(__name__)

type Flight = tuple[str, str, str]
"""One running check or confirmation: (what, site, host; "" for the whole site)."""
WHOLE_SITE = ""
REPLAY_LIMIT = 16 << 20
"""The largest answer a replayed request may get; a larger one is not delivered (the gateway's 401 is)."""
WAITING_CONFIRMATIONS = 256
"""Hosts whose 401 waits for a site's running confirmation; past this a 401 waits for none: the running
confirmation already decides the token, and that host's next 401 is confirmed in turn."""


class Withheld(Exception):
    """The token may not go to that host now: its site rejected it and the pause lasts."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the token is paused for {retry_after} s")
        self.retry_after = retry_after


class HeldBack(Exception):
    """The site answered 429 for a scope this request of the proxy's own is in: it is not sent."""

    def __init__(self, host: str, held: Held) -> None:
        super().__init__(f"{host} holds {held.place.label} for {held.retry_after} s")
        self.host = host
        self.held = held


LIMITED = "limited"
"""A verdict's mark: the identity page was held or answered 429, so it said nothing of the token."""


def flight_name(*parts: str) -> str:
    """A check's or confirmation's name in the store: a digest, so nothing of a page or host is kept there."""
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


class Waiting(NamedTuple):
    """A 401 (or failed login) waiting for its site's confirmation."""

    stamp: int
    request: str
    """`METHOD /route` of the request that got it, for the log."""
    reason: str
    page: IdentityPage
    own: bool


class Outbound:
    """Every request the proxy itself sends with a site's credentials, and what answers do to token health."""

    def __init__(
        self,
        health: TokenHealth,
        credentials: CredentialRegistry,
        holds: SharedHolds | None = None,
        store: Store | None = None,
    ) -> None:
        self.health = health
        self.credentials = credentials
        self.store = Store() if store is None else store
        self.holds = SharedHolds(self.store) if holds is None else holds
        self.pauses = SharedPauses(self.store, health, credentials.tag)
        self.policy = Policy(SiteTable.of(()), Gateway())
        self.reach = Reach()
        """How the proxy's own requests reach a site: the way proxied ones go."""
        self.timeout: float = Settings.model_fields["upstream_timeout"].default
        """How long a request waits for the check after a pause, or a lookup for a confirmation."""
        self._logged = OncePer()
        self._flights: dict[Flight, asyncio.Task[None]] = {}
        self._waiting: dict[str, dict[str, Waiting]] = {}
        """By site, then host: the 401s its confirmation will answer."""
        self.mints = Mints(health, credentials, self.holds)
        """The access tokens of client-credentials sites."""

    def use(self, policy: Policy, reach: Reach, timeout: float) -> None:
        """The sites and gateway, how to reach them, and the upstream timeout, as configured."""
        self.policy, self.reach, self.timeout = policy, reach, timeout

    async def ready(self, site: str, host: str, port: int) -> int | None:
        """None when the token may go to (site, host) now; else the Retry-After of the local 401.

        Once a pause is over, the proxy's own check decides: the first caller starts it, every
        caller waits for it (at most `timeout`; still undecided by then: Retry-After 1).
        """
        hold = self.health.admit(site, host, time.monotonic())
        if hold is not None and hold.check_due:
            key = WHOLE_SITE if self.health.scope(site, host) is Scope.SITE else host
            await self._settle(self._flight(("check", site, key), lambda: self._check(site, host, port)))
            hold = self.health.admit(site, host, time.monotonic())
        return None if hold is None else hold.retry_after

    async def get(self, site: str, host: str, to: tuple[str, int], path: str) -> tuple[int, dict[str, Any]]:
        """`GET path` at `to` with `site`'s credentials, on behalf of a request to (site, `host`).

        The status and the JSON object answered. Raises `Withheld` when the token may not go
        (a pause), or when this very answer shows it rejected (confirmed first if ambiguous);
        `HeldBack` when a rate-limit hold covers it; `Unreachable` when the site could not be asked.
        """
        to_host, to_port = to
        retry_after = await self.ready(site, host, to_port)
        if retry_after is not None:
            raise Withheld(retry_after)
        held = self.holds.check(site, host, "GET", path)
        if held is not None:
            raise HeldBack(host, held)
        if self.mints.due(site, time.monotonic()):
            await self.mints.fresh(site)
        stamp = self.health.stamp()
        status, headers, body = await self._ask(site, host, (to_host, to_port), path)
        sent = Sent("GET", to_host, to_port, path)
        reading = read_answer(status, headers, sent, self.credentials.site(site), self.policy)
        self.act(site, host, stamp, reading, sent)
        verdict = reading.verdict
        if verdict is TokenVerdict.CONFIRM and (confirming := self._flights.get(("confirm", site, WHOLE_SITE))):
            await self._settle(confirming)
        if verdict in (TokenVerdict.REJECTED, TokenVerdict.CONFIRM):
            hold = self.health.admit(site, host, time.monotonic())
            if hold is not None:
                raise Withheld(hold.retry_after)
        return status, json_object(body)

    def act(self, site: str, host: str, stamp: int, reading: Reading, sent: Sent) -> None:
        """Act on what the answer to credentials sent at `stamp` to (site, `host`) says of the token.

        A rejection pauses the site; a pass or a scope miss counts for the token; a 401 to confirm
        waits for the site's one confirmation, started in the background if none runs. A minted token's
        401 starts a new mint; an answer nothing can judge changes nothing.
        """
        if reading.verdict is TokenVerdict.RENEW:
            self.mints.renew(site, stamp)
            return
        if reading.verdict is TokenVerdict.UNJUDGED:
            return
        page = reading.page  # set only on CONFIRM
        if page is None:
            self._record(site, host, stamp, reading.rejection, Scope.SITE, host)
            return
        waiting = self._waiting.setdefault(site, {})
        if host not in waiting and len(waiting) >= WAITING_CONFIRMATIONS:
            return
        reason = reading.rejection or "HTTP 401"
        waiting[host] = Waiting(stamp, f"{sent.method} {sent.route}", reason, page, reading.own)
        self._flight(("confirm", site, WHOLE_SITE), lambda: self._confirm(site))

    def _record(self, site: str, host: str, stamp: int, rejection: str | None, scope: Scope, seen: str) -> None:
        """Record the verdict on the token for (site, `host`); log once per change of state, naming `seen`,
        the host whose answer decided it."""
        covering = self.health.scope(site, host)
        change = self.health.judge(site, host, stamp, rejection, time.monotonic(), scope)
        if change is not None:
            self.pauses.told(site, host, scope if change is Change.REJECTED else covering or scope, change)
        if change is Change.REJECTED and scope is Scope.SITE:
            patterns = ", ".join(map(str, self.credentials.site(site).patterns))
            logger.warning(
                "%s rejected the API token of site %s (%s): it may be revoked or expired. Create a new one at %s "
                "and store it (atlassian-auth-proxy login, or the token file); until then requests to every host "
                "of the site (%s) are answered locally with 401 for %.0f s, then the proxy checks the token again "
                "itself.",
                seen,
                site,
                rejection,
                API_TOKENS_PAGE,
                patterns,
                self.health.pause(site, host),
            )
        elif change is Change.REJECTED:
            logger.warning(
                "%s refused the API token of site %s (%s), which %s accepts: %s may be a site this account cannot "
                "use (or the request lacks a permission there); requests to %s alone are answered locally with 401 "
                "for %.0f s, then the proxy checks the token at %s again.",
                host,
                site,
                rejection,
                seen,
                host,
                host,
                self.health.pause(site, host),
                seen,
            )
        elif change is Change.ACCEPTED and covering is Scope.HOST:
            logger.info("%s accepts the API token of site %s again; requests to %s pass as usual", seen, site, host)
        elif change is Change.ACCEPTED:
            logger.info("%s accepts the API token again; requests pass as usual", seen)

    async def _check(self, site: str, host: str, port: int) -> None:
        """After a pause: one `GET` of the identity page decides whether (site, host) trusts the token again.

        The page is the site's home's, or for a site without one, `host`'s own. A rejection there
        pauses the whole site; an answer that tells nothing keeps the pause for a short while.
        """
        page = token_page(self.credentials.site(site), host, port, self.policy)
        stamp = self.health.stamp()
        if page is None:
            self.health.keep(site, host, stamp, time.monotonic(), None)
            if self._logged.first("unchecked", site, host):
                logger.warning(
                    "%s: site %s has no identity page of its own there, so the proxy cannot check its token; "
                    "requests to %s stay answered locally until the token changes",
                    host,
                    site,
                    host,
                )
            return
        key = WHOLE_SITE if self.health.scope(site, host) is Scope.SITE else host
        name = flight_name("check", site, self.credentials.tag(site) or "", key)
        verdict = await self.store.once(name, lambda: self._page(site, page), self.timeout)
        answer, reason = PageAnswer(verdict["answer"]), verdict["said"]
        if answer is not PageAnswer.UNKNOWN:
            reason = f"{reason} from {page.path}"
        if answer is PageAnswer.UNKNOWN:
            held = self.holds.check(site, page.host, "GET", page.path)
            later = max(RECHECK_SECONDS, held.retry_after if held is not None else 0)
            self.health.keep(site, host, stamp, time.monotonic(), later)
            logger.warning(
                "%s: could not check the API token of site %s (%s); requests stay answered locally, "
                "the next check in %.0f s",
                host,
                site,
                reason,
                later,
            )
            return
        rejection = reason if answer is PageAnswer.REJECTED else None
        self._record(site, host, stamp, rejection, Scope.SITE, page.host)

    async def _confirm(self, site: str) -> None:
        """The 401s waiting on `site`: does the identity page reject the token too?

        One page at a time (the home's answers for all of them at once); none is asked once the
        site is paused, which covers every host.
        """
        waiting = self._waiting.get(site, {})
        while waiting:
            page = next(iter(waiting.values())).page
            batch = {host: entry for host, entry in waiting.items() if entry.page == page}
            for host in batch:
                del waiting[host]
            now = time.monotonic()
            batch = {host: entry for host, entry in batch.items() if self.health.admit(site, host, now) is None}
            if not batch:
                continue  # already paused, or the check after a pause decides: nothing more goes until then
            name = flight_name("confirm", site, self.credentials.tag(site) or "", page.host, str(page.port), page.path)
            verdict = await self.store.once(name, functools.partial(self._page, site, page), self.timeout)
            if verdict.get(LIMITED):
                continue  # the page is rate-limited: it tells nothing, and a 401 left unconfirmed pauses nothing
            answer, said = PageAnswer(verdict["answer"]), verdict["said"]
            for host, entry in batch.items():
                self._confirmed(site, host, entry, answer, said)

    def _confirmed(self, site: str, host: str, entry: Waiting, answer: PageAnswer, said: str) -> None:
        """Act on the identity page's `answer` to the 401 `entry` got from `host`."""
        page = entry.page
        scope = confirmed(answer, entry.own)
        if scope is None:
            if self._logged.first("denied", site, entry.request):
                logger.warning(
                    "%s answered %s to %s, but %s%s accepts the API token of site %s: the account lacks a permission "
                    "that request needs (or the request carried a login of its own); the token stays in use.",
                    host,
                    entry.reason,
                    entry.request,
                    page.host,
                    page.path,
                    site,
                )
            self._record(site, host, entry.stamp, None, Scope.SITE, host)
            return
        if answer is PageAnswer.ACCEPTED:
            rejection = f"{entry.reason} to {entry.request}"
        elif answer is PageAnswer.REJECTED:
            rejection = f"{said} from {page.path}" if page.host == host else f"{said} from {page.host}{page.path}"
        else:
            rejection = f"{entry.reason}, unconfirmed: {page.host}{page.path} gave {said}"
        self._record(site, host, entry.stamp, rejection, scope, page.host if scope is Scope.HOST else host)

    async def replay(
        self,
        site: str,
        host: str,
        method: str,
        to: tuple[str, int],
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
    ) -> Exchanged | None:
        """Send a client's request to (site, `host`) again with `site`'s current credentials (a GET or HEAD whose
        minted token the gateway refused, once a new one is minted). None when it could not be sent, a rate-limit
        hold covers it, or its answer is larger than `REPLAY_LIMIT`; a 429 to it starts a hold as a client's does."""
        if self.holds.check(site, host, method, path) is not None:
            return None
        credentials = self.credentials[site]
        sent = [*headers, ("Authorization", credentials.authorization.get_secret_value())]
        to_host, to_port = to
        sent_at = time.time()
        try:
            answer = await asyncio.to_thread(
                exchange, to_host, to_port, method, path, sent, body, self.reach, REPLAY_LIMIT
            )
        except Unreachable as e:
            logger.warning("site %s: could not send %s %s again: %s", site, method, path.partition("?")[0], e)
            return None
        said = {name.lower(): value for name, value in answer.headers}
        told = self.holds.answered(site, host, method, path, answer.status, said, sent_at)
        if told is not None:
            await told
        return answer if answer.complete else None

    async def _page(self, site: str, page: IdentityPage) -> Verdict:
        """What the identity page says of `site`'s token: `answer` (a `PageAnswer`) and `said`; marked
        `LIMITED` when a hold covers the page or it answered 429 (nothing is said of the token then)."""
        held = self.holds.check(site, page.host, "GET", page.path)
        if held is not None:
            return {"answer": PageAnswer.UNKNOWN, "said": f"held {held.retry_after} s after a 429", LIMITED: "1"}
        try:
            status, headers, _ = await self._ask(site, page.host, (page.host, page.port), page.path)
        except Unreachable as e:
            return {"answer": PageAnswer.UNKNOWN, "said": str(e)}
        answer, said = read_identity_page(status, headers)
        return {"answer": answer, "said": said, LIMITED: "1" if status == 429 else ""}

    async def _ask(self, site: str, host: str, to: tuple[str, int], path: str) -> tuple[int, dict[str, str], bytes]:
        """`GET path` at `to` with `site`'s credentials; a 429 starts a hold of (site, `host`) as a client's does."""
        sent = time.time()
        status, headers, body = await self._send(site, to[0], to[1], path)
        told = self.holds.answered(site, host, "GET", path, status, headers, sent)
        if told is not None:
            await told
        return status, headers, body

    async def _send(self, site: str, host: str, port: int, path: str) -> tuple[int, dict[str, str], bytes]:
        return await asyncio.to_thread(fetch, host, port, path, self.credentials[site], self.reach)

    def _flight(self, key: Flight, start: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        """The running task for `key`, or a new one from `start`: one check or confirmation at a time for each."""
        task = self._flights.get(key)
        if task is None or task.done():
            task = self._flights[key] = asyncio.get_running_loop().create_task(start())
            task.add_done_callback(lambda done: self._landed(key, done))
        return task

    def _landed(self, key: Flight, task: asyncio.Task[None]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]

    async def _settle(self, task: asyncio.Task[None]) -> None:
        """Wait for a check or confirmation, at most `timeout`; it goes on for the others when a waiter leaves."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), self.timeout)

    def done(self) -> None:
        for task in self._flights.values():
            task.cancel()
        self.mints.done()
