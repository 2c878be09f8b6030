"""Which mitmproxy options would break a promise: pure checks the SafeOptions hook applies."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

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


REWRITING_OPTIONS = {
    "map_remote": "sends requests to other URLs",
    "map_local": "answers requests from local files",
    "modify_body": "rewrites request bodies",
    "modify_headers": "rewrites request headers",
    "server_replay": "answers requests from saved flows",
    "stickyauth": "adds an earlier request's Authorization to later ones",
    "stickycookie": "adds stored cookies to requests",
}
"""mitmdump's options whose addons change or answer a request in its `request` hooks, after the verdict
made on its head (and a boundary's judgement) and where nothing of this proxy looks again: they are
refused when set. (`anticache` and `anticomp` stay allowed: they change only caching and compression
headers, which neither the verdict nor a boundary reads. `client_replay` sends saved requests,
each decided again.)"""
SPEC_OPTIONS = frozenset({"modify_headers", "modify_body"})
"""Options of `[/flow-filter]/subject/replacement` specs: only those that can change a request are refused."""
RESPONSE_ONLY = "~s"
"""The filter that limits a `modify_headers`/`modify_body` spec to responses: such a spec is allowed."""


def rewrite_problem(options: Mapping[str, Sequence[str] | str | None]) -> str | None:
    """Why the set ones of `REWRITING_OPTIONS` (name -> value) would change requests after their verdict, or None.

    Never echoes a value: a spec may hold a secret (a header it adds).
    """
    for name, value in options.items():
        if name in SPEC_OPTIONS:
            if any(applies_to_requests(spec) for spec in value or ()):
                return (
                    f"{name} {REWRITING_OPTIONS[name]} after the proxy decided where their credentials go: "
                    f"give each spec the filter {RESPONSE_ONLY} (responses only), or remove it"
                )
        elif value:
            return f"{name} {REWRITING_OPTIONS[name]} after the proxy decided where their credentials go: remove it"
    return None


def applies_to_requests(spec: str) -> bool:
    """Whether a `[/flow-filter]/subject/replacement` spec can change a request: unless its filter is `~s`.

    Split as mitmproxy's `parse_spec` splits it: the first character is the separator; two parts
    have no filter (every flow), three start with one.
    """
    separator, rest = spec[:1], spec[1:]
    parts = rest.split(separator, 2) if separator else []
    return len(parts) != 3 or parts[0].strip() != RESPONSE_ONLY
