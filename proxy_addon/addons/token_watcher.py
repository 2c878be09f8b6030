"""Keeps every site's credentials current while the proxy runs: token files, the keyring, SIGHUP.

A client-credentials site's secret is watched the same way; a new one goes to its mints
(`credentials.minted`), which may then mint with it at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from proxy_addon.addons.prepared import Prepared
from proxy_addon.credentials.minted import Mints
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Credentials, FileToken, KeyringSecret, KeyringToken, Resolved
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.settings.names import SettingsError

logger = logging.getLogger(__name__)


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
    credentials: Credentials | None
    stamp: FileStamp | None


WATCHED_FILES = FileToken
KEYRINGS = KeyringToken | KeyringSecret


class CredentialWatcher:
    """Keeps every site's credentials current without a restart and off the request path.

    A token file is checked every second (a stat; re-read only when it changed). The keyring
    is read only while token health backs off a rejected token, since a new token is what ends
    it. `reload()` (SIGHUP) reads every source now. A source that fails keeps the previous
    token and logs why; a new one goes to the credentials registry.
    """

    interval = 1.0
    keyring_interval = 5.0

    def __init__(self, credentials: CredentialRegistry, health: TokenHealth, mints: Mints) -> None:
        self.credentials = credentials
        self.health = health
        self.mints = mints
        self.watched: list[_Watched] = []
        self._task: asyncio.Task[None] | None = None

    def use(self, prepared: Prepared) -> None:
        self.watched = [
            _Watched(r, r.credentials, FileStamp.of(r.source.path) if isinstance(r.source, WATCHED_FILES) else None)
            for r in prepared.resolved
        ]

    def running(self) -> None:
        if any(isinstance(w.resolved.source, WATCHED_FILES | KEYRINGS) for w in self.watched):
            self._task = asyncio.get_running_loop().create_task(self._watch())

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        since_keyring = 0.0
        while True:
            await asyncio.sleep(self.interval)
            since_keyring += self.interval
            keyring_due = since_keyring >= self.keyring_interval and (
                self.health.backing_off or bool(self.mints.rejected())
            )
            if keyring_due:
                since_keyring = 0.0
            for watched in self.watched:
                source = watched.resolved.source
                if isinstance(source, WATCHED_FILES):
                    stamp = FileStamp.of(source.path)
                    if stamp != watched.stamp:
                        watched.stamp = stamp
                        await self._reload(watched)
                elif isinstance(source, KEYRINGS) and keyring_due:
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
        if watched.resolved.client is not None:
            if self.mints.new_secret(site.name, token):
                logger.info("site %s: client secret reloaded from %s", site.name, source.description)
            return
        fresh = Credentials.of(site.user, token, source.description, site.scheme)
        if watched.credentials is None or fresh.authorization != watched.credentials.authorization:
            watched.credentials = fresh
            self.credentials.adopt(site, fresh)
            logger.info("site %s: token reloaded from %s", site.name, source.description)
