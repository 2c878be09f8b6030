"""One setting's value, parsed and checked once at load: the types the settings model and its TOML tables share.

Each is a type with its validators attached (`Annotated`), so a field states what it holds and a
bad value fails with one line naming it (`loading` turns pydantic's error into that line).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, SecretStr
from pydantic_settings import NoDecode

from proxy_addon.policy.connect_rules import ConnectToRule
from proxy_addon.policy.hosts import HostPattern, HostPatternError, normalize_host
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.tokens import TokenFormatError, parse_token
from proxy_addon.settings.files import UnreadableFile, read_secret_text
from proxy_addon.settings.modes import ReverseTarget, UpstreamProxy
from proxy_addon.settings.state_url import StateUrl


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item for item in (part.strip() for part in value.split(",")) if item]
    return value


def _hosts(value: Any) -> Any:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        return value
    try:
        patterns = tuple(HostPattern.parse(item) for item in value)
    except HostPatternError as e:
        raise ValueError(str(e)) from None
    if not patterns:
        raise ValueError("is empty: name at least one host pattern, e.g. *.atlassian.net")
    return patterns


def _connect_to(value: list[str]) -> tuple[ConnectToRule, ...]:
    try:
        return tuple(ConnectToRule.parse(item) for item in value)
    except HostPatternError as e:
        raise ValueError(str(e)) from None


def _token(value: Any) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        try:
            return parse_token(value)
        except TokenFormatError as e:
            raise ValueError(f"the token {e}") from None
    return value


def _login(value: Any) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return ProxyLogin.parse(value) if isinstance(value, str) else value


MAX_PASSWORD_FILE = 4 * 1024


def _login_file(value: Any) -> Any:
    """The login in a file, read without blocking (a FIFO in its place must not stall the start)."""
    if not isinstance(value, str | Path):
        return value
    path = Path(value).expanduser()
    try:
        text = read_secret_text(path, MAX_PASSWORD_FILE, "a proxy login")
    except UnreadableFile as e:
        raise ValueError(f"cannot read {str(path)!r} ({e}); fix the path or its permissions") from None
    try:
        return ProxyLogin.parse(text)
    except ValueError as e:
        raise ValueError(f"the login in {str(path)!r} {e}") from None


def _existing_file(path: Path) -> Path:
    path = path.expanduser()
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a readable file")
    return path


def _email(value: str) -> str:
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or ":" in value or not value.isprintable() or " " in value:
        raise ValueError(f"{value!r} is not an email address: use your Atlassian account email")
    return value


def parse_date(value: Any) -> Any:
    """An ISO date (`2026-12-31`), as text or as a TOML date; parsed once, here."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-12-31") from None
    return value


DateSetting = Annotated[date, BeforeValidator(parse_date)]


def _parsed(kind: Any) -> Any:
    """A before-validator that builds `kind` from text; its ValueError becomes the message."""

    def parse(value: Any) -> Any:
        return kind.parse(value) if isinstance(value, str) else value

    return parse


def parse_site(value: str) -> str:
    """A site as users write it (`acme.atlassian.net`, `https://acme.atlassian.net/`) -> its host."""
    name = normalize_host(value.strip().removeprefix("https://").rstrip("/"))
    if name is None:
        raise ValueError(f"{value!r} is not a host name: use your site, e.g. acme.atlassian.net")
    return name


# Before-validators run last-declared first: split the comma list, then parse each item.
HostsSetting = Annotated[tuple[HostPattern, ...], NoDecode, BeforeValidator(_hosts), BeforeValidator(_split_list)]
ConnectToSetting = Annotated[
    tuple[ConnectToRule, ...], NoDecode, BeforeValidator(_connect_to), BeforeValidator(_split_list)
]
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
EmailSetting = Annotated[str, AfterValidator(_email)]
TokenSetting = Annotated[SecretStr, BeforeValidator(_token)]
SiteSetting = Annotated[str, AfterValidator(parse_site)]
ReverseSetting = Annotated[ReverseTarget, BeforeValidator(_parsed(ReverseTarget))]
UpstreamProxySetting = Annotated[UpstreamProxy, BeforeValidator(_parsed(UpstreamProxy))]
StateUrlSetting = Annotated[StateUrl, BeforeValidator(_parsed(StateUrl))]
ProxyLoginSetting = Annotated[ProxyLogin, BeforeValidator(_login)]
ProxyLoginFileSetting = Annotated[ProxyLogin, BeforeValidator(_login_file)]
