"""Upstream faults: the client gets a short 502/504 naming the host and the kind of failure.

Three kinds of failure reach this module:
- The upstream TLS handshake failed (certificate not trusted): mitmproxy learns this when the
  tunnel opens, before any request, so the request is answered in `requestheaders` and never
  gets credentials. When the connection opens only for the request (the upstream pool answered
  the CONNECT, or a client's connection was closed and reopened), the failure comes through the
  `error` hook instead: the same page, and the same decision, `refused-untrusted-upstream`.
- The upstream connection broke while the request was under way (reset, closed mid-response):
  mitmproxy answers from its own error path, whose page carries mitmproxy's internal message,
  and `flow.response` set in the `error` hook is ignored. `ErrorPages` swaps that page for ours.
- The upstream accepted the request and went silent: mitmproxy has no per-request timeout, and
  `flow.kill()` does not reach a flow waiting for its response (mitmproxy issue #4711), so after
  `timeout` seconds the upstream connection is closed, which makes mitmproxy take its error path.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable

from mitmproxy import http

from proxy_addon.addons.deadlines import Deadlines
from proxy_addon.addons.mitmproxy_internals import close_connection, close_handshaking, replace_error_pages
from proxy_addon.addons.prepared import DEFAULTS, Prepared
from proxy_addon.addons.replies import made, refuse
from proxy_addon.policy.failures import UNTRUSTED_CERTIFICATE, failure_kind
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import Refusal

logger = logging.getLogger(__name__)


class ErrorPages:
    """Replaces mitmproxy's error page for the failures `register`ed from the `error` hook.

    mitmproxy runs each hook in a task of its own and, once the hook returns, continues the
    flow in that same task: the `error` hook, then rendering the page from the message it
    stored in `flow.error.msg` (`mitmproxy_internals.replace_error_pages` makes that rendering
    ask `take`). A context variable set in the hook is therefore seen by exactly that rendering,
    and by no other flow's. Pages nobody registered (client errors) are left as mitmproxy makes them.
    """

    def __init__(self) -> None:
        self._page: contextvars.ContextVar[tuple[str, http.Response] | None] = contextvars.ContextVar(
            "atlassian_auth_proxy_error_page", default=None
        )
        self._restore: Callable[[], None] | None = None

    def register(self, message: str, response: http.Response) -> None:
        self._page.set((message, response))

    def take(self, message: str) -> http.Response | None:
        entry = self._page.get()
        if entry is None or entry[0] is not message:
            return None
        self._page.set(None)
        return entry[1]

    def install(self) -> None:
        if self._restore is None:
            self._restore = replace_error_pages(self.take)

    def uninstall(self) -> None:
        if self._restore is not None:
            self._restore()
            self._restore = None


class UpstreamFaults:
    """Answers upstream failures with a page naming the host and the kind of failure, and cuts off an
    upstream that stalls."""

    def __init__(self) -> None:
        self.timeout = DEFAULTS.upstream_timeout
        self.pages = ErrorPages()
        self._timers = Deadlines()

    def use(self, prepared: Prepared) -> None:
        self.timeout = prepared.settings.upstream_timeout

    def running(self) -> None:
        self.pages.install()

    def done(self) -> None:
        self.pages.uninstall()
        self._timers.stop()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        server = flow.server_conn
        if flow.response is None and server.error and server.tls and not server.tls_established:
            refuse(flow, Refusal.UNTRUSTED_UPSTREAM, host=flow.request.host, kind=failure_kind(server.error))

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is None:
            self._timers.set(flow.id, self.timeout, self._expire, flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._stop_timer(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._stop_timer(flow)
        if flow.error is None:
            return
        message = flow.error.msg
        record, kind = FlowRecord.of(flow.metadata), failure_kind(message)
        if record.timed_out:
            refusal = Refusal.UPSTREAM_TIMEOUT
        elif kind == UNTRUSTED_CERTIFICATE:
            refusal = Refusal.UNTRUSTED_UPSTREAM
            record.decision = Decision.UNTRUSTED_UPSTREAM  # a handshake failed: nothing of the request left
        else:
            refusal = Refusal.UPSTREAM_FAILED
        page = made(refusal, host=flow.request.host, kind=kind, timeout=self.timeout)
        self.pages.register(message, page)

    def _stop_timer(self, flow: http.HTTPFlow) -> None:
        self._timers.clear(flow.id)

    def _expire(self, flow: http.HTTPFlow) -> None:
        FlowRecord.of(flow.metadata).timed_out = True
        address = (flow.request.host, flow.request.port)
        if close_connection(flow.client_conn, flow.server_conn) or close_handshaking(flow.client_conn, address):
            logger.warning("%s did not answer within %g s; closed its connection", flow.request.host, self.timeout)
