"""Host names and host patterns: the one place that decides whether a host gets credentials.

Everything here is pure so it can be tested exhaustively. A host matches only if it is a
plain ASCII DNS name: anything a resolver might reinterpret (Unicode, escapes, empty labels)
never matches, so the string we compare is the name that is actually looked up.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

HTTPS_PORT = 443
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")
_MAX_NAME = 253


class HostPatternError(ValueError):
    """A host pattern that is neither an exact name nor `*.` followed by a domain."""


def normalize_host(host: str | None) -> str | None:
    """Return the comparable form of `host` (lower case, one trailing dot dropped).

    None when `host` is not a plain DNS name, so callers cannot accidentally match it. The
    verdict normalizes each request's names once and compares only normalized names after.
    """
    if not host:
        return None
    name = host.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > _MAX_NAME or not name.isascii():
        return None
    if not _NAME.fullmatch(name) or name.rpartition(".")[2].isdigit():
        return None
    return name


@dataclass(frozen=True, slots=True)
class HostPattern:
    """An exact host name, or (wildcard) every proper subdomain of `domain`; on one HTTPS port."""

    domain: str
    wildcard: bool
    port: int = HTTPS_PORT

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        raw = text.strip()
        host, port = split_authority(raw)
        wildcard = host.startswith("*.")
        name = normalize_host(host[2:] if wildcard else host)
        if name is None or port == -1 or port == 0:
            raise HostPatternError(
                f"{text!r} is not a host pattern: use an exact name such as acme.atlassian.net, "
                "or *. and a domain such as *.atlassian.net, optionally with :port"
            )
        return cls(name, wildcard, HTTPS_PORT if port is None else port)

    def matches(self, name: str) -> bool:
        """`name` must already be normalized."""
        if self.wildcard:
            return name.endswith("." + self.domain)
        return name == self.domain

    def __str__(self) -> str:
        text = f"*.{self.domain}" if self.wildcard else self.domain
        return text if self.port == HTTPS_PORT else f"{text}:{self.port}"


def split_authority(authority: str) -> tuple[str, int | None]:
    """Split `host[:port]` (as in a Host header or `:authority`); port None when absent.

    A malformed port yields port -1, which never equals a real port; `malformed_authority` says
    so before any comparison.
    """
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else None
    else:
        host, sep, port_text = authority.rpartition(":")
        if not sep:
            host, port_text = authority, None
    if port_text is None:
        return host, None
    # isdigit alone admits Unicode digits such as "²", which int() then refuses.
    port = int(port_text) if port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 else -1
    return host, port if port < 65536 else -1


def is_loopback_address(address: str | None) -> bool:
    """Is a peer address loopback (127.0.0.0/8, ::1, or an IPv4-mapped loopback)? Anything else is not."""
    try:
        ip = ipaddress.ip_address((address or "").partition("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def malformed_authority(authority: str) -> bool:
    """A `host[:port]` no server could mean: no host, an unclosed `[`, or a port that is not 1-65535 in ASCII digits."""
    if authority.startswith("[") and "]" not in authority:
        return True
    host, port = split_authority(authority)
    return not host or port in (-1, 0)


def path_authority(path: str) -> str | None:
    """The authority a request target names itself, or None for origin-form (`/...`) and `*`.

    HTTP/2 lets a client put an absolute URL into `:path`; an HTTP/1 upstream leg then sends it
    as the request line, so it names a destination just as `Host` does. A target that is
    neither origin-form nor an absolute URL yields "", which `malformed_authority` refuses.
    """
    if path.startswith("/") or path == "*":
        return None
    scheme, sep, rest = path.partition("://")
    if not sep or not scheme:
        return ""
    return rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
