"""Bodies of unknown length go through as they arrive, in both directions.

mitmproxy streams a body only once it knows it is larger than `stream_large_bodies`: from a
Content-Length, or after buffering that much of a body of unknown length (chunked, read until
close, HTTP/2 without content-length). A slow stream of small events (MCP's streamable HTTP, a
long poll) never gets there, so the client would see nothing until the site closes it. Known
bodies stay as they are: small ones buffered, large ones streamed by `stream_large_bodies`.

This hook only flips `stream`; it runs after the injector and the token verdicts, whose work
(credentials in `requestheaders`; Set-Cookie removal and the token verdict in `responseheaders`)
is done on the head alone and so is the same for streamed and buffered bodies. The one answer
it leaves buffered is a gateway 401 the proxy is about to answer again (the record's `replay`).
"""

from __future__ import annotations

from mitmproxy import http

from proxy_addon.addons import fields
from proxy_addon.policy.record import FlowRecord

EVENT_STREAM = "text/event-stream"
CONTENT_TYPE = frozenset({b"content-type"})


def length_unknown(message: http.Message) -> bool:
    """No Content-Length: the body ends with the last chunk, the stream, or the connection."""
    return not fields.present(message.headers, b"content-length")


def request_body_open(request: http.Request) -> bool:
    """A request body whose end is not known yet. An HTTP/1 request has a body of unknown length
    only when it is chunked: without Content-Length or Transfer-Encoding it has none (RFC 9112,
    6.3), and streaming every plain GET would only send mitmproxy down its slower path."""
    if request.is_http2 or request.is_http3:
        return length_unknown(request)
    return fields.present(request.headers, b"transfer-encoding")


def is_event_stream(response: http.Response) -> bool:
    content_type = fields.values(response.headers, CONTENT_TYPE).get("content-type", "")
    return content_type.partition(";")[0].strip().lower() == EVENT_STREAM


class Streaming:
    """Sets `stream` on bodies whose end nobody knows in advance."""

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is None and request_body_open(flow.request):
            flow.request.stream = True

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if (
            response is not None
            and (length_unknown(response) or is_event_stream(response))
            and not FlowRecord.of(flow.metadata).replay
        ):
            response.stream = True
