"""The API gateway, `api.atlassian.com/ex/{product}/{cloudId}`, and the sites it knows by their cloudId.

Scoped API tokens and service accounts' access tokens only work there. Tools keep using the
site URL: for a site with `scoped = true` or `scheme = "client_credentials"`, the proxy knows
the site's cloudId (its `cloud_id`, or looked up once at start at `/_edge/tenant_info`, no
auth) and sends `/rest/...` to `/ex/jira/{cloudId}/rest/...` and `/wiki/...` to
`/ex/confluence/{cloudId}/wiki/...` on the gateway.

Tools that switch to the gateway themselves (the gateway form) get the credentials of the site
whose cloudId their path names, and only under that site's own prefixes. A classic token does
not work on the gateway, so such a request for a classic site (one with `cloud_id` set) goes to
the site's own host instead, with the rest of the path (`site_path`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from proxy_addon.policy.hosts import normalize_host
from proxy_addon.policy.sites import Site

GATEWAY = "api.atlassian.com"
PRODUCT_BASES = (("jira", ""), ("confluence", "/wiki"))
"""Each product on the gateway (`/ex/{product}/{cloudId}`) and where the site itself serves it."""


def gateway_path(cloud_id: str, path: str) -> str | None:
    """The gateway path for a site path, or None when the path is not a REST API path."""
    if not is_plain_path(path):
        return None
    if path.startswith("/wiki/"):
        return f"/ex/confluence/{cloud_id}{path}"
    if path.startswith("/rest/"):
        return f"/ex/jira/{cloud_id}{path}"
    return None


def site_path(cloud_id: str, path: str) -> str | None:
    """The site's own path for a gateway-form `path` under `cloud_id`, or None when it has none.

    `/ex/jira/{cloudId}/X` is `/X` on the site, `/ex/confluence/{cloudId}/wiki/X` (or without
    `/wiki`) is `/wiki/X`. A Jira path under `/wiki` would reach Confluence on the site, another
    product than the gateway's: it has none.
    """
    if not is_plain_path(path):
        return None
    for product, base in PRODUCT_BASES:
        prefix = f"/ex/{product}/{cloud_id}/"
        if path.startswith(prefix):
            rest = path[len(prefix) - 1 :]
            under_wiki = _under_wiki(rest)
            if base:
                return rest if under_wiki else base + rest
            return None if under_wiki else rest
    return None


def _under_wiki(path: str) -> bool:
    route = path.partition("?")[0].lower()
    return route == "/wiki" or route.startswith("/wiki/")


def is_plain_path(path: str) -> bool:
    """No dot segments or encoded slashes that a server might resolve outside a prefix.

    A segment counts as a dot segment with path parameters after it too (`..;x`): servlet
    containers cut them off before they resolve the path.
    """
    route = path.partition("?")[0]
    if not route.startswith("/"):
        return False
    for segment in route.split("/")[1:]:
        decoded = unquote(segment)
        if decoded.partition(";")[0] in (".", "..") or "/" in decoded or "\\" in decoded:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Tenant:
    """A site the gateway knows: its cloudId, and its own host, where a classic token's gateway-form requests go."""

    site: Site
    cloud_id: str
    host: str | None


@dataclass
class Gateway:
    """The sites with a cloudId, prepared at start: scoped and client-credentials sites, and any with `cloud_id`."""

    tenants: dict[str, Tenant] = field(default_factory=dict)

    def add(self, site: Site, cloud_id: str, host: str | None = None) -> None:
        """`site` is the tenant `cloud_id`; `host` is its own host (default: its first exact one)."""
        own = normalize_host(host) if host else next((p.domain for p in site.patterns if not p.wildcard), None)
        self.tenants[site.name] = Tenant(site, cloud_id, own)

    def is_gateway(self, name: str | None, port: int | None) -> bool:
        """Is normalized `name:port` the shared gateway, with a site it knows configured?"""
        return bool(self.tenants) and port == 443 and name == GATEWAY

    def tenant_for(self, path: str) -> Tenant | None:
        """The tenant whose own prefix `path` is under, if any."""
        if not is_plain_path(path):
            return None
        for tenant in self.tenants.values():
            cloud_id = tenant.cloud_id
            if path.startswith((f"/ex/jira/{cloud_id}/", f"/ex/confluence/{cloud_id}/")):
                return tenant
        return None

    def site_for(self, path: str) -> Site | None:
        """The site whose own prefix `path` is under, if any."""
        tenant = self.tenant_for(path)
        return tenant.site if tenant is not None else None

    def own_cloud_id(self, site: Site, name: str | None) -> str | None:
        """The cloudId under which `site`'s requests to `name` (normalized) go to the gateway: only those to its own
        host do. Another host of the site (a wildcard's, a second name) is another tenant, whose requests the
        site's cloudId would send to the wrong one."""
        tenant = self.tenants.get(site.name)
        return tenant.cloud_id if tenant is not None and name is not None and tenant.host == name else None

    def cloud_id(self, site: Site) -> str | None:
        entry = self.tenants.get(site.name)
        return entry.cloud_id if entry else None
