"""The root runs its children's hooks itself: in order, async ones awaited, after its own."""

from __future__ import annotations

import asyncio

from mitmproxy.proxy.layers.http import HttpRequestHeadersHook
from mitmproxy.test import taddons, tflow

from proxy_addon.runtime.chain import chain


def dispatch(root: object) -> None:
    """One requestheaders event through mitmproxy's own addon manager."""

    async def run() -> None:
        with taddons.context() as tctx:
            tctx.master.addons.add(root)
            await tctx.master.addons.handle_lifecycle(HttpRequestHeadersHook(tflow.tflow()))

    asyncio.run(run())


class Recorder:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    def requestheaders(self, flow) -> None:
        self.calls.append(self.name)

    def not_a_hook(self) -> None:
        self.calls.append("not a hook")


class AsyncRecorder(Recorder):
    async def requestheaders(self, flow) -> None:
        await asyncio.sleep(0)
        self.calls.append(self.name)


class ReturnsAwaitable(Recorder):
    """A plain function that hands back what to wait on, as a `Guarded` child's hook does."""

    def requestheaders(self, flow) -> None:
        return AsyncRecorder.requestheaders(self, flow)


class Root:
    def __init__(self, calls: list[str], children: list[object]) -> None:
        self.calls = calls
        chain(self, children)

    def requestheaders(self, flow) -> None:
        self.calls.append("root")


def test_children_run_in_order_after_the_root_and_what_they_wait_on_is_awaited():
    calls: list[str] = []
    children = [Recorder("a", calls), ReturnsAwaitable("b", calls), Recorder("c", calls), AsyncRecorder("d", calls)]
    root = Root(calls, children)
    dispatch(root)
    assert calls == ["root", "a", "b", "c", "d"], "a check that waits must not be dropped"
    assert not hasattr(root, "addons"), "mitmproxy would walk the children a second time"
    assert not hasattr(root, "not_a_hook")


def test_a_hook_only_children_have_reaches_them():
    calls: list[str] = []

    class Bare:
        def __init__(self) -> None:
            chain(self, [Recorder("a", calls)])

    dispatch(Bare())
    assert calls == ["a"]
