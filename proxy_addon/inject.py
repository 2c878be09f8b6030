"""Credential injection: decide by where a request really goes, then swap the credentials.

The decision is `decide()`, a pure function of the connection facts. The addon only gathers
those facts from mitmproxy and acts on the verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import StrEnum

from mitmproxy import http, tls

from proxy_addon.credentials import Credentials
from proxy_addon.errors import proxy_reply
from proxy_addon.hosts import HostMatcher, same_host, split_authority

logger = logging.getLogger(__name__)

HTTPS_PORT = 443
DECISION_KEY = "atlassian_auth"
REDACTED = "Basic [redacted by atlassian-auth-proxy]"
CLIENT_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


class Decision(StrEnum):
    INJECT = "injected"
    PASS = "passed"  # noqa: S105 - a verdict, not a password
    CLEARTEXT = "refused-cleartext"
    MISDIRECTED = "refused-misdirected"
    BROWSER = "refused-browser"


def from_browser(origin: str | None, fetch_site: str | None) -> bool:
    """A request a web page may have made: it has an Origin, or a Sec-Fetch-Site other than `none`.

    `Sec-Fetch-Site: none` is what a browser sends for a user-initiated navigation.
    """
    return origin is not None or (fetch_site is not None and fetch_site.strip().lower() != "none")


def decide(
    hosts: HostMatcher,
    *,
    scheme: str,
    host: str,
    port: int,
    sni: str | None,
    names: Iterable[str],
    browser: bool = False,
) -> Decision:
    """What to do with a request whose connection goes to `host:port`.

    `host`/`port` are where mitmproxy really connects (the CONNECT target), `sni` what the
    client's TLS handshake named, `names` every client-chosen authority (Host headers,
    `:authority`, an absolute-form URL). Only the real destination can earn credentials;
    the client-chosen names can only lose them, and so can `browser` (see `from_browser`).
    """
    if not hosts.matches(host):
        return Decision.PASS
    if scheme != "https":
        return Decision.CLEARTEXT
    if port != HTTPS_PORT:
        return Decision.PASS
    if not same_host(sni, host):
        return Decision.MISDIRECTED
    for name in names:
        named_host, named_port = split_authority(name)
        if not same_host(named_host, host) or named_port not in (None, port):
            return Decision.MISDIRECTED
    return Decision.BROWSER if browser else Decision.INJECT


def should_intercept(hosts: HostMatcher, host: str | None, port: int | None, sni: str | None) -> bool:
    """Decrypt a TLS connection only when it could earn credentials; tunnel the rest.

    An SNI with a trailing dot is tunnelled too: mitmproxy cannot verify the upstream
    certificate for such a name and would leave the client hanging.
    """
    if sni is None or sni.endswith("."):
        return False
    return port == HTTPS_PORT and hosts.matches(host) and same_host(sni, host)


def client_names(request: http.Request) -> list[str]:
    names = request.headers.get_all("host")
    if request.authority:
        names.append(request.authority)
    return names


class CredentialInjector:
    """Replaces the client's credentials with the configured identity on matching requests."""

    def __init__(self) -> None:
        self.hosts = HostMatcher(())
        self.credentials: Credentials | None = None
        self.allow_browsers = False

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        address = data.context.server.address
        host, port = address[:2] if address else (None, None)
        if not should_intercept(self.hosts, host, port, data.client_hello.sni):
            data.ignore_connection = True
            logger.info("tunnel %s:%s (not a credential host; passed through encrypted)", host, port)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if self.credentials is None or flow.response is not None:
            return
        request = flow.request
        decision = decide(
            self.hosts,
            scheme=request.scheme,
            host=request.host,
            port=request.port,
            sni=flow.client_conn.sni,
            names=client_names(request),
            browser=not self.allow_browsers
            and from_browser(request.headers.get("origin"), request.headers.get("sec-fetch-site")),
        )
        flow.metadata[DECISION_KEY] = decision.value
        if decision is Decision.INJECT:
            for name in CLIENT_CREDENTIAL_HEADERS:
                request.headers.pop(name, None)
            request.headers["authorization"] = self.credentials.authorization.get_secret_value()
        elif decision is Decision.CLEARTEXT:
            flow.response = proxy_reply(
                403, f"refused to send credentials over plain http to {request.host}: use https://"
            )
        elif decision is Decision.MISDIRECTED:
            flow.response = proxy_reply(421, f"this connection goes to {request.host}; the request names another host")
        elif decision is Decision.BROWSER:
            flow.response = proxy_reply(
                403,
                "refused to add credentials to a browser request (Origin or Sec-Fetch-Site): "
                "set ATLASSIAN_PROXY_ALLOW_BROWSERS=true to allow",
            )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DECISION_KEY) == Decision.INJECT:
            self._redact(flow)
            if flow.response is not None:
                flow.response.headers.pop("set-cookie", None)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DECISION_KEY) == Decision.INJECT:
            self._redact(flow)

    @staticmethod
    def _redact(flow: http.HTTPFlow) -> None:
        """The header is on the wire by now; keep it out of dumps, saved flows and later hooks."""
        if "authorization" in flow.request.headers:
            flow.request.headers["authorization"] = REDACTED
