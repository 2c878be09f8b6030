"""Scoped API tokens: they only work through the API gateway, `api.atlassian.com/ex/{product}/{cloudId}`.

Tools keep using the site URL. For a site with `scoped = true`, the proxy looks the site's
cloudId up once at start (`/_edge/tenant_info`, no auth) and sends `/rest/...` to
`/ex/jira/{cloudId}/rest/...` and `/wiki/...` to `/ex/confluence/{cloudId}/wiki/...` on the
gateway. On the shared gateway itself, credentials go only under that site's own prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from proxy_addon.policy.sites import Site

GATEWAY = "api.atlassian.com"


def gateway_path(cloud_id: str, path: str) -> str | None:
    """The gateway path for a site path, or None when the path is not a REST API path."""
    if not is_plain_path(path):
        return None
    if path.startswith("/wiki/"):
        return f"/ex/confluence/{cloud_id}{path}"
    if path.startswith("/rest/"):
        return f"/ex/jira/{cloud_id}{path}"
    return None


def is_plain_path(path: str) -> bool:
    """No dot segments or encoded slashes that a server might resolve outside a prefix."""
    route = path.partition("?")[0]
    if not route.startswith("/"):
        return False
    for segment in route.split("/")[1:]:
        decoded = unquote(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            return False
    return True


@dataclass
class Gateway:
    """Scoped sites by cloudId, prepared at start."""

    cloud_ids: dict[str, tuple[Site, str]] = field(default_factory=dict)

    def add(self, site: Site, cloud_id: str) -> None:
        self.cloud_ids[site.name] = (site, cloud_id)

    def is_gateway(self, name: str | None, port: int | None) -> bool:
        """Is normalized `name:port` the shared gateway, with a scoped site configured?"""
        return bool(self.cloud_ids) and port == 443 and name == GATEWAY

    def site_for(self, path: str) -> Site | None:
        """The scoped site whose own prefix `path` is under, if any."""
        if not is_plain_path(path):
            return None
        for site, cloud_id in self.cloud_ids.values():
            if path.startswith((f"/ex/jira/{cloud_id}/", f"/ex/confluence/{cloud_id}/")):
                return site
        return None

    def cloud_id(self, site: Site) -> str | None:
        entry = self.cloud_ids.get(site.name)
        return entry[1] if entry else None
