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
from proxy_addon.settings import ENV_PREFIX, Settings, SettingsError
from proxy_addon.tokens import TokenFormatError, authorization_value, parse_token

logger = logging.getLogger(__name__)

TOKEN_ENV = ENV_PREFIX + "API_TOKEN"
TOKEN_FILE_ENV = ENV_PREFIX + "API_TOKEN_FILE"
EMAIL_ENV = ENV_PREFIX + "EMAIL"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An identity ready for the request path: the header value is computed once here."""

    email: str
    source: str
    authorization: SecretStr

    @classmethod
    def of(cls, email: str, token: SecretStr, source: str) -> Credentials:
        return cls(email, source, authorization_value(email, token))


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
class FileToken:
    path: Path

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
                f"{TOKEN_FILE_ENV}: cannot read {self.path} ({reason}); fix the path or its permissions"
            ) from None
        try:
            return parse_token(text)
        except TokenFormatError as e:
            raise SettingsError(f"{TOKEN_FILE_ENV}: the token in {self.path} {e}") from None


@dataclass(frozen=True, slots=True)
class KeyringToken:
    email: str
    allow_insecure: bool

    @property
    def description(self) -> str:
        return f"keyring ({keyring_store.SERVICE!r}, {self.email!r})"

    def read(self) -> SecretStr:
        return keyring_store.read_token(self.email, allow_insecure=self.allow_insecure)


def require_email(settings: Settings) -> str:
    if settings.email is None:
        raise SettingsError(f"{EMAIL_ENV} is not set: set it to the email of your Atlassian account")
    return settings.email


def token_source(settings: Settings, email: str) -> TokenSource:
    """Env, else file, else keyring: the order README documents."""
    if settings.api_token is not None and settings.api_token_file is not None:
        raise SettingsError(f"{TOKEN_ENV} and {TOKEN_FILE_ENV} are both set: keep only one")
    if settings.api_token is not None:
        return EnvToken(settings.api_token)
    if settings.api_token_file is not None:
        return FileToken(settings.api_token_file)
    return KeyringToken(email, settings.allow_insecure_keyring)


def resolve_credentials(settings: Settings) -> tuple[TokenSource, Credentials]:
    email = require_email(settings)
    source = token_source(settings, email)
    return source, Credentials.of(email, source.read(), source.description)


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


class CredentialWatcher:
    """Keeps the credentials current without a restart and off the request path.

    A token file is checked every second (a stat; re-read only when it changed). The keyring
    is read only while `wants_fresh()` says so (during a rejected-token back-off), since a new
    token is what ends it. `reload()` (SIGHUP) reads the source now. A source that fails keeps
    the previous token and logs why.
    """

    interval = 1.0
    keyring_interval = 5.0

    def __init__(self, on_change: Callable[[Credentials], None], wants_fresh: Callable[[], bool]) -> None:
        self.on_change = on_change
        self.wants_fresh = wants_fresh
        self.source: TokenSource | None = None
        self.credentials: Credentials | None = None
        self._stamp: FileStamp | None = None
        self._task: asyncio.Task[None] | None = None

    def watch(self, source: TokenSource, credentials: Credentials) -> None:
        self.source = source
        self.credentials = credentials
        self._stamp = FileStamp.of(source.path) if isinstance(source, FileToken) else None

    def running(self) -> None:
        if isinstance(self.source, FileToken | KeyringToken):
            self._task = asyncio.get_running_loop().create_task(self._watch())

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        since_keyring = 0.0
        while True:
            await asyncio.sleep(self.interval)
            since_keyring += self.interval
            if isinstance(self.source, FileToken):
                stamp = FileStamp.of(self.source.path)
                if stamp != self._stamp:
                    self._stamp = stamp
                    await self.reload()
            elif self.wants_fresh() and since_keyring >= self.keyring_interval:
                since_keyring = 0.0
                await self.reload()

    async def reload(self) -> None:
        """Read the source again; adopt the token if it is valid and different."""
        if self.source is None or self.credentials is None:
            return
        try:
            token = await asyncio.to_thread(self.source.read)
        except SettingsError as e:
            logger.warning("keeping the previous token: %s", e)
            return
        fresh = Credentials.of(self.credentials.email, token, self.source.description)
        if fresh.authorization != self.credentials.authorization:
            self.credentials = fresh
            self.on_change(fresh)
            logger.info("token reloaded from %s", self.source.description)
