"""Credential injection: decide by where a request really goes, then swap the credentials.

The decision is `decide()`, a pure function of the connection facts and the site table. The
addon only gathers those facts from mitmproxy and acts on the verdict.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from enum import StrEnum

from mitmproxy import http, tls
from mitmproxy.proxy.mode_specs import ReverseMode

from proxy_addon.backoff import Backoff, rejection_reason
from proxy_addon.credentials import Credentials
from proxy_addon.errors import proxy_reply
from proxy_addon.hosts import normalize_host, same_host, split_authority
from proxy_addon.readonly import read_only_allows
from proxy_addon.scoped import GATEWAY, Gateway, gateway_path
from proxy_addon.sites import Site, SiteTable

logger = logging.getLogger(__name__)

DECISION_KEY = "atlassian_auth"
SITE_KEY = "atlassian_auth_site"
HOST_KEY = "atlassian_auth_host"
EPOCH_KEY = "atlassian_auth_epoch"
API_TOKENS_PAGE = "https://id.atlassian.com/manage-profile/security/api-tokens"
REDACTED = "[redacted by atlassian-auth-proxy]"
CLIENT_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


class Decision(StrEnum):
    INJECT = "injected"
    PASS = "passed"  # noqa: S105 - a verdict, not a password
    CLEARTEXT = "refused-cleartext"
    MISDIRECTED = "refused-misdirected"
    READ_ONLY = "refused-read-only"
    BROWSER = "refused-browser"
    BACKED_OFF = "backed-off"


def from_browser(origin: str | None, fetch_site: str | None) -> bool:
    """A request a web page may have made: it has an Origin, or a Sec-Fetch-Site other than `none`.

    `Sec-Fetch-Site: none` is what a browser sends for a user-initiated navigation.
    """
    return origin is not None or (fetch_site is not None and fetch_site.strip().lower() != "none")


def decide(
    site: Site | None,
    *,
    claimed: bool,
    scheme: str,
    method: str,
    path: str,
    host: str,
    sni: str | None,
    names: Iterable[str],
    browser: bool = False,
) -> Decision:
    """What to do with a request whose connection really goes to `host`.

    `site` is what the site table says of the real destination (the CONNECT target and port),
    `claimed` whether any site claims the name on some port, `sni` what the client's TLS
    handshake named, `names` every client-chosen authority (Host headers, `:authority`, an
    absolute-form URL). Only the real destination can earn credentials; the client-chosen
    names can only lose them, and so can `browser` (see `from_browser`).
    """
    if scheme != "https":
        return Decision.CLEARTEXT if claimed else Decision.PASS
    if site is None:
        return Decision.PASS
    if not same_host(sni, host):
        return Decision.MISDIRECTED
    for name in names:
        named_host, named_port = split_authority(name)
        if not same_host(named_host, host) or named_port not in (None, site_port(site, host)):
            return Decision.MISDIRECTED
    if browser:
        return Decision.BROWSER
    if site.read_only and not read_only_allows(method, path):
        return Decision.READ_ONLY
    return Decision.INJECT


def site_port(site: Site, host: str) -> int:
    name = normalize_host(host) or ""
    return next((p.port for p in site.patterns if p.matches(name)), 443)


def should_intercept(
    sites: SiteTable, host: str | None, port: int | None, sni: str | None, gateway: Gateway | None = None
) -> bool:
    """Decrypt a TLS connection only when it could earn credentials; tunnel the rest.

    An SNI with a trailing dot is tunnelled too: mitmproxy cannot verify the upstream
    certificate for such a name and would leave the client hanging.
    """
    if sni is None or sni.endswith("."):
        return False
    could_earn = sites.lookup(host, port) is not None or (gateway is not None and gateway.is_gateway(host, port))
    return could_earn and same_host(sni, host)


def tls_name(flow: http.HTTPFlow) -> str | None:
    """The name the upstream TLS session is for: the client's SNI in forward mode.

    In reverse mode the client speaks plain HTTP on loopback and the destination is fixed by
    configuration, so the configured target stands in for the SNI.
    """
    if isinstance(flow.client_conn.proxy_mode, ReverseMode):
        return flow.request.host
    return flow.client_conn.sni


def client_names(request: http.Request) -> list[str]:
    names = request.headers.get_all("host")
    if request.authority:
        names.append(request.authority)
    return names


def backed_off_reply(host: str, retry_after: int) -> http.Response:
    message = (
        f"atlassian-auth-proxy: {host} rejected the API token (it may be revoked or expired); "
        f"it is not sent again for {retry_after} s. Replace it: atlassian-auth-proxy login, or the token file."
    )
    return http.Response.make(
        401,
        json.dumps({"error": "token_rejected", "message": message, "retry_after": retry_after}),
        {"Content-Type": "application/json", "Retry-After": str(retry_after)},
    )


REFUSALS = {
    Decision.CLEARTEXT: (403, "refused to send credentials over plain http to {host}: use https://"),
    Decision.MISDIRECTED: (421, "this connection goes to {host}; the request names another host"),
    Decision.READ_ONLY: (403, "site {site} is read-only: {method} {route} is not a read (see README, read-only)"),
    Decision.BROWSER: (
        403,
        "refused to add credentials to a browser request (Origin or Sec-Fetch-Site): "
        "set ATLASSIAN_PROXY_ALLOW_BROWSERS=true to allow",
    ),
}


class CredentialInjector:
    """Replaces the client's credentials with the site's identity on matching requests.

    It also watches each site's verdict on its token: after a rejection, requests to that host
    are answered locally (see `backoff.Backoff`) until a probe succeeds or the token changes.
    `epoch` numbers the current (tokens, verdicts) state, so responses to requests sent before
    a newer token or verdict cannot count twice.
    """

    def __init__(self) -> None:
        self.sites = SiteTable.of(())
        self.gateway = Gateway()
        self.credentials: dict[str, Credentials] = {}
        self.backoffs: dict[tuple[str, str], Backoff] = {}
        self.epoch = 0
        self.allow_browsers = False

    def use(self, site: Site, credentials: Credentials) -> None:
        """A new token for `site`: forget what its hosts said about the previous one."""
        self.credentials[site.name] = credentials
        self.backoffs = {key: b for key, b in self.backoffs.items() if key[0] != site.name}
        self.epoch += 1

    @property
    def backing_off(self) -> bool:
        return any(b.active for b in self.backoffs.values())

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        address = data.context.server.address
        host, port = address[:2] if address else (None, None)
        if not should_intercept(self.sites, host, port, data.client_hello.sni, self.gateway):
            data.ignore_connection = True
            logger.info("tunnel %s:%s (not a credential host; passed through encrypted)", host, port)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        request = flow.request
        if self.gateway.is_gateway(request.host, request.port):
            site = self.gateway.site_for(request.path)
        else:
            site = self.sites.lookup(request.host, request.port)
        decision = decide(
            site,
            claimed=request.scheme != "https" and self.sites.claims(request.host),
            scheme=request.scheme,
            method=request.method,
            path=request.path,
            host=request.host,
            sni=tls_name(flow),
            names=client_names(request),
            browser=not self.allow_browsers
            and from_browser(request.headers.get("origin"), request.headers.get("sec-fetch-site")),
        )
        if decision is Decision.INJECT and site is not None:
            self._inject(flow, site, self.credentials[site.name])
            return
        flow.metadata[DECISION_KEY] = decision.value
        if site is not None:
            flow.metadata[SITE_KEY] = site.name
        if decision in REFUSALS:
            status, template = REFUSALS[decision]
            route = request.path.partition("?")[0]
            message = template.format(host=request.host, site=site and site.name, method=request.method, route=route)
            flow.response = proxy_reply(status, message)

    def _inject(self, flow: http.HTTPFlow, site: Site, credentials: Credentials) -> None:
        request = flow.request
        host = normalize_host(request.host) or ""
        backoff = self.backoffs.get((site.name, host))
        now = time.monotonic()
        flow.metadata[SITE_KEY] = site.name
        if backoff is not None and not backoff.admit(now):
            flow.metadata[DECISION_KEY] = Decision.BACKED_OFF.value
            flow.response = backed_off_reply(request.host, backoff.retry_after(now))
            return
        cloud_id = self.gateway.cloud_id(site) if site.scoped and host != GATEWAY else None
        if cloud_id is not None:
            path = gateway_path(cloud_id, request.path)
            if path is None:
                flow.metadata[DECISION_KEY] = Decision.PASS.value
                return
            request.host, request.port, request.path = GATEWAY, 443, path
            request.host_header = GATEWAY
        for name in CLIENT_CREDENTIAL_HEADERS:
            request.headers.pop(name, None)
        request.headers["authorization"] = credentials.authorization.get_secret_value()
        flow.metadata[DECISION_KEY] = Decision.INJECT.value
        flow.metadata[HOST_KEY] = host
        flow.metadata[EPOCH_KEY] = self.epoch

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DECISION_KEY) != Decision.INJECT or flow.response is None:
            return
        self._redact(flow)
        flow.response.headers.pop("set-cookie", None)
        if flow.metadata.get(EPOCH_KEY) == self.epoch:
            rejection = rejection_reason(flow.response.status_code, flow.response.headers)
            self._judge(flow.metadata[SITE_KEY], flow.metadata[HOST_KEY], rejection)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DECISION_KEY) != Decision.INJECT:
            return
        self._redact(flow)
        backoff = self.backoffs.get((flow.metadata[SITE_KEY], flow.metadata[HOST_KEY]))
        if backoff is not None and flow.metadata.get(EPOCH_KEY) == self.epoch:
            backoff.probe_ended()

    def _judge(self, site_name: str, host: str, rejection: str | None) -> None:
        """Record the site's verdict on the current token; log once per change of state."""
        key = (site_name, host)
        backoff = self.backoffs.get(key)
        if rejection is not None:
            backoff = self.backoffs.setdefault(key, Backoff())
            backoff.rejected(time.monotonic())
            self.epoch += 1
            logger.warning(
                "%s rejected the API token of site %s (%s): it may be revoked or expired. Create a new one at %s "
                "and store it (atlassian-auth-proxy login, or the token file); until then requests to %s are "
                "answered locally with 401 for %.0f s, then one request tests the token again.",
                host,
                site_name,
                rejection,
                API_TOKENS_PAGE,
                host,
                backoff.pause(),
            )
        elif backoff is not None and backoff.active:
            del self.backoffs[key]
            self.epoch += 1
            logger.info("%s accepts the API token again; requests pass as usual", host)

    @staticmethod
    def _redact(flow: http.HTTPFlow) -> None:
        """The header is on the wire by now; keep it out of dumps, saved flows and later hooks."""
        if "authorization" in flow.request.headers:
            flow.request.headers["authorization"] = REDACTED
