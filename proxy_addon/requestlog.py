"""One log line per request: what happened, never a header value or a query value."""

from __future__ import annotations

import logging
import time

from mitmproxy import http

from proxy_addon.inject import DECISION_KEY

logger = logging.getLogger("atlassian_auth_proxy.requests")


def path_without_query_values(path: str) -> str:
    """`/search?jql=project%3DX&max=5` -> `/search?jql=…&max=…`: keys help, values may be private."""
    base, sep, query = path.partition("?")
    if not sep:
        return base
    keys = (part.partition("=")[0] for part in query.split("&") if part)
    return base + "?" + "&".join(f"{key}=…" for key in keys)


def describe(flow: http.HTTPFlow) -> str:
    request = flow.request
    end = flow.response.timestamp_end if flow.response and flow.response.timestamp_end else time.time()
    elapsed_ms = (end - request.timestamp_start) * 1000
    if flow.error:
        outcome = f"error ({flow.error.msg})"
    elif flow.response:
        outcome = str(flow.response.status_code)
    else:
        outcome = "error (unknown)"
    credentials = flow.metadata.get(DECISION_KEY, "none")
    return (
        f"{request.method} {request.scheme}://{request.host}:{request.port}"
        f"{path_without_query_values(request.path)} {outcome} {elapsed_ms:.0f}ms credentials={credentials}"
    )


class RequestLog:
    def response(self, flow: http.HTTPFlow) -> None:
        logger.info(describe(flow))

    def error(self, flow: http.HTTPFlow) -> None:
        logger.info(describe(flow))
