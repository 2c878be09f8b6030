"""Bodies whose end nobody knows in advance stream; known bodies and plain requests keep mitmproxy's way."""

from __future__ import annotations

import pytest
from mitmproxy import http
from mitmproxy.test import tflow, tutils

from proxy_addon.addons.streaming import Streaming


def request(http_version: str, **headers: str) -> http.HTTPFlow:
    f = tflow.tflow(req=tutils.treq(http_version=http_version.encode()))
    f.request.headers.clear()
    for name, value in headers.items():
        f.request.headers[name.replace("_", "-")] = value
    return f


@pytest.mark.parametrize(
    ("version", "headers", "streams"),
    [
        ("HTTP/1.1", {"transfer_encoding": "chunked"}, True),
        ("HTTP/1.1", {}, False),
        ("HTTP/1.1", {"content_length": "5"}, False),
        ("HTTP/2.0", {}, True),
        ("HTTP/2.0", {"content_length": "5"}, False),
    ],
)
def test_a_request_body_of_unknown_length_streams(version, headers, streams):
    f = request(version, **headers)
    Streaming().requestheaders(f)
    assert bool(f.request.stream) is streams


@pytest.mark.parametrize(
    ("headers", "streams"),
    [
        ({}, True),
        ({"content-length": "5"}, False),
        ({"content-length": "5", "content-type": "Text/Event-Stream; charset=utf-8"}, True),
    ],
)
def test_a_response_of_unknown_length_or_an_event_stream_streams(headers, streams):
    f = tflow.tflow()
    f.response = http.Response.make(200, b"", headers)
    del f.response.headers["content-length"]
    for name, value in headers.items():
        f.response.headers[name] = value
    Streaming().responseheaders(f)
    assert bool(f.response.stream) is streams


def test_an_answered_request_is_not_streamed():
    f = request("HTTP/1.1", transfer_encoding="chunked")
    f.response = http.Response.make(403)
    Streaming().requestheaders(f)
    assert not f.request.stream


def test_a_401_the_proxy_is_about_to_send_again_is_buffered_whatever_its_length():
    from proxy_addon.policy.record import FlowRecord

    f = tflow.tflow(resp=tutils.tresp(headers=http.Headers(content_type="text/event-stream")))
    FlowRecord.of(f.metadata).replay = True
    Streaming().responseheaders(f)
    assert f.response is not None
    assert not f.response.stream
