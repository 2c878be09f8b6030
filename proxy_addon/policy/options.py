"""Which mitmproxy options would break a promise: pure checks the SafeOptions hook applies."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def logging_problem(flow_detail: int, proxy_debug: bool) -> str | None:
    """Why these mitmproxy logging options would leak the credential, or None."""
    if flow_detail >= 2:
        return f"flow_detail={flow_detail} would print the injected Authorization header: use 0 or 1"
    if proxy_debug:
        return "proxy_debug would log raw request bytes including the Authorization header: turn it off"
    return None


def listen_problem(listen_host: str, proxy_auth: bool) -> str | None:
    """Why listening on `listen_host` would make an open credential relay, or None.

    With proxy authentication, only clients that know the proxy login can use it, so any
    listen address is allowed.
    """
    if proxy_auth or is_loopback(listen_host):
        return None
    return (
        f"refusing to listen on {listen_host or 'every interface'}: anyone who can reach the proxy would act "
        "as you on Atlassian; listen on 127.0.0.1 (ATLASSIAN_PROXY_LISTEN_HOST or --listen-host), "
        "or require a login with ATLASSIAN_PROXY_PROXY_AUTH"
    )
