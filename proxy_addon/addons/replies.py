"""The one writer of the proxy's own answers: short, naming the host and what happened, never a secret.

Every hook that answers a request itself calls `refuse`, with a `Refusal` of `policy.refusals`
and the facts its text needs (the upstream pool's early answer to a CONNECT is `established`);
no other code sets `flow.response` (a test checks the source).
So every local answer is made the same way: the decision on the flow's record, no credential
left in the flow, streaming off, the status, text and headers of the table.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mitmproxy import http

from proxy_addon.addons import fields
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import REFUSALS, Refusal, message


def refuse(flow: http.HTTPFlow, refusal: Refusal, **facts: Any) -> None:
    """Answer `flow` locally with `refusal`: nothing of the request goes to the site.

    The client's credentials and the injected placeholder leave the flow (a saved flow keeps
    none), and `stream` is cleared: `Streaming` may have set it, and mitmproxy cannot answer a
    request it streams.
    """
    decision = REFUSALS[refusal].decision
    _withdraw(flow, decision)
    flow.request.stream = False
    flow.response = made(refusal, **facts)


def established(flow: http.HTTPFlow) -> None:
    """Answer a CONNECT as mitmproxy itself would once connected (200, no headers), before it connects.

    mitmproxy opens the upstream connection as soon as a CONNECT arrives, unless a hook answered
    it: the upstream pool (addons/upstream_pool.py) answers for a host it holds warm connections
    for, so the connection opens when the first request needs it and can be a warm one.
    """
    now = time.time()
    flow.response = http.Response(
        flow.request.data.http_version, 200, b"Connection established", http.Headers(), b"", None, now, now
    )


def cut_off(flow: http.HTTPFlow) -> None:
    """After the site answered, a check failed: the stream is closed instead (the site's body would
    overwrite a local answer now), and the flow keeps no credential."""
    _withdraw(flow, Decision.UNDECIDED)
    flow.kill()


def _withdraw(flow: http.HTTPFlow, decision: Decision | None) -> None:
    if decision is not None:
        FlowRecord.of(flow.metadata).decision = decision
    fields.drop(flow.request.headers, fields.CREDENTIALS)


def made(refusal: Refusal, **facts: Any) -> http.Response:
    """The answer `refusal` gives, its texts filled from `facts`; for the error pages mitmproxy renders itself."""
    reply = REFUSALS[refusal]
    text = message(refusal, **facts)
    headers = {name: filled for name, value in reply.headers if (filled := value.format(**facts))}
    if reply.error is None:
        response = proxy_reply(reply.status, text)
        response.headers.update(headers)
        return response
    body = {
        "error": reply.error,
        "message": f"atlassian-auth-proxy: {text}",
        **{name: facts[name] for name in reply.body_fields},
    }
    return http.Response.make(reply.status, json.dumps(body), {"Content-Type": "application/json", **headers})


def proxy_reply(status: int, message: str) -> http.Response:
    """A plain-text answer of the proxy's: `atlassian-auth-proxy: <message>`, one line."""
    return http.Response.make(
        status,
        f"atlassian-auth-proxy: {message}\n",
        {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"},
    )
