"""EXPERIMENT, not a feature: what warm upstream connections would buy a curl loop through a proxy.

Loaded by `bench/run.py --warm-pool` into plain mitmdump with `connection_strategy=lazy`, so
mitmproxy never opens an upstream connection of its own: each request is answered from one
shared httpx client whose connections (HTTP/2 by default) stay open across client
connections. It injects no credentials, buffers whole bodies and checks nothing beyond the
upstream certificate; it exists only to measure the latency floor.

Environment: BENCH_CONNECT_TO (`PATTERN=HOST:PORT`, the TCP target for every request),
BENCH_UPSTREAM_CA (trust bundle), BENCH_H2 ("0" for an HTTP/1.1 pool).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import httpcore
import httpx
from mitmproxy import http

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host"}
NOT_COPIED_BACK = HOP_BY_HOP | {"content-length", "content-encoding"}


class RedirectBackend(httpcore.AnyIOBackend):
    """Like CONNECT_TO: only the TCP target changes; SNI and certificate checks keep the URL's host.

    (anyio keeps the original port after getaddrinfo, so the proxy's resolver trick cannot
    redirect httpx; the network backend can.)
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        return await super().connect_tcp(self.host, self.port, **kwargs)


def make_client() -> httpx.AsyncClient:
    host, port = os.environ["BENCH_CONNECT_TO"].partition("=")[2].rsplit(":", 1)
    context = ssl.create_default_context(cafile=os.environ["BENCH_UPSTREAM_CA"])
    h2 = os.environ.get("BENCH_H2", "1") == "1"
    transport = httpx.AsyncHTTPTransport(http2=h2, verify=context)
    transport._pool = httpcore.AsyncConnectionPool(  # the public API has no network_backend knob
        ssl_context=context, http1=True, http2=h2, keepalive_expiry=60, network_backend=RedirectBackend(host, int(port))
    )
    return httpx.AsyncClient(transport=transport, timeout=30)


class WarmPool:
    def __init__(self) -> None:
        self.client: httpx.AsyncClient | None = None

    def running(self) -> None:
        self.client = make_client()

    async def request(self, flow: http.HTTPFlow) -> None:
        assert self.client is not None
        request = flow.request
        headers = [(k, v) for k, v in request.headers.items(multi=True) if k.lower() not in HOP_BY_HOP]
        reply = await self.client.request(request.method, request.url, headers=headers, content=request.raw_content)
        back = [(k.encode(), v.encode()) for k, v in reply.headers.multi_items() if k.lower() not in NOT_COPIED_BACK]
        flow.response = http.Response.make(reply.status_code, reply.content, back)


addons = [WarmPool()]
