"""Where the token comes from (environment, a file, or the OS keyring) and keeping it current.

A client-credentials site has no token to read: its client secret comes from the same kinds of
place, and its access tokens are minted while the proxy runs (`credentials.minted`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from proxy_addon.credentials import keyring_store
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.tokens import TokenFormatError, authorization_value, parse_client_secret, parse_token
from proxy_addon.settings.files import UnreadableFile, read_secret_text
from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import SettingsError, env_name
from proxy_addon.settings.tables import CLIENT_KEYRING_PREFIX, SiteSettings


@dataclass(frozen=True, slots=True)
class Credentials:
    """An identity ready for the request path: the header value is computed once here."""

    user: str
    source: str
    authorization: SecretStr

    @classmethod
    def of(cls, user: str, token: SecretStr, source: str, scheme: Scheme = Scheme.BASIC) -> Credentials:
        return cls(user, source, authorization_value(user, token, bearer=scheme is Scheme.BEARER))


def checked_token(text: str, where: str) -> SecretStr:
    """`parse_token`, with a SettingsError that says where the bad token came from (never what)."""
    try:
        return parse_token(text)
    except TokenFormatError as e:
        raise SettingsError(f"{where} {e}") from None


def checked_secret(text: str, where: str) -> SecretStr:
    """`parse_client_secret`, with a SettingsError that says where the bad secret came from (never what)."""
    try:
        return parse_client_secret(text)
    except TokenFormatError as e:
        raise SettingsError(f"{where} {e}") from None


@dataclass(frozen=True, slots=True)
class SecretKind:
    """What a source holds: a site's API token or PAT, or a service account's client secret. Both are read from
    the same kinds of place; only the words and the check differ."""

    held: str
    """What a variable that is not set should have held."""
    what: str
    """How an error names the value it found bad."""
    article: str
    env_key: str
    check: Callable[[str, str], SecretStr]


TOKEN = SecretKind("the API token", "the token", "a token", "token_env", checked_token)
CLIENT_SECRET = SecretKind(
    "the client secret", "the client secret", "a client secret", "client_secret_env", checked_secret
)


class TokenSource(Protocol):
    @property
    def description(self) -> str: ...

    def read(self) -> SecretStr: ...


@dataclass(frozen=True, slots=True)
class EnvToken:
    token: SecretStr
    description: str = "environment"

    def read(self) -> SecretStr:
        return self.token


@dataclass(frozen=True, slots=True)
class NamedEnvToken:
    """A site's `token_env` (or a service account's `client_secret_env`): the variable is read again on reload
    (SIGHUP)."""

    variable: str
    kind: SecretKind = TOKEN

    @property
    def description(self) -> str:
        return f"environment variable {self.variable}"

    def read(self) -> SecretStr:
        text = os.environ.get(self.variable)
        if text is None:
            raise SettingsError(
                f"{self.variable} is not set: it should hold {self.kind.held} ({self.kind.env_key} in [[sites]])"
            )
        return self.kind.check(text, f"{self.variable}: {self.kind.what}")


MAX_TOKEN_FILE = 64 * 1024
"""A token file is a few hundred bytes; anything larger is not one."""


@dataclass(frozen=True, slots=True)
class FileToken:
    """A token file (or a service account's `client_secret_file`), watched and read again when it changes."""

    path: Path
    setting: str = env_name("api_token_file")
    kind: SecretKind = TOKEN

    @property
    def description(self) -> str:
        return f"file {self.path}"

    def read(self) -> SecretStr:
        """Read and check the file; SettingsError names the setting, never the content."""
        try:
            text = read_secret_text(self.path, MAX_TOKEN_FILE, self.kind.article)
        except UnreadableFile as e:
            problem = f"{self.setting}: cannot read {self.path} ({e}); fix the path or its permissions"
            raise SettingsError(problem) from None
        return self.kind.check(text, f"{self.setting}: {self.kind.what} in {self.path}")


@dataclass(frozen=True, slots=True)
class KeyringToken:
    email: str
    allow_insecure: bool

    @property
    def description(self) -> str:
        return f"keyring ({keyring_store.SERVICE!r}, {self.email!r})"

    def read(self) -> SecretStr:
        return keyring_store.read_token(self.email, allow_insecure=self.allow_insecure)


@dataclass(frozen=True, slots=True)
class KeyringSecret:
    """A client secret `login --client-id` stored: service `atlassian-auth-proxy`, username `client:<client_id>`."""

    user: str
    allow_insecure: bool

    @property
    def description(self) -> str:
        return f"keyring ({keyring_store.SERVICE!r}, {self.user!r})"

    def read(self) -> SecretStr:
        return keyring_store.read_client_secret(self.user, allow_insecure=self.allow_insecure)


@dataclass(frozen=True)
class ClientSecret:
    """A service account's OAuth client: its id and secret (the secret never shown, not even by repr)."""

    client_id: str
    secret: SecretStr


@dataclass(frozen=True)
class Resolved:
    """A site with where its token comes from and the credentials read from there.

    A client-credentials site has no credentials at start: `client` holds its client id and secret,
    and its access tokens are minted when a request needs one (`credentials.minted`).
    """

    site: Site
    source: TokenSource
    credentials: Credentials | None
    client: ClientSecret | None = None


def require_email(settings: Settings) -> str:
    if settings.email is None:
        raise SettingsError(f"{env_name('email')} is not set: set it to the email of your Atlassian account")
    return settings.email


def single_site_source(settings: Settings) -> TokenSource:
    """Where the single-site settings' token comes from: API_TOKEN, API_TOKEN_FILE, else the keyring."""
    if settings.api_token is not None:
        return EnvToken(settings.api_token)
    if settings.api_token_file is not None:
        return FileToken(settings.api_token_file)
    return KeyringToken(require_email(settings), settings.allow_insecure_keyring)


def site_source(entry: SiteSettings, allow_insecure: bool) -> TokenSource:
    if entry.scheme == "client_credentials":
        return client_secret_source(entry, allow_insecure)
    if entry.token_env is not None:
        return NamedEnvToken(entry.token_env)
    if entry.token_file is not None:
        return FileToken(entry.token_file, f"[[sites]] {entry.name!r} token_file")
    return KeyringToken(entry.email or "", allow_insecure)


def client_secret_source(entry: SiteSettings, allow_insecure: bool) -> TokenSource:
    """Where a client-credentials site's secret comes from: client_secret_env, client_secret_file, else the keyring."""
    if entry.client_secret_env is not None:
        return NamedEnvToken(entry.client_secret_env, CLIENT_SECRET)
    if entry.client_secret_file is not None:
        return FileToken(entry.client_secret_file, f"[[sites]] {entry.name!r} client_secret_file", CLIENT_SECRET)
    return KeyringSecret(f"{CLIENT_KEYRING_PREFIX}{entry.client_id}", allow_insecure)


def sites_with_sources(settings: Settings) -> list[tuple[Site, TokenSource]]:
    """Every configured site with where its token comes from."""
    if not settings.sites:
        require_email(settings)
        return [(settings.site_list()[0], single_site_source(settings))]
    return [(entry.site(), site_source(entry, settings.allow_insecure_keyring)) for entry in settings.sites]


def resolve_sites(settings: Settings) -> tuple[SiteTable, list[Resolved]]:
    """Read every site's token (or client secret) now: a problem with any site stops the start with its message."""
    clients = {entry.name: entry.client_id for entry in settings.sites if entry.client_id is not None}
    return settings.site_table(), [
        resolve(site, source, clients.get(site.name)) for site, source in sites_with_sources(settings)
    ]


def resolve(site: Site, source: TokenSource, client_id: str | None = None) -> Resolved:
    """`site` with what `source` holds now: its credentials, or (`client_id` given) its client secret."""
    if site.minted:
        if client_id is None:
            raise SettingsError(f'[[sites]] {site.name!r}: scheme = "client_credentials" needs client_id')
        return Resolved(site, source, None, ClientSecret(client_id, source.read()))
    return Resolved(site, source, Credentials.of(site.user, source.read(), source.description, site.scheme))
