"""A credentialed request goes only where its verdict sent it, as its boundary let it go.

The verdict is made on the request head (`requestheaders`) and a boundary's judgement by the
`request` hook; the credential is added when mitmproxy hands the head to a server connection.
Between the two, any addon may move the request: under `mitmdump -s`, mitmproxy's own
`map_remote` (which `SafeOptions` refuses) or another script's `request` hook. So the injector
keeps the destination it decided on the flow's record, a boundary the method and path it let
go, and the wire compares them with the request as it is about to leave (`moved`): a mismatch
gets no credential and is refused before any connection for it opens.

Each comparison costs a few hundred nanoseconds (three fields formatted into one string), once
when the server connection is chosen and once when the credential is added.
"""

from __future__ import annotations

from mitmproxy import http

from proxy_addon.policy.record import FlowRecord


def destination_of(request: http.Request) -> str:
    return f"{request.scheme}://{request.host}:{request.port}"


def route_of(request: http.Request) -> str:
    return f"{request.method} {request.path}"


def remember_destination(flow: http.HTTPFlow) -> None:
    """The injector decided to credential `flow` as it now is: keep where it goes."""
    FlowRecord.of(flow.metadata).destination = destination_of(flow.request)


def remember_route(flow: http.HTTPFlow) -> None:
    """A boundary let `flow` go as it now is: keep its method and path."""
    FlowRecord.of(flow.metadata).route = route_of(flow.request)


def moved(flow: http.HTTPFlow) -> str | None:
    """What of a credentialed request changed since it was decided ("the destination", "the method or path"),
    or None. A request without a recorded destination was never decided to get one: it has moved from it."""
    record = FlowRecord.of(flow.metadata)
    if record.destination != destination_of(flow.request):
        return "the destination"
    route = record.route
    if route is not None and route != route_of(flow.request):
        return "the method or path"
    return None
