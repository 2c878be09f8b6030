"""The API token (and a service account's client secret) as hazardous material.

The token is a `SecretStr` from the moment it is read; `authorization_value` is the one
function that sees it in plain text, and what it returns is a `SecretStr` too. A client secret
is a `SecretStr` from the moment it is read as well; only the mint's request body holds it
(`credentials.minted`).
"""

from __future__ import annotations

import base64
import string

from pydantic import SecretStr

_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-_=+/.~")


class TokenFormatError(ValueError):
    """The token text cannot be a token. The message never contains the token."""


def parse_token(text: str) -> SecretStr:
    """Wrap a token read from any source, ignoring surrounding whitespace.

    Tokens have no fixed length (24 characters before 18 Jan 2023, about 190 since), so only
    the alphabet is checked: anything else would corrupt the header or hint at a wrong file.
    """
    token = text.strip()
    if not token:
        raise TokenFormatError("is empty")
    if not _TOKEN_CHARS.issuperset(token):
        raise TokenFormatError(
            "contains characters an Atlassian API token never has (spaces, quotes, non-ASCII): paste the token alone"
        )
    return SecretStr(token)


def authorization_value(user: str, token: SecretStr, bearer: bool = False) -> SecretStr:
    """`Basic base64(user:token)` (or `Bearer token` for Data Center), built once per token."""
    if bearer:
        return SecretStr("Bearer " + token.get_secret_value())
    pair = f"{user}:{token.get_secret_value()}".encode()
    return SecretStr("Basic " + base64.b64encode(pair).decode("ascii"))


def parse_client_secret(text: str) -> SecretStr:
    """Wrap a service account's client secret read from any source, ignoring surrounding whitespace.

    It travels in a form body, so any printable ASCII would do; whitespace or other characters inside
    mean a wrong file or a paste of more than the secret.
    """
    secret = text.strip()
    if not secret:
        raise TokenFormatError("is empty")
    if not (secret.isascii() and secret.isprintable()) or any(c.isspace() for c in secret):
        raise TokenFormatError(
            "contains spaces or non-ASCII characters a client secret never has: paste the secret alone"
        )
    return SecretStr(secret)
