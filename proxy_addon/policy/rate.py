"""Requests per minute, per client: a sliding window, so no minute ever holds more than the limit.

Pure: the hook passes the clock in. Each client keeps the times of its last `limit` admitted
requests; a request is admitted when the oldest of them is a minute old or more. Refused
requests are not counted, so a client that keeps asking is not kept out any longer. The
boundaries' lookups a request causes count in the same window, several at once.
"""

from __future__ import annotations

import math
from collections import deque

WINDOW_SECONDS = 60.0


class ClientRates:
    """The admitted requests of every rate-limited client, by name."""

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self._admitted: dict[str, deque[float]] = {}

    def admit(self, client: str, limit: int, now: float, count: int = 1) -> int | None:
        """None if `client` may send `count` more requests now (they are counted), else the whole
        seconds (at least 1) until it may; the whole window for more than `limit` at once."""
        admitted = self._admitted.get(client)
        if admitted is None:
            admitted = self._admitted[client] = deque(maxlen=limit)
        if count > limit:
            return math.ceil(self.window)
        if (over := len(admitted) + count - limit) > 0 and (wait := admitted[over - 1] + self.window - now) > 0:
            return max(1, math.ceil(wait))
        admitted.extend([now] * count)
        return None
