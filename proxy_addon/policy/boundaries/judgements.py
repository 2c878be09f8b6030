"""What the judge answers about one request, and the two ways a judgement refuses while it is made."""

from __future__ import annotations

from dataclasses import dataclass

from proxy_addon.policy.boundaries.lookups import Ref
from proxy_addon.policy.record import Decision


@dataclass(frozen=True, slots=True)
class Allowed:
    pass


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    decision: Decision
    reason: str


@dataclass(frozen=True, slots=True)
class NeedsLookup:
    refs: frozenset[Ref]


@dataclass(frozen=True, slots=True)
class NeedsBody:
    pass


@dataclass(frozen=True, slots=True)
class Rewritten:
    """Send the request with this path (a confined query) or this body instead."""

    path: str | None = None
    body: bytes | None = None


type Judgement = Allowed | Refused | NeedsLookup | NeedsBody | Rewritten
ALLOWED = Allowed()
NEEDS_BODY = NeedsBody()


class OutOfBounds(Exception):
    """Outside the bounds, or not judged: 403 with this reason."""


class Malformed(Exception):
    """Malformed: 400 with this reason.

    Not a ValueError: raised from inside `json.loads`, it must not read as "the body is not JSON".
    """
