"""A `state.store.Remote` in memory, for the unit tests of what shares state: it records what is told, and
`deliver` plays another process's event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from proxy_addon.state.store import Event, Shared, Store, Verdict


@dataclass
class FakeRemote:
    where: str = "redis://127.0.0.1:6379/0"
    up: bool = True
    told: list[tuple[str, str, Event]] = field(default_factory=list)
    """(what, name or kind, event) for each hold, keep, forget, calm and publish."""
    kept_events: dict[str, list[tuple[Event, float]]] = field(default_factory=dict)
    shared: Shared | None = None
    """What `hold` answers: the store's length and strikes (None: the hold as told)."""
    windows: dict[str, int] = field(default_factory=dict)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    """`once`: a verdict another process left under that name (else `work` runs here)."""
    store: Store | None = None

    async def start(self, store: Store) -> None:
        self.store = store

    async def stop(self) -> None:
        self.up = False

    def publish(self, kind: str, event: Event) -> None:
        self.told.append(("publish", kind, event))

    async def hold(self, name: str, event: Event, seconds: float, hint: bool) -> Shared | None:
        self.told.append(("hold", name, {**event, "seconds": seconds, "hint": hint}))
        return self.shared or Shared(seconds, 1)

    def calm(self, names: list[str]) -> None:
        self.told.append(("calm", ",".join(names), {}))

    def keep(self, kind: str, name: str, event: Event, seconds: float) -> None:
        self.told.append(("keep", f"{kind}:{name}", {**event, "seconds": seconds}))

    def forget(self, kind: str, name: str, event: Event) -> None:
        self.told.append(("forget", f"{kind}:{name}", event))

    async def kept(self, kind: str) -> list[tuple[Event, float]]:
        return self.kept_events.get(kind, [])

    async def admit(self, client: str, limit: int, count: int) -> tuple[bool, int | None]:
        used = self.windows.get(client, 0)
        if used + count > limit:
            return True, 42
        self.windows[client] = used + count
        return True, None

    async def once(self, name: str, work: Callable[[], Awaitable[Verdict]], timeout: float) -> Verdict:
        if name in self.verdicts:
            return self.verdicts[name]
        return await work()


def shared_store(remote: FakeRemote | None = None) -> tuple[Store, FakeRemote]:
    store, remote = Store(), remote or FakeRemote()
    store.remote = remote
    return store, remote


def run(result: Any) -> Any:
    import asyncio

    return asyncio.run(result) if result is not None else None
