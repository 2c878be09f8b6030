"""Deadlines kept as timestamps and checked by one sweep, instead of a timer per request.

An asyncio timer per request (armed, then cancelled when the answer comes) costs a heap push
with Python-level comparisons and leaves a cancelled handle behind; with thousands of
requests a minute under a 60 s timeout the heap holds thousands. Here setting or clearing a
deadline is a dict operation, and one task looks at the few pending deadlines a few times a
second: a deadline fires up to `resolution` seconds late, which is nothing next to timeouts
of seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

logger = logging.getLogger(__name__)


class Deadlines:
    """`set(key, seconds, expire, arg)`: call `expire(arg)` once that time has passed, unless cleared first."""

    def __init__(self, resolution: float = 0.1) -> None:
        self.resolution = resolution
        self._pending: dict[Hashable, tuple[float, Callable[[Any], None], Any]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def set(self, key: Hashable, seconds: float, expire: Callable[[Any], None], arg: Any) -> None:
        self._pending[key] = (time.monotonic() + seconds, expire, arg)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def clear(self, key: Hashable) -> None:
        self._pending.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._pending

    def stop(self) -> None:
        self._pending.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()

    async def _sweep(self) -> None:
        while self._pending:
            await asyncio.sleep(self.resolution)
            now = time.monotonic()
            for key in [key for key, (when, _, _) in self._pending.items() if when <= now]:
                _, expire, arg = self._pending.pop(key)
                try:
                    expire(arg)
                except Exception as e:  # one failed expiry must not stop the sweep for every other deadline
                    logger.error("a deadline's expiry failed (%s); the other deadlines still run", type(e).__name__)
