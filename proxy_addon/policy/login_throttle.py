"""Online guessing of proxy logins is slow: failed logins count per peer address, and a peer
that fails too often is refused for a growing while, its password not even checked.

A success never clears a peer's failures: a client that knows its own login could otherwise
mix it in to guess another client's password without ever being locked out. A peer is forgotten
only after it stayed quiet (no failed login, no lockout) for `FORGET_SECONDS`.

Pure: the hook passes the peer's address and the clock. Bounded: past `MAX_PEERS` addresses the
one that failed least recently is forgotten first, so many addresses cost an attacker its own
counts, not the proxy memory.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass

MAX_FAILURES = 5
"""Failed logins a peer may make before it is locked out; after a lockout, one more locks it again."""
FIRST_LOCKOUT = 30.0
MAX_LOCKOUT = 900.0
"""Each lockout of a peer lasts twice the one before, from `FIRST_LOCKOUT` up to this."""
FORGET_SECONDS = 3600.0
LOG_SECONDS = 60.0
"""At most one log line per peer in this long; it counts the failures since the previous one."""
MAX_PEERS = 10_000
IPV4_MAPPED = bytes(10) + b"\xff\xff"


def peer_key(address: str) -> str:
    """The address failures count against: an IPv6 peer by its /64, which one host may hold whole.

    `inet_pton`/`inet_ntop` (pure conversions) rather than `ipaddress`, which costs ten times more.
    """
    if ":" not in address:
        return address
    try:
        packed = socket.inet_pton(socket.AF_INET6, address.partition("%")[0])
    except OSError:
        return address
    if packed.startswith(IPV4_MAPPED):
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed[:8] + bytes(8)) + "/64"


@dataclass(slots=True)
class _Peer:
    failures: int = 0
    lockout: float = 0.0
    """The length of the peer's latest lockout; 0 before its first."""
    locked_until: float = -math.inf
    last_failure: float = -math.inf
    unlogged: int = 0
    logged_at: float = -math.inf

    def quiet_since(self) -> float:
        return max(self.last_failure, self.locked_until)


@dataclass(frozen=True, slots=True)
class Failure:
    """What one failed login led to."""

    peer: str
    """The address it counts against (an IPv6 /64 as a network)."""
    locked_for: float | None
    """The lockout it started, in seconds; None while the peer may still try."""
    report: int
    """Failed logins of this peer to report in one log line now, this one included; 0: stay quiet."""


class LoginThrottle:
    """Failed proxy logins per peer address, and the lockouts they earn."""

    def __init__(self, max_peers: int = MAX_PEERS) -> None:
        self.max_peers = max_peers
        self._peers: dict[str, _Peer] = {}
        """In the order of their last failure, least recent first."""

    def __len__(self) -> int:
        return len(self._peers)

    def locked(self, address: str, now: float) -> float | None:
        """Seconds until the peer at `address` may try a login again; None when it may now."""
        if not self._peers:  # the usual case: nobody failed lately
            return None
        peer = self._peers.get(peer_key(address))
        if peer is None or peer.locked_until <= now:
            return None
        return peer.locked_until - now

    def failed(self, address: str, now: float) -> Failure:
        """Count a failed login from `address` (one that was not locked out)."""
        key = peer_key(address)
        peer = self._peers.pop(key, None)
        if peer is None or now - peer.quiet_since() >= FORGET_SECONDS:
            peer = _Peer()
        self._peers[key] = peer
        while len(self._peers) > self.max_peers:
            del self._peers[next(iter(self._peers))]
        peer.failures += 1
        peer.last_failure = now
        peer.unlogged += 1
        locked_for = None
        if peer.failures >= MAX_FAILURES:
            locked_for = peer.lockout = min(MAX_LOCKOUT, 2 * peer.lockout) if peer.lockout else FIRST_LOCKOUT
            peer.locked_until = now + locked_for
            peer.failures = MAX_FAILURES - 1
        report = 0
        if locked_for is not None or now - peer.logged_at >= LOG_SECONDS:
            report, peer.unlogged, peer.logged_at = peer.unlogged, 0, now
        return Failure(key, locked_for, report)
