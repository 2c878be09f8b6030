"""Online guessing of proxy logins is slow, and one client's failures never lock another user out.

Failed logins count per (peer, claimed user): a peer that keeps failing as one user is refused as
that user for a growing while, its password not even checked, and keeps its other users. A peer
is a bucket of addresses one party may hold: every loopback address (127.0.0.0/8, `::1`, their
IPv4-mapped forms) is one peer, since every local process can bind any of them; an IPv6 address
counts by its /64, which one host may hold whole; an IPv4 address by itself. A claimed name that
is no user of the proxy counts as one "unknown user", so made-up names cannot fill the table.

A party with many addresses could still guess one user's password a few times from each; so
failures of a user also count across all peers, and past `MAX_FAILURES_EVERYWHERE` that user is
refused everywhere for a growing while, except from the peers it logged in from before: a
guesser elsewhere cannot lock a working client out.

A right login while locked out is refused like a wrong one (it would otherwise tell the guesser
it guessed right). A success never clears failures: a client that knows its own login could
otherwise mix it in to keep guessing. A count is forgotten only after `FORGET_SECONDS` without a
failure or lockout.

Pure: the hook passes the peer's address, the claimed user (None for no user of the proxy) and
the clock. Bounded: each table keeps at most `MAX_PEERS` entries, the one that failed (or logged
in) least recently going first.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass

MAX_FAILURES = 5
"""Failed logins as one user a peer may make before it is locked out; after a lockout, one more locks it again."""
MAX_FAILURES_EVERYWHERE = 100
"""Failed logins as one user from all peers together before that user is locked out everywhere (but where it
logged in before). Twenty peers' worth: more than mistakes, far fewer than a guessing run from many addresses."""
FIRST_LOCKOUT = 30.0
MAX_LOCKOUT = 900.0
"""Each lockout lasts twice the one before, from `FIRST_LOCKOUT` up to this."""
FORGET_SECONDS = 3600.0
LOG_SECONDS = 60.0
"""At most one log line per peer in this long about its failures; it counts the failures since the previous one."""
MAX_PEERS = 10_000
LOOPBACK = "loopback"
"""The one peer every loopback address is."""
IPV4_MAPPED = bytes(10) + b"\xff\xff"


def peer_key(address: str) -> str:
    """The peer an address belongs to: `loopback`, an IPv6 /64, or the IPv4 address.

    `inet_pton`/`inet_ntop` (pure conversions) rather than `ipaddress`, which costs ten times more.
    """
    if ":" not in address:
        return LOOPBACK if address.startswith("127.") else address
    try:
        packed = socket.inet_pton(socket.AF_INET6, address.partition("%")[0])
    except OSError:
        return address
    if packed.startswith(IPV4_MAPPED):
        return peer_key(socket.inet_ntop(socket.AF_INET, packed[12:]))
    if packed == bytes(15) + b"\x01":
        return LOOPBACK
    return socket.inet_ntop(socket.AF_INET6, packed[:8] + bytes(8)) + "/64"


@dataclass(slots=True)
class _Failures:
    """The failed logins counted under one key, and the lockouts they earned."""

    failures: int = 0
    lockout: float = 0.0
    """The length of the latest lockout; 0 before the first."""
    locked_until: float = -math.inf
    last_failure: float = -math.inf

    def quiet_since(self) -> float:
        return max(self.last_failure, self.locked_until)

    def waiting(self, now: float) -> float | None:
        return self.locked_until - now if self.locked_until > now else None

    def fail(self, now: float, limit: int) -> float | None:
        """Count a failure; the lockout it starts, if any. A failure while locked (a login the lock let
        through to be checked) starts none."""
        self.last_failure = now
        if self.locked_until > now:
            return None
        self.failures += 1
        if self.failures < limit:
            return None
        self.lockout = min(MAX_LOCKOUT, 2 * self.lockout) if self.lockout else FIRST_LOCKOUT
        self.locked_until = now + self.lockout
        self.failures = limit - 1
        return self.lockout


@dataclass(slots=True)
class _Log:
    unlogged: int = 0
    logged_at: float = -math.inf


@dataclass(frozen=True, slots=True)
class Failure:
    """What one failed login led to."""

    peer: str
    """The peer it counts against: `loopback`, an IPv6 /64, or an IPv4 address."""
    user: str | None
    """The user it claimed; None for a name that is no user of the proxy."""
    locked_for: float | None
    """The lockout of this user from this peer it started, in seconds; None while the peer may still try."""
    locked_everywhere_for: float | None
    """The lockout of this user from every peer it never logged in from, in seconds; None if it started none."""
    report: int
    """Failed logins of this peer to report in one log line now, this one included; 0: stay quiet."""


class LoginThrottle:
    """Failed proxy logins per (peer, user) and per user, and the lockouts they earn."""

    def __init__(self, max_peers: int = MAX_PEERS) -> None:
        self.max_peers = max_peers
        self._pairs: dict[tuple[str, str | None], _Failures] = {}
        self._users: dict[str, _Failures] = {}
        self._logs: dict[str, _Log] = {}
        self._known: dict[tuple[str, str], None] = {}
        """The (peer, user) pairs that logged in, oldest first: a lockout everywhere spares them."""

    def __len__(self) -> int:
        return len(self._pairs)

    def locked(self, address: str, user: str | None, now: float) -> float | None:
        """Seconds until a login as `user` from `address` may be checked again; None when it may now."""
        if not self._pairs:  # the usual case: nobody failed lately
            return None
        peer = peer_key(address)
        pair = self._pairs.get((peer, user))
        wait = pair.waiting(now) if pair is not None else None
        everywhere = self._users.get(user) if user is not None else None
        if everywhere is not None and (peer, user) not in self._known:
            wait = max(wait or 0.0, everywhere.waiting(now) or 0.0) or None
        return wait

    def failed(self, address: str, user: str | None, now: float) -> Failure:
        """Count a failed login as `user` from `address` (one that was not locked out)."""
        peer = peer_key(address)
        locked_for = _fresh(self._pairs, (peer, user), now, self.max_peers).fail(now, MAX_FAILURES)
        everywhere = None
        if user is not None:
            everywhere = _fresh(self._users, user, now, self.max_peers).fail(now, MAX_FAILURES_EVERYWHERE)
        log = self._logs.pop(peer, None) or _Log()
        self._logs[peer] = log
        _bound(self._logs, self.max_peers)
        log.unlogged += 1
        report = 0
        if locked_for is not None or everywhere is not None or now - log.logged_at >= LOG_SECONDS:
            report, log.unlogged, log.logged_at = log.unlogged, 0, now
        return Failure(peer, user, locked_for, everywhere, report)

    def succeeded(self, address: str, user: str) -> None:
        """A login as `user` from `address` was right: a lockout of `user` everywhere spares this peer."""
        key = (peer_key(address), user)
        if key not in self._known:
            self._known[key] = None
            _bound(self._known, self.max_peers)


def _fresh[K](table: dict[K, _Failures], key: K, now: float, limit: int) -> _Failures:
    """`key`'s count, moved to the end (the most recent failure), or a new one if it stayed quiet long enough."""
    entry = table.pop(key, None)
    if entry is None or now - entry.quiet_since() >= FORGET_SECONDS:
        entry = _Failures()
    table[key] = entry
    _bound(table, limit)
    return entry


def _bound[K, V](table: dict[K, V], limit: int) -> None:
    while len(table) > limit:
        del table[next(iter(table))]
