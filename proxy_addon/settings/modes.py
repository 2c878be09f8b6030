"""How the proxy is reached and how it reaches out: forward (default), reverse, via a corporate proxy.

- reverse: `run --reverse https://acme.atlassian.net` serves a plain-HTTP base URL on loopback
  for tools that cannot use a proxy or trust a CA; mitmproxy's reverse mode forwards to the
  site over TLS. The destination is fixed by configuration, never chosen by the client.
- upstream proxy: every upstream connection goes through `http://[user:pass@]host:port`
  (mitmproxy's upstream mode); its password is a secret like the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from proxy_addon.policy.hosts import normalize_host


@dataclass(frozen=True)
class ReverseTarget:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ReverseTarget:
        url = urlsplit(text.strip())
        host = normalize_host(url.hostname or "")
        if url.scheme != "https" or host is None or url.username or url.path not in ("", "/") or url.query:
            raise ValueError(f"{text!r} is not a site URL: use https://your-site.atlassian.net")
        return cls(host, url.port or 443)

    def mode(self) -> str:
        return f"reverse:https://{self.host}:{self.port}"


@dataclass(frozen=True)
class UpstreamProxy:
    """`repr` and `str` show no password."""

    host: str
    port: int
    user: str | None = None
    password: SecretStr | None = None

    @classmethod
    def parse(cls, text: str) -> UpstreamProxy:
        url = urlsplit(text.strip())
        try:
            port = url.port or 3128
        except ValueError:
            port = -1
        if url.scheme != "http" or not url.hostname or port <= 0 or url.path not in ("", "/"):
            raise ValueError("is not http://[user:password@]host:port (the password is not shown here)")
        user = unquote(url.username) if url.username else None
        password = SecretStr(unquote(url.password)) if url.password is not None else None
        if user is not None and ":" in user:
            raise ValueError("has a ':' in the user name, which Basic proxy auth cannot carry")
        return cls(url.hostname, port, user, password)

    def mode(self) -> str:
        return f"upstream:http://{self.host}:{self.port}"

    def auth(self) -> str | None:
        """`user:password` for mitmproxy's upstream_auth option, the one place it is revealed."""
        if self.user is None:
            return None
        return f"{self.user}:{self.password.get_secret_value() if self.password else ''}"

    def __str__(self) -> str:
        who = f"{self.user}:***@" if self.user else ""
        return f"http://{who}{self.host}:{self.port}"

    __repr__ = __str__
