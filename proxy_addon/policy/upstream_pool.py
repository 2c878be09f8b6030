"""The warm upstream pool's decisions: which connections to keep warm, how many, for how long, and which
requests may be sent again. Pure: every time is passed in, on one monotonic clock.

A warm connection is one the site has not used yet: our TLS ClientHello went out, its answer waits
unread (addons/upstream_pool.py). The site allows such a connection only so long before it gives up
on the handshake; past that, the connection is no use and a new one costs the site a handshake. So:

- only keys (a site host with everything mitmproxy's TLS settings read) that a credentialed
  request used within the idle window are kept warm, each with at most `size` connections, at most
  `MAX_KEYS` keys at once, and no more connections to one site than its in-flight cap;
- a connection waits at most `max_age`, or less once the site has shown it closes waiting
  connections sooner (`AgeLimit`);
- only a request that is safe to send twice is sent again when a warm connection closes under it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods a client expects to be safe to repeat: sent again, once, when a warm connection the site
closed took the request head and gave no byte of an answer."""


def replayable(method: str) -> bool:
    return method in REPLAYABLE


def clamped_size(size: int, in_flight_cap: int | None) -> int:
    """Warm connections per key: never more than the site's in-flight cap allows (when it has one)."""
    return size if in_flight_cap is None else max(0, min(size, in_flight_cap))


@dataclass(frozen=True)
class PoolLimits:
    """The settings: connections per key, how long a key stays warm after its last use, a connection's age."""

    size: int = 2
    idle: float = 60.0
    max_age: float = 10.0
    caps: Mapping[str, int] = field(default_factory=dict)
    """Each site's in-flight cap, by site name: a key of that site keeps no more warm connections."""

    def size_for(self, site: str | None) -> int:
        return clamped_size(self.size, self.caps.get(site) if site is not None else None)


class AgeLimit:
    """How long a warm connection may wait: `max_age`, or less when the site closed waiting ones sooner.

    A site's timeout for an unfinished handshake is not published (Atlassian's edge: unknown). The
    pool learns it: each warm connection the site closed while it waited tells its age, and the
    limit becomes `MARGIN` of the shortest of the last `KEEP` such ages seen within `WINDOW`
    seconds, never below `FLOOR`. Old observations expire, so one closed by a passing network fault
    lowers the limit only for a while.
    """

    MARGIN = 0.8
    KEEP = 8
    WINDOW = 600.0
    FLOOR = 1.0

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._closed: deque[tuple[float, float]] = deque(maxlen=self.KEEP)

    def closed_waiting(self, age: float, now: float) -> None:
        """The site closed a warm connection that had waited `age` seconds."""
        self._closed.append((now, age))

    def current(self, now: float) -> float:
        while self._closed and now - self._closed[0][0] > self.WINDOW:
            self._closed.popleft()
        if not self._closed:
            return self.max_age
        learned = self.MARGIN * min(age for _, age in self._closed)
        return min(self.max_age, max(self.FLOOR, learned))


class Warmth[K]:
    """Which keys are in demand: the last time a credentialed request used each, and its site.

    Any client decides which keys exist: a wildcard host (`*.atlassian.net`) names as many hosts as
    it likes, and each ALPN list a client offers is another key. Without a bound, one client
    making a request to each of a thousand names had the proxy hold two thousand connections
    (and file descriptors) open and renew them every `max_age`. So at most `MAX_KEYS` keys are
    warm at once: a new one makes the least recently used one cool at once.
    """

    MAX_KEYS = 16
    """Real clients use a few hosts, each with one or two ALPN lists; 16 keys of up to 16 connections bound the
    pool at 256 connections whatever the clients do."""
    RETRY = 5.0
    """After a connection for a key failed to open, the pool opens none for it for this long (the site is
    down or refuses: a request then dials and fails as without a pool, and the pool does not hammer it)."""

    def __init__(self, limits: PoolLimits) -> None:
        self.limits = limits
        self._used: dict[K, float] = {}
        self._site: dict[K, str | None] = {}
        self._failed: dict[K, float] = {}

    def __contains__(self, key: K) -> bool:
        return key in self._used

    def __bool__(self) -> bool:
        return bool(self._used)

    def touch(self, key: K, site: str | None, now: float) -> bool:
        """A credentialed request used `key`; True when it was not warm before."""
        new = key not in self._used
        self._used[key] = now
        if new:
            self._site[key] = site
        return new

    def site_of(self, key: K) -> str | None:
        return self._site.get(key)

    def hot(self) -> list[K]:
        return list(self._used)

    def cooled(self, now: float) -> list[tuple[K, str | None]]:
        """Keys no credentialed request used within the idle window, and the least recently used ones beyond
        `MAX_KEYS`, with their sites: forgotten, their connections to close."""
        cold = [key for key, used in self._used.items() if now - used > self.limits.idle]
        if len(self._used) - len(cold) > self.MAX_KEYS:
            kept = sorted((k for k in self._used if k not in cold), key=self._used.__getitem__)
            cold += kept[: len(kept) - self.MAX_KEYS]
        for key in cold:
            del self._used[key]
            self._failed.pop(key, None)
        return [(key, self._site.pop(key, None)) for key in cold]

    def failed(self, key: K, now: float) -> None:
        """Opening a connection for `key` failed."""
        self._failed[key] = now

    def missing(self, key: K, waiting: int, opening: int, now: float, site_held: int = 0) -> int:
        """How many connections to open for `key`, which has `waiting` warm ones and `opening` on their way, while
        all keys of its site hold `site_held` (waiting or opening; `key`'s among them): the site's in-flight cap
        bounds the site's warm connections, however many keys (hosts, ports, ALPN lists) it has."""
        failed_at = self._failed.get(key)
        if key not in self._used or (failed_at is not None and now - failed_at < self.RETRY):
            return 0
        site = self._site.get(key)
        wanted = self.limits.size_for(site) - waiting - opening
        cap = self.limits.caps.get(site) if site is not None else None
        if cap is not None:
            wanted = min(wanted, cap - site_held)
        return max(0, wanted)

    def keys_of(self, site: str | None) -> list[K]:
        return [key for key, of in self._site.items() if of == site]

    def clear(self) -> None:
        self._used.clear()
        self._site.clear()
        self._failed.clear()


def expired(created: float, now: float, age_limit: float) -> bool:
    """A warm connection opened at `created` is too old to hand out."""
    return now - created >= age_limit
