"""Token pauses as every process on a store sees them: a rejection one process confirms pauses them all.

A process that pauses a site (or one host) after a confirmed rejection keeps the pause in the
store for as long as it lasts and publishes it; the others pause the same site at once, with the
same count of rejections and end, and log one line saying another proxy saw it. The check after a
pause and the confirmation of a 401 run in one process at a time for all (`Store.once`), and a
token found good again ends the pause everywhere.

Each pause carries its token's tag (`CredentialRegistry.tag`): a process whose token for that
site is another one (rotated before or after the others) ignores it, so a token replaced in one
pod is never paused for a rejection of the old one elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from proxy_addon.policy.hosts import normalize_host
from proxy_addon.policy.token_health import Change, Scope, TokenHealth
from proxy_addon.state.store import Event, Store

logger = logging.getLogger(__name__)

KIND = "pause"


def pause_name(site: str, host: str, scope: Scope, tag: str) -> str:
    """The store's name of a pause: a digest of whose token is paused where."""
    text = "\0".join((site, host if scope is Scope.HOST else "", scope, tag))
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


class SharedPauses:
    """Tells the store this process's pauses and their ends, and keeps the other processes' pauses here."""

    def __init__(self, store: Store, health: TokenHealth, tag: Callable[[str], str | None]) -> None:
        self.store = store
        self.health = health
        self.tag = tag
        """The tag of the token a site has here now (None: no such site)."""
        store.on(KIND, self._paused)
        store.on(f"{KIND}-over", self._accepted)
        store.on_connect(self._resync)

    def told(self, site: str, host: str, scope: Scope, change: Change) -> None:
        """This process's own verdict changed what (site, host)'s token may do: tell the others."""
        tag = self.tag(site)
        if not self.store.sharing or tag is None:
            return
        name = pause_name(site, host, scope, tag)
        event: Event = {"site": site, "host": host, "scope": str(scope), "tag": tag}
        if change is Change.ACCEPTED:
            self.store.forget(KIND, name, event)
            return
        pause = self.health.pause_of(site, host, time.monotonic())
        if pause is not None:
            failures, seconds = pause
            self.store.keep(KIND, name, {**event, "failures": failures}, seconds)

    def _mine(self, event: Event) -> tuple[str, str, Scope] | None:
        site, scope = str(event["site"]), Scope(event["scope"])
        host = normalize_host(str(event["host"]))
        if host is None:
            raise ValueError("not a host name")  # it goes into a log line and this process's pauses
        return (site, host, scope) if event.get("tag") == self.tag(site) else None

    def _paused(self, event: Event) -> None:
        mine = self._mine(event)
        if mine is None:
            return
        site, host, scope = mine
        seconds = int(event["ms"]) / 1000
        change = self.health.adopt(site, host, scope, int(event["failures"]), seconds, time.monotonic())
        if change is None:
            return
        where = "every host of the site" if scope is Scope.SITE else host
        logger.warning(
            "another proxy on the state store saw %s reject the API token of site %s: requests to %s are answered "
            "locally with 401 here too for %.0f s, then the token is checked again",
            host,
            site,
            where,
            seconds,
        )

    def _accepted(self, event: Event) -> None:
        mine = self._mine(event)
        if mine is None:
            return
        site, host, scope = mine
        if self.health.adopt_accepted(site, host, scope) is Change.ACCEPTED:
            logger.info(
                "another proxy on the state store found the API token of site %s good again; requests pass", site
            )

    async def _resync(self) -> None:
        """Reached the store (again): pause what the others paused, and leave there what this process paused."""
        for found, seconds in await self.store.kept(KIND):
            self.store.deliver(KIND, {**found, "ms": seconds * 1000})
        now = time.monotonic()
        for site, host, scope in list(self.health.paused()):
            tag = self.tag(site)
            pause = self.health.pause_of(site, host, now)
            if tag is None or pause is None or pause[1] <= 0:
                continue
            event: Event = {"site": site, "host": host, "scope": str(scope), "tag": tag, "failures": pause[0]}
            self.store.keep(KIND, pause_name(site, host, scope, tag), event, pause[1])
