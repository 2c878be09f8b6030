"""Deadlines fire once their time has passed, not when cleared, and one failing expiry stops no other."""

from __future__ import annotations

import asyncio

from proxy_addon.addons.deadlines import Deadlines


def test_deadlines_fire_once_unless_cleared_and_survive_a_failing_expiry():
    fired: list[str] = []

    def expire(name: str) -> None:
        if name == "raises":
            raise RuntimeError("boom")
        fired.append(name)

    async def run() -> None:
        deadlines = Deadlines(resolution=0.01)
        deadlines.set("raises", 0.02, expire, "raises")
        deadlines.set("due", 0.05, expire, "due")
        deadlines.set("cleared", 0.05, expire, "cleared")
        deadlines.set("later", 30, expire, "later")
        deadlines.clear("cleared")
        for _ in range(500):
            if fired:
                break
            await asyncio.sleep(0.01)
        assert "later" in deadlines
        assert "due" not in deadlines
        deadlines.stop()

    asyncio.run(run())
    assert fired == ["due"]
