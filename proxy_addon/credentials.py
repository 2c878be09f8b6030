"""Where the token comes from: the environment, a file (re-read when it changes), or the keyring."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keyring
import keyring.errors
from pydantic import SecretStr

from proxy_addon.settings import ENV_PREFIX, Settings, SettingsError
from proxy_addon.tokens import TokenFormatError, authorization_value, parse_token

logger = logging.getLogger(__name__)

KEYRING_SERVICE = "atlassian-auth-proxy"
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


def read_token_file(path: Path) -> SecretStr:
    """Read and check a token file; SettingsError names the setting, never the content."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
        raise SettingsError(
            f"{TOKEN_FILE_ENV}: cannot read {path} ({reason}); fix the path or its permissions"
        ) from None
    try:
        return parse_token(text)
    except TokenFormatError as e:
        raise SettingsError(f"{TOKEN_FILE_ENV}: the token in {path} {e}") from None


def resolve_credentials(settings: Settings) -> Credentials:
    """Pick the token source the way README documents: env, else file, else keyring."""
    if settings.email is None:
        raise SettingsError(f"{EMAIL_ENV} is not set: set it to the email of your Atlassian account")
    if settings.api_token is not None and settings.api_token_file is not None:
        raise SettingsError(f"{TOKEN_ENV} and {TOKEN_FILE_ENV} are both set: keep only one")
    if settings.api_token is not None:
        return Credentials.of(settings.email, settings.api_token, "environment")
    if settings.api_token_file is not None:
        path = settings.api_token_file
        return Credentials.of(settings.email, read_token_file(path), f"file {path}")
    return Credentials.of(settings.email, _keyring_token(settings.email), "keyring")


def _keyring_token(email: str) -> SecretStr:
    missing = (
        f"no API token: set {TOKEN_ENV}, or {TOKEN_FILE_ENV} to a file holding it, "
        f"or store it in the keyring (service {KEYRING_SERVICE!r}, user {email!r}) "
        "with `atlassian-auth-proxy login`"
    )
    try:
        text = keyring.get_password(KEYRING_SERVICE, email)
    except keyring.errors.KeyringError as e:
        raise SettingsError(f"{missing} (the keyring is unavailable: {type(e).__name__})") from None
    if text is None:
        raise SettingsError(missing)
    try:
        return parse_token(text)
    except TokenFormatError as e:
        raise SettingsError(
            f"the keyring entry ({KEYRING_SERVICE!r}, {email!r}) {e}; store it again with `atlassian-auth-proxy login`"
        ) from None


class TokenFileWatcher:
    """Re-reads the token file when it changes, so rotating a secret needs no restart.

    Polls the file's stamp off the request path; a file caught mid-write or emptied keeps the
    previous token and logs why.
    """

    interval = 1.0

    def __init__(self, on_change: Callable[[Credentials], None]) -> None:
        self.on_change = on_change
        self.path: Path | None = None
        self.credentials: Credentials | None = None
        self._stamp: FileStamp | None = None
        self._task: asyncio.Task[None] | None = None

    def watch(self, path: Path | None) -> None:
        self.path = path
        self._stamp = FileStamp.of(path) if path else None

    def running(self) -> None:
        if self.path is not None:
            self._task = asyncio.get_running_loop().create_task(self._watch(self.path))

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self, path: Path) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check(path)

    def check(self, path: Path) -> None:
        stamp = FileStamp.of(path)
        if stamp == self._stamp or self.credentials is None:
            return
        self._stamp = stamp
        try:
            token = read_token_file(path)
        except SettingsError as e:
            logger.warning("keeping the previous token: %s", e)
            return
        self.on_change(Credentials.of(self.credentials.email, token, f"file {path}"))
        logger.info("token reloaded from %s", path)
