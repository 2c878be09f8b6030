"""The replies the proxy itself makes: short, naming the host and what happened, never a secret."""

from __future__ import annotations

import json

from mitmproxy import http


def proxy_reply(status: int, message: str) -> http.Response:
    return http.Response.make(
        status,
        f"atlassian-auth-proxy: {message}\n",
        {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"},
    )


def backed_off_reply(host: str, retry_after: int) -> http.Response:
    """The local 401 while `host` is paused after rejecting the token; JSON, as Atlassian's own errors are."""
    message = (
        f"atlassian-auth-proxy: {host} rejected the API token (it may be revoked or expired); "
        f"it is not sent again for {retry_after} s. Replace it: atlassian-auth-proxy login, or the token file."
    )
    return http.Response.make(
        401,
        json.dumps({"error": "token_rejected", "message": message, "retry_after": retry_after}),
        {"Content-Type": "application/json", "Retry-After": str(retry_after)},
    )


def rate_limited_reply(client: str, limit: int, retry_after: int) -> http.Response:
    """The local 429 for a client past its `requests_per_minute`; nothing of the request went upstream."""
    response = proxy_reply(
        429, f"client {client} is past its limit of {limit} requests per minute; retry in {retry_after} s"
    )
    response.headers["Retry-After"] = str(retry_after)
    return response
