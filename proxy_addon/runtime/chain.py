"""One addon for mitmproxy to call: the root runs its children's hooks itself, in order.

For every event, mitmproxy walks an addon's whole tree (each `addons` attribute) and looks the
hook up on every node, hit or miss; a request raises about eight events (four hooks, each
followed by `update`). With fifteen children that walk was a measurable part of the proxy's
own cost per request (bench/README.md). So the root exposes no `addons` tree: `chain()` gives it,
per hook, one method that calls the children's implementations, collected once.

The semantics stay mitmproxy's: the root's own hook first, then the children in order, async
hooks awaited, and one error handler around the whole tree, as mitmproxy has around a tree (so a
child that raises skips the later ones for that event; every child is `Guarded` for that reason).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import mitmproxy.addonmanager  # defines the lifecycle hooks (load, configure, running, done)
import mitmproxy.proxy.layers  # noqa: F401 - defines the protocol hooks
from mitmproxy import hooks


def chain(owner: object, children: Sequence[object]) -> None:
    """Give `owner` one method per hook that runs its own (if any), then each child's."""
    for name in hooks.all_hooks:
        methods = [m for addon in (owner, *children) if callable(m := getattr(addon, name, None))]
        if methods:
            setattr(owner, name, _run_all(methods))


def _run_all(methods: list[Callable[..., Any]]) -> Callable[..., Any]:
    if len(methods) == 1:
        return methods[0]
    if any(inspect.iscoroutinefunction(m) for m in methods):

        async def run_all_async(*args: Any) -> None:
            for method in methods:
                result = method(*args)
                if result is not None and inspect.isawaitable(result):
                    await result

        return run_all_async

    def run_all(*args: Any) -> None:
        for method in methods:
            method(*args)

    return run_all
