"""One addon for mitmproxy to call: the root runs its children's hooks itself, in order.

For every event, mitmproxy walks an addon's whole tree (each `addons` attribute) and looks the
hook up on every node, hit or miss; a request raises about eight events (four hooks, each
followed by `update`). With fifteen children that walk was a measurable part of the proxy's
own cost per request (bench/README.md). So the root exposes no `addons` tree: `chain()` gives it,
per hook, one method that calls the children's implementations, collected once.

The semantics stay mitmproxy's: the root's own hook first, then the children in order, whatever
a hook returns to wait on awaited (as mitmproxy's `invoke_addon` does), and one error handler
around the whole tree, as mitmproxy has around a tree (so a child that raises skips the later
ones for that event; every child is `Guarded` for that reason).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import mitmproxy.addonmanager  # defines the lifecycle hooks (load, configure, running, done)
import mitmproxy.proxy.layers  # noqa: F401 - defines the protocol hooks
from mitmproxy import hooks


def chain(owner: object, children: Sequence[object]) -> None:
    """Give `owner` one method per hook that runs its own (if any), then each child's."""
    for name in hooks.all_hooks:
        methods = [m for addon in (owner, *children) if callable(m := getattr(addon, name, None))]
        if methods:
            setattr(owner, name, methods[0] if len(methods) == 1 else _run_all(methods))


def _run_all(methods: list[Callable[..., Any]]) -> Callable[..., Any]:
    """Call each method in order; from the first that returns an awaitable on, await each.

    Whether a hook waits is known only from what it returns: a `Guarded` child's hook is a plain
    function that returns its child's coroutine. Dropping that coroutine would skip the check it
    holds, so the run goes on asynchronously from there; hooks that return nothing stay synchronous.
    """

    def run_all(*args: Any) -> Awaitable[None] | None:
        for index, method in enumerate(methods):
            result = method(*args)
            if result is not None and inspect.isawaitable(result):
                return _finish(result, methods[index + 1 :], args)
        return None

    return run_all


async def _finish(pending: Awaitable[Any], rest: list[Callable[..., Any]], args: tuple[Any, ...]) -> None:
    await pending
    for method in rest:
        result = method(*args)
        if result is not None and inspect.isawaitable(result):
            await result
