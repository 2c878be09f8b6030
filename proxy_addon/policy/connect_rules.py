"""CONNECT_TO rules: which hosts' TCP connections go elsewhere, like curl's --connect-to."""

from __future__ import annotations

from dataclasses import dataclass

from proxy_addon.policy.hosts import HostPattern, normalize_host


@dataclass(frozen=True, slots=True)
class ConnectToRule:
    """Open the TCP connection for hosts matching `pattern` to `host:port` instead."""

    pattern: HostPattern
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ConnectToRule:
        pattern_text, sep, target = text.strip().partition("=")
        host, colon, port_text = target.rpartition(":")
        host = host.strip("[]")
        if not sep or not colon or not host or not (port_text.isascii() and port_text.isdigit()):
            raise ValueError(f"{text!r} is not PATTERN=HOST:PORT (e.g. *.atlassian.net=127.0.0.1:8443)")
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError(f"{text!r} has port {port}, which is not between 1 and 65535")
        return cls(HostPattern.parse(pattern_text), host, port)


def find_rule(rules: tuple[ConnectToRule, ...], host: str) -> ConnectToRule | None:
    name = normalize_host(host)
    if name is None:
        return None
    return next((rule for rule in rules if rule.pattern.matches(name)), None)
