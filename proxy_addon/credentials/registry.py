"""Each site's current credentials: one object the root makes and hands to whoever needs them.

The root fills it at each configuration, the credential watcher when a token changes, the mints
(`credentials.minted`) with each access token of a client-credentials site; the wire
reads the value a request carries, `Outbound` the credentials of the proxy's own requests, the
admin endpoint whether any are loaded. A new token makes token health forget what the site's
hosts said of the previous one.
"""

from __future__ import annotations

import hashlib

from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import TokenHealth

TAG_BYTES = 8


def token_tag(site: str, credentials: Credentials) -> str:
    """A token's tag: 8 bytes of a BLAKE2b digest of the site's name and its Authorization value.

    Processes that share a state store mark each pause with it, so a pause of one token never stops
    another (a token rotated in one pod before the others). One way, and far shorter than the token's
    own entropy (at least 140 bits): it tells whether two processes hold the same token, nothing more.
    """
    text = f"atlassian-auth-proxy token tag\0{site}\0".encode() + credentials.authorization.get_secret_value().encode()
    return hashlib.blake2b(text, digest_size=TAG_BYTES).hexdigest()


class CredentialRegistry:
    """Site name to its site and current credentials."""

    def __init__(self, health: TokenHealth) -> None:
        self.health = health
        self._sites: dict[str, Site] = {}
        self._credentials: dict[str, Credentials] = {}
        self._tags: dict[str, str] = {}

    def adopt(self, site: Site, credentials: Credentials) -> None:
        """A new token for `site`: forget what its hosts said about the previous one."""
        self._credentials[site.name] = credentials
        self._sites[site.name] = site
        self._tags[site.name] = token_tag(site.name, credentials)
        self.health.token_changed(site.name)

    def register(self, site: Site) -> None:
        """A site whose credentials come later: a client-credentials site, until its first access token is minted."""
        self._sites[site.name] = site

    def forget(self, site: str) -> None:
        """Drop the site's credentials: a client-credentials site whose client changed has no token until it mints."""
        self._credentials.pop(site, None)

    def tag(self, site: str) -> str | None:
        """Which token `site` has now, as processes sharing a state store compare it (`token_tag`); None: no site."""
        return self._tags.get(site)

    def __getitem__(self, site: str) -> Credentials:
        return self._credentials[site]

    def site(self, name: str) -> Site:
        return self._sites[name]

    def __bool__(self) -> bool:
        """Any site configured (a client-credentials site counts before its first access token)."""
        return bool(self._sites)
