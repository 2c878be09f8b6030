"""Which mitmproxy options would break a promise: pure checks the SafeOptions hook applies."""

from __future__ import annotations

import ipaddress

from proxy_addon.policy.boundaries.body import MAX_BODY
from proxy_addon.policy.hosts import is_loopback_address


def is_loopback_listen_host(host: str) -> bool:
    """Is a listen host, as configured, loopback: `localhost` or a loopback address (`bound_problem` checks what
    the name really bound)."""
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

    With proxy authentication (PROXY_AUTH or `[[clients]]`), only clients that know a proxy
    login can use it, so any listen address is allowed.
    """
    if proxy_auth or is_loopback_listen_host(listen_host):
        return None
    return (
        f"refusing to listen on {listen_host or 'every interface'}: anyone who can reach the proxy would act "
        "as you on Atlassian; listen on 127.0.0.1 (ATLASSIAN_PROXY_LISTEN_HOST or --listen-host), "
        "or require a login with ATLASSIAN_PROXY_PROXY_AUTH or [[clients]]"
    )


CHECKED_MODES = frozenset({"regular", "reverse", "upstream"})
"""mitmproxy modes whose clients pass through our checks: they CONNECT or send plain requests."""


def mode_problem(modes: list[tuple[str, str]], proxy_auth: bool) -> str | None:
    """Why serving these mitmproxy modes, given as (type, real listen host), would break a promise.

    Each mode spec (`--mode regular@0.0.0.0:8080`) carries its own listen address, which
    overrides `listen_host`, so every one is checked. With a proxy login, only modes whose
    clients can send it are allowed: SOCKS5, transparent, WireGuard and local capture give
    tunnels that never ask for it.
    """
    for name, host in modes:
        if proxy_auth and name not in CHECKED_MODES:
            return (
                f"refusing mitmproxy mode {name}: its clients never send the proxy login "
                f"(ATLASSIAN_PROXY_PROXY_AUTH or [[clients]]); use {', '.join(sorted(CHECKED_MODES))}"
            )
        if problem := listen_problem(host, proxy_auth):
            return f"mode {name}: {problem}"
    return None


def bound_problem(addresses: list[str], proxy_auth: bool) -> str | None:
    """Why the addresses the servers really bound would make an open credential relay, or None.

    The mode specs can pass the check by name (`localhost`) and still bind another address, if
    the name resolves to one; this checks what the operating system actually gave.
    """
    if proxy_auth:
        return None
    for address in addresses:
        if not is_loopback_address(address):
            return (
                f"the proxy is listening on {address}, which is not a loopback address (the listen host resolved "
                "to it): anyone who can reach it would act as you on Atlassian; listen on 127.0.0.1, or require a "
                "login with ATLASSIAN_PROXY_PROXY_AUTH"
            )
    return None


def upstream_trust_problem(ssl_insecure: bool) -> str | None:
    """`ssl_insecure` would send the token to a server whose certificate nobody checked."""
    if ssl_insecure:
        return (
            "ssl_insecure would send the API token to servers with unverified certificates: turn it off and "
            "trust a private CA with ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE instead"
        )
    return None


def streaming_problem(setting: str, size: int | None) -> str | None:
    """Why streaming request bodies larger than `size` bytes (`stream_large_bodies`) would send a judged
    body before its verdict, or None.

    mitmproxy's HTTP layer streams a body once it knows it is larger than that, from its
    Content-Length or while buffering it: the head, the credential and the body then leave before
    the `request` hook, where the boundaries of `[[clients]]` judge bodies of up to `MAX_BODY`.
    """
    if size is None or size >= MAX_BODY:
        return None
    limit = f"{MAX_BODY >> 20}m" if MAX_BODY % (1 << 20) == 0 else f"{-(-MAX_BODY // 1024)}k"
    return (
        f"stream_large_bodies={setting} would send request bodies before the boundaries of [[clients]] judged "
        f"them (they read bodies of up to {limit}): set it to at least {limit}, or leave it unset"
    )
