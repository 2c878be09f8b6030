"""The proxy login: who may use the proxy, checked in constant time, kept only as a digest.

Pure: the settings parse `ATLASSIAN_PROXY_PROXY_AUTH` (or the text of its file) into a
`ProxyLogin`, and the proxy-auth hook asks it whether a `Proxy-Authorization` header carries it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from pydantic import SecretStr

MIN_PASSWORD = 16
"""Characters a proxy password needs at least: guessing online is slowed (`login_throttle`), not stopped."""


def short_password(password: str) -> str | None:
    """Why `password` is too short to be a proxy password, or None; never the password or its length."""
    if len(password) >= MIN_PASSWORD:
        return None
    return (
        f"is shorter than {MIN_PASSWORD} characters: use a random one of at least {MIN_PASSWORD} "
        "(e.g. from `openssl rand -base64 24`)"
    )


def _digest(user: str, password: str) -> bytes:
    return hashlib.sha256(f"{user}:{password}".encode()).digest()


@dataclass(frozen=True, slots=True)
class ProxyLogin:
    """The one user allowed to use the proxy. Checks use only the digest; the password is kept
    as a secret solely so `env` can print a proxy URL clients can use."""

    user: str
    digest: bytes = field(repr=False)
    password: SecretStr = field(repr=False, compare=False, default=SecretStr(""))

    @classmethod
    def parse(cls, text: str) -> ProxyLogin:
        """`user:password`, surrounding whitespace ignored; ValueError says what is wrong, never the value."""
        user, sep, password = text.strip().partition(":")
        if not sep or not user or not password:
            raise ValueError("is not USER:PASSWORD (both parts non-empty, e.g. ci:a-long-random-password)")
        if not (user + password).isprintable():
            raise ValueError("contains control characters: use printable characters only")
        if problem := short_password(password):
            raise ValueError(f"has a password that {problem}")
        return cls.of(user, password)

    @classmethod
    def of(cls, user: str, password: str) -> ProxyLogin:
        """The login of `user` with `password`, both already checked."""
        return cls(user, _digest(user, password), SecretStr(password))

    def check(self, header: str | None) -> str | None:
        """The user name if the Proxy-Authorization header carries this login, else None."""
        given = basic_credentials(header)
        return given[0] if given is not None and self.accepts(*given) else None

    def accepts(self, user: str, password: str) -> bool:
        """Is `user`:`password` this login (compared as digests, in constant time)?"""
        return hmac.compare_digest(_digest(user, password), self.digest)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """`Basic base64(user:password)` -> (user, password); None for anything else."""
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text given to b64decode
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
