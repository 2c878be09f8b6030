"""Fail closed: a security hook of ours that raises refuses its request instead of vanishing.

mitmproxy calls one hook on the root addon and all its children inside one error handler: when
one child raises, the hook is skipped for every later child, the error is logged, and the
request simply goes on. So a check that raises would not refuse; it would vanish. Two parts
close that gap:

- `Guarded` wraps each child: when one of its security hooks raises, the flow is answered with
  a short refusal, the client's and the injected credentials are dropped from it, and the later
  children still run (they see the refusal, as after any other one).
- `FailClosed` runs after every check and refuses what no check completed: a request without a
  verdict, or, with a proxy login or `[[clients]]`, a CONNECT or request without an
  authenticated user. The refusal is the default; only a completed check lifts it.

The exception text never reaches the client or the log (it may quote a header); the log names
the hook, the exception type and where it was raised.
"""

from __future__ import annotations

import functools
import inspect
import logging
import traceback
from collections.abc import Awaitable
from typing import Any

from mitmproxy import http

from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.replies import cut_off, refuse
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import Refusal

logger = logging.getLogger(__name__)

SECURITY_HOOKS = frozenset({"http_connect", "requestheaders", "request", "responseheaders"})
"""The hooks that decide whether and how a request goes on; `responseheaders` redacts."""


class Guarded:
    """A child addon whose security hooks refuse the flow when they raise.

    The child's methods (its hooks among them) are copied onto the wrapper once, at
    construction (the security hooks wrapped), so mitmproxy's per-request lookup of every
    hook on every addon finds them, or misses, as fast as on the child itself; a
    `__getattr__` would run on every miss.
    """

    def __init__(self, addon: Any, refusal: Refusal = Refusal.UNDECIDED) -> None:
        self.addon = addon
        self.refusal = refusal
        """The answer when a hook raises before the site answered; after, the stream is cut off."""
        self.name = getattr(addon, "name", None) or type(addon).__name__.lower()
        for attribute in dir(type(addon)):
            method = getattr(addon, attribute)
            if not attribute.startswith("_") and callable(method):
                wrapped = functools.partial(self._call, attribute) if attribute in SECURITY_HOOKS else method
                setattr(self, attribute, wrapped)
        if hasattr(addon, "addons"):
            self.addons = addon.addons

    def _call(self, hook: str, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Run the child's hook; when it returns an awaitable (an `async def` hook, or a sync one that
        has to wait for something), hand mitmproxy one that fails closed the same way.

        mitmproxy awaits what a hook returns; returning nothing here for a coroutine would drop
        it un-awaited, and its check would never run: a request that passes unchecked.
        """
        try:
            result = getattr(self.addon, hook)(flow)
        except Exception as e:  # any failure of a check refuses; none may let the request pass
            self._refuse(hook, flow, e)
            return None
        if result is None:  # the usual case; inspect.isawaitable goes through an ABC check
            return None
        return self._finish(hook, flow, result) if inspect.isawaitable(result) else None

    async def _finish(self, hook: str, flow: http.HTTPFlow, pending: Awaitable[Any]) -> None:
        try:
            await pending
        except Exception as e:
            self._refuse(hook, flow, e)

    def _refuse(self, hook: str, flow: http.HTTPFlow, e: Exception) -> None:
        frame = traceback.extract_tb(e.__traceback__)[-1]
        logger.error(
            "%s.%s failed (%s at %s:%s); the request was refused",
            self.name,
            hook,
            type(e).__name__,
            frame.filename.rpartition("/")[2],
            frame.lineno,
        )
        if hook == "responseheaders":
            cut_off(flow)
        else:
            refuse(flow, self.refusal)


class FailClosed:
    """Runs after every check: refuses a CONNECT or request that no check let through."""

    def __init__(self) -> None:
        self.login_required = False

    def use(self, prepared: Prepared) -> None:
        self.login_required = prepared.login_required

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response is None and self.login_required and FlowRecord.of(flow.metadata).user is None:
            refuse(flow, Refusal.UNDECIDED_LOGIN)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        record = FlowRecord.of(flow.metadata)
        if self.login_required and record.user is None:
            refuse(flow, Refusal.UNDECIDED_LOGIN)
        elif record.decision is Decision.NONE:
            refuse(flow, Refusal.UNDECIDED)
