"""The credential goes on the wire, never into the flow; request heads are bounded while they arrive.

mitmproxy serializes a request from the flow's own `Request` object when its HTTP layer hands the
head to the server connection, and that moment is not a hook: on a reused connection it follows
the `request` hook at once, on a new one it follows the upstream TLS handshake. Every addon, a
saved flow (`mitmdump -w`) and mitmweb read that same object, at any time. So the flow only ever
holds a placeholder, and the HTTP layer hands the server connection a copy of the request that
carries the real value in place of it: nothing a hook, a dump or a crash can reach ever held it.

mitmproxy's HTTP/1 reader keeps an unfinished request head in one growing buffer, without limit
("FIXME: protect against header size DoS" in `Http1Server.read_headers`). The same layer looks at
that buffer after each read from the client: an unfinished head over `MAX_HEAD_BYTES` is answered
`431` and the connection closed, before the next read, so the memory stays within one read of
the limit, with or without a proxy login.

A request a boundary holds until it has judged the body (the record's `held`) must not leave
before that verdict, yet mitmproxy's HTTP stream starts streaming a request on its own once the
body passes `stream_large_bodies` (SafeOptions refuses such a setting; another addon may still
set `stream`). Such a request is answered instead of streamed, and no held request's head ever
gets the credential.

A credentialed request that another addon moved after its verdict (`addons.moves`) is refused
when mitmproxy picks its server connection, before any opens, and its head never gets the
credential.

`Wire` decides each of these; `mitmproxy_internals.extend_http_layers` gives every HTTP layer
mitmproxy builds the mechanics that ask it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mitmproxy import connection, http
from mitmproxy.proxy import layer

from proxy_addon.addons.mitmproxy_internals import extend_http_layers
from proxy_addon.addons.moves import moved
from proxy_addon.addons.replies import made
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import MAX_HEAD_BYTES, Refusal, message

logger = logging.getLogger(__name__)

HELD_STREAMED = "a request held for its verdict began to stream; refused"
"""The flow's error, for the log. The reply has a text of its own: `UpstreamFaults` swaps the error
page whose text is the flow's error for an upstream-fault page, and this is none."""
HELD_REPLY = (
    "atlassian-auth-proxy: this request's body must be judged before it is sent, and mitmproxy began to stream it "
    "(stream_large_bodies, or another addon); it was not sent"
)

MOVED = "a credentialed request was moved after its verdict; refused"
"""The flow's error, for the log; the reply is `Refusal.MOVED`'s text."""

WireCredential = Callable[[http.HTTPFlow], str | None]
"""The Authorization value a flow's request carries on the wire, or None to send it as the flow holds it."""


def head_too_large() -> http.Response:
    return made(Refusal.HEAD_UNFINISHED, limit=MAX_HEAD_BYTES)


class Wire:
    """What every HTTP layer mitmproxy builds sends and refuses; `credential_of` is the credential's source."""

    head_limit = MAX_HEAD_BYTES

    def __init__(self, credential_of: WireCredential) -> None:
        self.credential_of = credential_of

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        extend_http_layers(nextlayer, self)

    def credential(self, flow: http.HTTPFlow) -> str | None:
        if FlowRecord.of(flow.metadata).held:
            return None
        return self.credential_of(flow)

    def head_overflow(self, client: connection.Client, reading_head: bool) -> http.Response | None:
        peer = client.peername
        logger.info(
            "closing a client that sent more than %d bytes of request head (%s)", MAX_HEAD_BYTES, peer and peer[0]
        )
        return head_too_large() if reading_head else None

    def stream_refusal(self, flow: http.HTTPFlow) -> tuple[str, str] | None:
        record = FlowRecord.of(flow.metadata)
        if not record.held:
            return None
        record.decision = Decision.UNDECIDED
        return HELD_STREAMED, HELD_REPLY

    def send_refusal(self, flow: http.HTTPFlow) -> tuple[str, str] | None:
        record = FlowRecord.of(flow.metadata)
        if record.decision is not Decision.INJECT or (what := moved(flow)) is None:
            return None
        record.decision = Decision.MOVED
        host = record.host or flow.request.host
        logger.warning(
            "refused a request for %s: %s changed after the proxy decided where its credentials go", host, what
        )
        return MOVED, message(Refusal.MOVED, what=what, host=host)
