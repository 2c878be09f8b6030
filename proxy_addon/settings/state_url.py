"""The shared state's address, `ATLASSIAN_PROXY_STATE_URL`: a Redis (or Valkey) server several proxies share.

`redis://[[user]:password@]HOST[:PORT][/DB]`, `rediss://...` (TLS) or `unix://[[user]:password@]/PATH[?db=N]`.
Its password is a secret like the token: kept as a `SecretStr`, so `exec` keeps the variable from
its command (`Settings.secret_variables`), and shown nowhere: `str` and `repr` name the server
without it, and no message here quotes the text it was given.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr

DEFAULT_PORT = 6379
SCHEMES = ("redis", "rediss", "unix")
FORM = (
    "redis://HOST:PORT/DB, rediss://HOST:PORT/DB or unix:///PATH?db=N (the text is not shown here: it may hold a "
    "password)"
)
CLIENT_LIBRARY = "redis"
INSTALL = "pip install 'atlassian-auth-proxy[redis]'"


@dataclass(frozen=True)
class StateUrl:
    scheme: str
    host: str = ""
    port: int = DEFAULT_PORT
    path: str = ""
    """The socket of a `unix://` URL."""
    db: int = 0
    user: str | None = None
    password: SecretStr | None = None

    @classmethod
    def parse(cls, text: str) -> StateUrl:
        try:
            url = urlsplit(text.strip())
            port = url.port
        except ValueError:
            raise ValueError(f"is not a Redis URL: write {FORM}") from None
        if url.scheme not in SCHEMES or url.fragment:
            raise ValueError(f"is not a Redis URL: write {FORM}")
        user = unquote(url.username) if url.username else None
        password = SecretStr(unquote(url.password)) if url.password else None
        query = parse_qs(url.query)
        if url.scheme == "unix":
            if not url.path.startswith("/") or url.hostname or set(query) - {"db"}:
                raise ValueError(f"is not a Redis socket URL: write {FORM}")
            db_text = query.get("db", ["0"])[-1]
            parsed = cls("unix", path=url.path, db=_db(db_text), user=user, password=password)
        else:
            if not url.hostname or url.query or (port is not None and port <= 0):
                raise ValueError(f"is not a Redis URL: write {FORM}")
            db_text = url.path.strip("/") or "0"
            parsed = cls(url.scheme, url.hostname, port or DEFAULT_PORT, db=_db(db_text), user=user, password=password)
        if importlib.util.find_spec(CLIENT_LIBRARY) is None:
            raise ValueError(f"needs the Redis client library, which is not installed: {INSTALL}")
        return parsed

    @property
    def where(self) -> str:
        """The server as the log names it: host and port (or socket) and database, never the password."""
        if self.scheme == "unix":
            return f"unix://{self.path}?db={self.db}"
        return f"{self.scheme}://{self.host}:{self.port}/{self.db}"

    def __str__(self) -> str:
        return self.where

    __repr__ = __str__


def _db(text: str) -> int:
    if not text.isdigit() or int(text) > 1_000_000:
        raise ValueError(f"names no database number: write {FORM}")
    return int(text)
