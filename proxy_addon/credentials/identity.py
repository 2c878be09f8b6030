"""Ask a site who the credentials belong to: `GET /rest/api/3/myself`, as the proxy would send it.

Uses the same CONNECT_TO redirect, upstream trust and upstream proxy as the proxy (`Reach`), so
`check` and `login` test exactly the path `run` uses, and the proxy's own requests (a scoped
site's cloudId, the confirmation of an ambiguous 401, the boundaries' lookups) go where
proxied ones go.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
from pydantic import SecretStr

from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.connect_rules import ConnectToRule, find_rule
from proxy_addon.policy.failures import failure_kind
from proxy_addon.policy.sites import Scheme, Site
from proxy_addon.policy.token_health import rejection_reason
from proxy_addon.policy.tokens import authorization_value
from proxy_addon.policy.unauthorized import IdentityPage, Kind, classify
from proxy_addon.settings.model import Settings
from proxy_addon.settings.modes import UpstreamProxy
from proxy_addon.settings.names import SettingsError, env_name

TIMEOUT = 15.0


class Unreachable(Exception):
    """The site could not be asked; the message names the host and the kind of failure."""


@dataclass(frozen=True)
class Answer:
    status: int
    rejection: str | None
    display_name: str | None
    account_id: str | None


@dataclass(frozen=True)
class Reach:
    """How the proxy's own requests reach a site: CONNECT_TO, the extra upstream CA, UPSTREAM_PROXY."""

    connect_to: tuple[ConnectToRule, ...] = ()
    extra_ca: Path | None = None
    via: UpstreamProxy | None = None

    @classmethod
    def of(cls, settings: Settings) -> Reach:
        return cls(settings.connect_to, settings.upstream_ca_bundle, settings.upstream_proxy)

    def connection(self, host: str, port: int) -> http.client.HTTPSConnection:
        """HTTPS to `host:port` (SNI, Host, certificate name), verified, the way proxied requests go.

        Through UPSTREAM_PROXY it is a CONNECT tunnel, as mitmproxy's upstream mode makes: the
        corporate proxy resolves the site, and CONNECT_TO applies to the proxy's own name.
        """
        context = trust(self.extra_ca)
        if self.via is None:
            rule = find_rule(self.connect_to, host)
            return _RedirectedHTTPS(host, port, (rule.host, rule.port) if rule else (host, port), context)
        rule = find_rule(self.connect_to, self.via.host)
        proxy_host, proxy_port = (rule.host, rule.port) if rule else (self.via.host, self.via.port)
        connection = http.client.HTTPSConnection(proxy_host, proxy_port, context=context, timeout=TIMEOUT)
        via = self.via
        if via.user is not None:
            login = authorization_value(via.user, via.password or SecretStr(""))
            connection.set_tunnel(host, port, {"Proxy-Authorization": login.get_secret_value()})
        else:
            connection.set_tunnel(host, port)
        return connection


class _RedirectedHTTPS(http.client.HTTPSConnection):
    """HTTPS to `host` (SNI, Host, certificate name) over a TCP connection to `target`."""

    def __init__(self, host: str, port: int, target: tuple[str, int], context: ssl.SSLContext) -> None:
        super().__init__(host, port, context=context, timeout=TIMEOUT)
        self.target = target
        self.tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection(self.target, self.timeout)
        self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)


def trust(extra_ca: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    if extra_ca is not None:
        context.load_verify_locations(cafile=str(extra_ca))
    return context


def identity_path(host: str, bearer: bool) -> str | None:
    """Where a site says whose credentials these are; None for hosts that have no such page."""
    if host == "api.bitbucket.org":
        return "/2.0/user"
    if host == "bitbucket.org":
        return None
    return "/rest/api/2/myself" if bearer else "/rest/api/3/myself"


@dataclass(frozen=True)
class Target:
    """Where to verify a site's token: a host, its port, and the identity page there."""

    host: str
    port: int
    path: str | None


def target_of(site: Site, preferred: str | None) -> Target:
    """`preferred` (ATLASSIAN_PROXY_SITE) when it belongs to this site, else the site's only exact host."""
    exact = [p for p in site.patterns if not p.wildcard]
    bearer = site.scheme is Scheme.BEARER
    matching = [p for p in site.patterns if preferred is not None and p.matches(preferred)]
    if preferred is not None and matching:
        return Target(preferred, matching[0].port, identity_path(preferred, bearer))
    if len(exact) == 1:
        host = exact[0].domain
        return Target(host, exact[0].port, identity_path(host, bearer))
    raise SettingsError(f"{env_name('site')} is not set: set it to your site (e.g. acme.atlassian.net), or pass --site")


def cloud_id(site: str, reach: Reach) -> str:
    """The site's cloudId from `/_edge/tenant_info`, which needs no credentials."""
    status, _, body = _get(site, 443, "/_edge/tenant_info", {}, reach)
    value = _json_object(body).get("cloudId") if status == 200 else None
    if not isinstance(value, str) or not value.replace("-", "").isalnum():
        raise Unreachable(f"cannot look up the cloudId of {site}: /_edge/tenant_info answered HTTP {status}")
    return value


def _get(host: str, port: int, path: str, headers: dict[str, str], reach: Reach) -> tuple[int, dict[str, str], bytes]:
    connection = reach.connection(host, port)
    try:
        connection.request("GET", path, headers={"Accept": "application/json", **headers})
        response = connection.getresponse()
        body = response.read(1 << 20)
    except ssl.SSLCertVerificationError:
        raise Unreachable(f"cannot reach {host}: its TLS certificate is not trusted") from None
    except (OSError, http.client.HTTPException) as e:
        raise Unreachable(f"cannot reach {host}: {failure_kind(str(e))}") from None
    finally:
        connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def ask_myself(
    site: str, credentials: Credentials, reach: Reach, port: int = 443, path: str = "/rest/api/3/myself"
) -> Answer:
    authorization = {"Authorization": credentials.authorization.get_secret_value()}
    status, headers, body = _get(site, port, path, authorization, reach)
    profile = _json_object(body) if status == 200 else {}
    return Answer(
        status,
        rejection_reason(status, headers),
        profile.get("displayName") or profile.get("display_name"),
        profile.get("accountId"),
    )


def confirm_rejection(page: IdentityPage, credentials: Credentials, reach: Reach) -> str | None:
    """Ask the site's identity page whether it rejects these credentials: the reason, or None.

    The confirmation of an ambiguous 401. It goes over verified TLS, the way proxied requests go, to
    the identity page only; a scope miss there (a scoped token without the identity scope) says
    nothing against the token. Blocking: run it off the event loop.
    """
    authorization = {"Authorization": credentials.authorization.get_secret_value()}
    status, headers, _ = _get(page.host, page.port, page.path, authorization, reach)
    if classify(status, headers, from_identity_page=True) is not Kind.REJECTED:
        return None
    return f"{rejection_reason(status, headers)} from {page.path}"


def look_up(host: str, port: int, path: str, credentials: Credentials, reach: Reach) -> tuple[int, dict[str, Any]]:
    """`GET path` on the site as its own identity: the status and the JSON object answered.

    For the boundaries' lookups of which project or space an id belongs to; the same redirect
    and trust as proxied requests. Blocking: run it off the event loop.
    """
    authorization = {"Authorization": credentials.authorization.get_secret_value()}
    status, _, body = _get(host, port, path, authorization, reach)
    return status, _json_object(body)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
