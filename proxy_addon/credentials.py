"""Where the token comes from (environment, a file, or the OS keyring) and keeping it current."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from proxy_addon import keyring_store
from proxy_addon.settings import ENV_PREFIX, Settings, SettingsError, SiteSettings
from proxy_addon.sites import Scheme, Site, SiteConflict, SiteTable
from proxy_addon.tokens import TokenFormatError, authorization_value, parse_token

logger = logging.getLogger(__name__)

TOKEN_ENV = ENV_PREFIX + "API_TOKEN"
TOKEN_FILE_ENV = ENV_PREFIX + "API_TOKEN_FILE"
EMAIL_ENV = ENV_PREFIX + "EMAIL"


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


class TokenSource(Protocol):
    description: str

    def read(self) -> SecretStr: ...


@dataclass(frozen=True, slots=True)
class EnvToken:
    token: SecretStr
    description: str = "environment"

    def read(self) -> SecretStr:
        return self.token


@dataclass(frozen=True, slots=True)
class NamedEnvToken:
    """A site's `token_env`: the variable is read again on reload (SIGHUP)."""

    variable: str

    @property
    def description(self) -> str:
        return f"environment variable {self.variable}"

    def read(self) -> SecretStr:
        text = os.environ.get(self.variable)
        if text is None:
            raise SettingsError(f"{self.variable} is not set: it should hold the API token (token_env in [[sites]])")
        return checked_token(text, f"{self.variable}: the token")


@dataclass(frozen=True, slots=True)
class FileToken:
    path: Path
    setting: str = TOKEN_FILE_ENV

    @property
    def description(self) -> str:
        return f"file {self.path}"

    def read(self) -> SecretStr:
        """Read and check the file; SettingsError names the setting, never the content."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
            raise SettingsError(
                f"{self.setting}: cannot read {self.path} ({reason}); fix the path or its permissions"
            ) from None
        return checked_token(text, f"{self.setting}: the token in {self.path}")


@dataclass(frozen=True, slots=True)
class KeyringToken:
    email: str
    allow_insecure: bool

    @property
    def description(self) -> str:
        return f"keyring ({keyring_store.SERVICE!r}, {self.email!r})"

    def read(self) -> SecretStr:
        return keyring_store.read_token(self.email, allow_insecure=self.allow_insecure)


@dataclass(frozen=True)
class Resolved:
    """A site with where its token comes from and the credentials read from there."""

    site: Site
    source: TokenSource
    credentials: Credentials


def require_email(settings: Settings) -> str:
    if settings.email is None:
        raise SettingsError(f"{EMAIL_ENV} is not set: set it to the email of your Atlassian account")
    return settings.email


def single_site(settings: Settings) -> tuple[Site, TokenSource]:
    """The site the single-site settings describe: EMAIL, API_TOKEN / _FILE / keyring, HOSTS."""
    email = require_email(settings)
    site = Site("default", settings.hosts.patterns, email)
    if settings.api_token is not None and settings.api_token_file is not None:
        raise SettingsError(f"{TOKEN_ENV} and {TOKEN_FILE_ENV} are both set: keep only one")
    if settings.api_token is not None:
        return site, EnvToken(settings.api_token)
    if settings.api_token_file is not None:
        return site, FileToken(settings.api_token_file)
    return site, KeyringToken(email, settings.allow_insecure_keyring)


def configured_site(entry: SiteSettings, allow_insecure: bool) -> tuple[Site, TokenSource]:
    scheme = Scheme(entry.scheme)
    user = entry.email or ""
    site = Site(entry.name, entry.hosts.patterns, user, scheme, entry.read_only, entry.scoped)
    if entry.token_env is not None:
        return site, NamedEnvToken(entry.token_env)
    if entry.token_file is not None:
        return site, FileToken(entry.token_file, f"[[sites]] {entry.name!r} token_file")
    return site, KeyringToken(user, allow_insecure)


SINGLE_SITE_FIELDS = {"email": EMAIL_ENV, "api_token": TOKEN_ENV, "api_token_file": TOKEN_FILE_ENV, "hosts": "HOSTS"}


def sites_with_sources(settings: Settings) -> list[tuple[Site, TokenSource]]:
    """Every configured site: the [[sites]] tables, or else the single-site settings."""
    if not settings.sites:
        return [single_site(settings)]
    mixed = sorted(name for name in SINGLE_SITE_FIELDS if name in settings.model_fields_set)
    if mixed:
        names = ", ".join(SINGLE_SITE_FIELDS[name].removeprefix(ENV_PREFIX) for name in mixed)
        raise SettingsError(
            f"[[sites]] and the single-site settings ({names}) are both set: describe every site in [[sites]]"
        )
    names = [entry.name for entry in settings.sites]
    if len(set(names)) != len(names):
        raise SettingsError("[[sites]]: two sites have the same name; give each a unique name")
    return [configured_site(entry, settings.allow_insecure_keyring) for entry in settings.sites]


def resolve_sites(settings: Settings) -> tuple[SiteTable, list[Resolved]]:
    """Read every site's token now: a problem with any site stops the start with its message."""
    pairs = sites_with_sources(settings)
    try:
        table = SiteTable.of(site for site, _ in pairs)
    except SiteConflict as e:
        raise SettingsError(f"sites: {e}") from None
    return table, [
        Resolved(site, source, Credentials.of(site.user, source.read(), source.description, site.scheme))
        for site, source in pairs
    ]


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What changes when a token file is replaced or rewritten (Kubernetes swaps a symlink)."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class _Watched:
    resolved: Resolved
    credentials: Credentials
    stamp: FileStamp | None


class CredentialWatcher:
    """Keeps every site's credentials current without a restart and off the request path.

    A token file is checked every second (a stat; re-read only when it changed). The keyring
    is read only while `wants_fresh()` says so (during a rejected-token back-off), since a new
    token is what ends it. `reload()` (SIGHUP) reads every source now. A source that fails
    keeps the previous token and logs why.
    """

    interval = 1.0
    keyring_interval = 5.0

    def __init__(self, on_change: Callable[[Site, Credentials], None], wants_fresh: Callable[[], bool]) -> None:
        self.on_change = on_change
        self.wants_fresh = wants_fresh
        self.watched: list[_Watched] = []
        self._task: asyncio.Task[None] | None = None

    def watch(self, resolved: list[Resolved]) -> None:
        self.watched = [
            _Watched(r, r.credentials, FileStamp.of(r.source.path) if isinstance(r.source, FileToken) else None)
            for r in resolved
        ]

    def running(self) -> None:
        if any(isinstance(w.resolved.source, FileToken | KeyringToken) for w in self.watched):
            self._task = asyncio.get_running_loop().create_task(self._watch())

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        since_keyring = 0.0
        while True:
            await asyncio.sleep(self.interval)
            since_keyring += self.interval
            keyring_due = since_keyring >= self.keyring_interval and self.wants_fresh()
            if keyring_due:
                since_keyring = 0.0
            for watched in self.watched:
                source = watched.resolved.source
                if isinstance(source, FileToken):
                    stamp = FileStamp.of(source.path)
                    if stamp != watched.stamp:
                        watched.stamp = stamp
                        await self._reload(watched)
                elif isinstance(source, KeyringToken) and keyring_due:
                    await self._reload(watched)

    async def reload(self) -> None:
        for watched in self.watched:
            await self._reload(watched)

    async def _reload(self, watched: _Watched) -> None:
        """Read the source again; adopt the token if it is valid and different."""
        site, source = watched.resolved.site, watched.resolved.source
        try:
            token = await asyncio.to_thread(source.read)
        except SettingsError as e:
            logger.warning("site %s: keeping the previous token: %s", site.name, e)
            return
        fresh = Credentials.of(site.user, token, source.description, site.scheme)
        if fresh.authorization != watched.credentials.authorization:
            watched.credentials = fresh
            self.on_change(site, fresh)
            logger.info("site %s: token reloaded from %s", site.name, source.description)
