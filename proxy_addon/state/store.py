"""The store of shared state, as every user of it sees it: one object, sharing through a remote store or not at all.

The root makes one `Store` and hands it to everything that shares (holds, pauses, windows, the
confirmation of a 401); `addons.state_store` gives it its `Remote` (the Redis one) when a state
URL is set. Without a remote, or while it cannot be reached, every method answers as if this
process were alone: the in-memory default, and the fallback.

The request path never waits on the store for what it can know locally: each process keeps its
own holds, pauses and windows (`policy/`), tells the store what it learns (`hold`, `keep`,
`forget`, `calm`), and hears what the others learned as events (`on`), pushed to it within
milliseconds. Only two things ask the store while a request waits, each bounded by a short
timeout: a rate-limited client's window (`admit`: a count must be exact across processes) and
the one confirmation of a 401 (`once`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger(__name__)

type Event = dict[str, Any]
type Handler = Callable[[Event], None]
type Verdict = dict[str, str]
MEMORY = "memory"


@dataclass(frozen=True, slots=True)
class Shared:
    """What the store holds of a hold after a 429: its length (the longer of this process's and the
    store's) and the scope's count of hint-less 429s."""

    seconds: float
    strikes: int


class Remote(Protocol):
    """A store other processes reach too; see `redis_store.RedisStore`."""

    where: str
    """The server as the log names it, without its password."""

    @property
    def up(self) -> bool: ...

    async def start(self, store: Store) -> None: ...

    async def stop(self) -> None: ...

    def publish(self, kind: str, event: Event) -> None: ...

    async def hold(self, name: str, event: Event, seconds: float, hint: bool) -> Shared | None: ...

    def calm(self, names: list[str]) -> None: ...

    def keep(self, kind: str, name: str, event: Event, seconds: float) -> None: ...

    def forget(self, kind: str, name: str, event: Event) -> None: ...

    async def kept(self, kind: str) -> list[tuple[Event, float]]: ...

    async def admit(self, client: str, limit: int, count: int) -> tuple[bool, int | None]: ...

    async def once(self, name: str, work: Callable[[], Awaitable[Verdict]], timeout: float) -> Verdict: ...


class Store:
    """What this process shares with the others, through `remote`; alone while there is none or it is down."""

    def __init__(self) -> None:
        self.remote: Remote | None = None
        self._handlers: dict[str, Handler] = {}
        self._connected: list[Callable[[], Awaitable[None]]] = []

    @property
    def where(self) -> str:
        return MEMORY if self.remote is None else self.remote.where

    @property
    def sharing(self) -> bool:
        """The remote store can be reached now: what is told reaches the other processes."""
        return self.remote is not None and self.remote.up

    def on(self, kind: str, handler: Handler) -> None:
        """Call `handler` with each event of `kind` another process publishes."""
        self._handlers[kind] = handler

    def on_connect(self, resync: Callable[[], Awaitable[None]]) -> None:
        """Call `resync` each time the remote store is reached (again): to read what others left there, and
        leave there what this process learned while it was out of reach."""
        self._connected.append(resync)

    def deliver(self, kind: str, event: Event) -> None:
        """An event another process published (or left in the store): to its handler. A malformed one is dropped
        with a warning, whatever it makes the handler raise: the loop that delivers it must go on, or this
        process would stop sharing without a word while the gauge says it shares."""
        handler = self._handlers.get(kind)
        if handler is None:
            return
        try:
            handler(event)
        except Exception as e:
            logger.warning("ignored a malformed %s event from the state store (%s)", kind, type(e).__name__)

    async def connected(self) -> None:
        for resync in self._connected:
            await resync()

    async def use(self, remote: Remote | None) -> None:
        """Share through `remote` from now on (None: share nothing); the previous one is stopped."""
        if self.remote is not None:
            await self.remote.stop()
        self.remote = remote

    async def start(self) -> None:
        """Begin sharing (connect, subscribe); returns at once, never waits for the remote store."""
        if self.remote is not None:
            await self.remote.start(self)

    async def stop(self) -> None:
        if self.remote is not None:
            await self.remote.stop()

    def publish(self, kind: str, event: Event) -> None:
        """Tell the other processes `event`, in the background."""
        if self.remote is not None and self.remote.up:
            self.remote.publish(kind, event)

    async def hold(self, name: str, event: Event, seconds: float, hint: bool) -> Shared | None:
        """Record a hold of `seconds` under `name` (a hint-less one counts a strike and doubles in the store)
        and tell the others; what the store holds now, or None when nothing is shared."""
        if self.remote is None or not self.remote.up:
            return None
        return await self.remote.hold(name, event, seconds, hint)

    def calm(self, names: list[str]) -> None:
        """Requests in these scopes succeeded: their counts of hint-less 429s end everywhere."""
        if self.remote is not None and self.remote.up:
            self.remote.calm(names)

    def keep(self, kind: str, name: str, event: Event, seconds: float) -> None:
        """Keep `event` under `kind:name` for `seconds` (for processes that connect later), and publish it."""
        if self.remote is not None and self.remote.up:
            self.remote.keep(kind, name, event, seconds)

    def forget(self, kind: str, name: str, event: Event) -> None:
        """Drop what `keep` kept under `kind:name`, and publish `event` as `kind-over`."""
        if self.remote is not None and self.remote.up:
            self.remote.forget(kind, name, event)

    async def kept(self, kind: str) -> list[tuple[Event, float]]:
        """Every event kept under `kind`, with the seconds it has left."""
        if self.remote is None or not self.remote.up:
            return []
        return await self.remote.kept(kind)

    async def admit(self, client: str, limit: int, count: int) -> tuple[bool, int | None]:
        """A client's window across processes: whether the store counted it, and if so None (admitted) or the
        seconds to wait. Not counted: the caller counts locally."""
        if self.remote is None or not self.remote.up:
            return False, None
        return await self.remote.admit(client, limit, count)

    async def once(self, name: str, work: Callable[[], Awaitable[Verdict]], timeout: float) -> Verdict:
        """`work`'s verdict, worked out by one process at a time for all: the others wait (at most `timeout`)
        and take its verdict. Alone: `work` itself."""
        if self.remote is None or not self.remote.up:
            return await work()
        return await self.remote.once(name, work, timeout)
