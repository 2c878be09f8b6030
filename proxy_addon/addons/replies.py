"""The one writer of the proxy's own answers: short, naming the host and what happened, never a secret.

Every hook that answers a request itself calls `refuse`, with a `Refusal` of `policy.refusals`
and the facts its text needs; no other code sets `flow.response` (a test checks the source).
So every local answer is made the same way: the decision on the flow's record, no credential
left in the flow, streaming off, the status, text and headers of the table. The one answer that
is the site's own yet written here is a request's answer when the proxy sent it again
(`answer_again`); the one that is mitmproxy's own is the 200 to a CONNECT answered before its
connection opens (`connected`).
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


def answer_again(flow: http.HTTPFlow, status: int, reason: str, fields: list[tuple[str, str]], body: bytes) -> None:
    """The site's answer to a request the proxy sent again itself, in place of the answer it replaces.

    A GET or HEAD whose minted access token the gateway refused goes again with a new one
    (`addons.token_verdicts`); its client gets that answer instead of the 401. Set-Cookie stays
    out, as on every answer to a credential, and so do the fields of the proxy's own connection.
    """
    refused = flow.response
    headers = http.Headers(
        [(name.encode("latin-1"), value.encode("latin-1")) for name, value in fields if name.lower() not in NOT_RELAYED]
    )
    if flow.request.method != "HEAD":
        headers["content-length"] = str(len(body))
    version = refused.data.http_version if refused is not None else b"HTTP/1.1"
    now = time.time()
    flow.response = http.Response(version, status, reason.encode("latin-1"), headers, body, None, now, now)


def connected(flow: http.HTTPFlow) -> None:
    """Answer a CONNECT as mitmproxy itself does (200, no header fields), so it does not open the upstream
    connection first (`addons.gateway_connect`; `addons.upstream_pool`, so that the connection opens when the
    first request needs it and can be a warm one)."""
    now = time.time()
    version = flow.request.data.http_version
    flow.response = http.Response(version, 200, b"Connection established", http.Headers(), b"", None, now, now)


NOT_RELAYED = frozenset(
    {"set-cookie", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}
)
"""Fields of an answer the proxy received itself that never reach the client."""


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
        "message": f"atlassian-auth-proxy: {text}" if reply.named else text,
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
