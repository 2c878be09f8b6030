"""Credential injection: decide by where a request really goes, then swap the credentials.

The decision is `decide()`, a pure function of the connection facts. The addon only gathers
those facts from mitmproxy and acts on the verdict.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from enum import StrEnum

from mitmproxy import http, tls

from proxy_addon.backoff import Backoff, rejection_reason
from proxy_addon.credentials import Credentials
from proxy_addon.errors import proxy_reply
from proxy_addon.hosts import HostMatcher, normalize_host, same_host, split_authority

logger = logging.getLogger(__name__)

HTTPS_PORT = 443
DECISION_KEY = "atlassian_auth"
EPOCH_KEY = "atlassian_auth_epoch"
API_TOKENS_PAGE = "https://id.atlassian.com/manage-profile/security/api-tokens"
REDACTED = "Basic [redacted by atlassian-auth-proxy]"
CLIENT_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


class Decision(StrEnum):
    INJECT = "injected"
    PASS = "passed"  # noqa: S105 - a verdict, not a password
    CLEARTEXT = "refused-cleartext"
    MISDIRECTED = "refused-misdirected"
    BACKED_OFF = "backed-off"


def decide(
    hosts: HostMatcher,
    *,
    scheme: str,
    host: str,
    port: int,
    sni: str | None,
    names: Iterable[str],
) -> Decision:
    """What to do with a request whose connection goes to `host:port`.

    `host`/`port` are where mitmproxy really connects (the CONNECT target), `sni` what the
    client's TLS handshake named, `names` every client-chosen authority (Host headers,
    `:authority`, an absolute-form URL). Only the real destination can earn credentials;
    the client-chosen names can only lose them.
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
    return Decision.INJECT


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


class CredentialInjector:
    """Replaces the client's credentials with the configured identity on matching requests.

    It also watches the site's verdict on the token: after a rejection, requests to that host
    are answered locally (see `backoff.Backoff`) until a probe succeeds or the token changes.
    `epoch` numbers the current (token, verdict) state, so responses to requests sent before a
    newer token or verdict cannot count twice.
    """

    def __init__(self) -> None:
        self.hosts = HostMatcher(())
        self.credentials: Credentials | None = None
        self.backoffs: dict[str, Backoff] = {}
        self.epoch = 0

    def use(self, credentials: Credentials) -> None:
        """A new token: forget what the sites said about the previous one."""
        self.credentials = credentials
        self.backoffs = {}
        self.epoch += 1

    @property
    def backing_off(self) -> bool:
        return any(b.active for b in self.backoffs.values())

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        address = data.context.server.address
        host, port = address[:2] if address else (None, None)
        if not should_intercept(self.hosts, host, port, data.client_hello.sni):
            data.ignore_connection = True
            logger.info("tunnel %s:%s (not a credential host; passed through encrypted)", host, port)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if self.credentials is None:
            return
        request = flow.request
        decision = decide(
            self.hosts,
            scheme=request.scheme,
            host=request.host,
            port=request.port,
            sni=flow.client_conn.sni,
            names=client_names(request),
        )
        backoff = self.backoffs.get(normalize_host(request.host) or "")
        now = time.monotonic()
        if decision is Decision.INJECT and backoff is not None and not backoff.admit(now):
            flow.metadata[DECISION_KEY] = Decision.BACKED_OFF.value
            flow.response = backed_off_reply(request.host, backoff.retry_after(now))
            return
        flow.metadata[DECISION_KEY] = decision.value
        if decision is Decision.INJECT:
            for name in CLIENT_CREDENTIAL_HEADERS:
                request.headers.pop(name, None)
            request.headers["authorization"] = self.credentials.authorization.get_secret_value()
            flow.metadata[EPOCH_KEY] = self.epoch
        elif decision is Decision.CLEARTEXT:
            flow.response = proxy_reply(
                403, f"refused to send credentials over plain http to {request.host}: use https://"
            )
        elif decision is Decision.MISDIRECTED:
            flow.response = proxy_reply(421, f"this connection goes to {request.host}; the request names another host")

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DECISION_KEY) != Decision.INJECT or flow.response is None:
            return
        self._redact(flow)
        flow.response.headers.pop("set-cookie", None)
        if flow.metadata.get(EPOCH_KEY) == self.epoch and self.credentials is not None:
            rejection = rejection_reason(flow.response.status_code, flow.response.headers)
            self._judge(flow.request.host, rejection, self.credentials.email)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DECISION_KEY) != Decision.INJECT:
            return
        self._redact(flow)
        backoff = self.backoffs.get(normalize_host(flow.request.host) or "")
        if backoff is not None and flow.metadata.get(EPOCH_KEY) == self.epoch:
            backoff.probe_ended()

    def _judge(self, host: str, rejection: str | None, email: str) -> None:
        """Record the site's verdict on the current token; log once per change of state."""
        key = normalize_host(host) or host
        backoff = self.backoffs.get(key)
        if rejection is not None:
            backoff = self.backoffs.setdefault(key, Backoff())
            backoff.rejected(time.monotonic())
            self.epoch += 1
            logger.warning(
                "%s rejected the API token for %s (%s): it may be revoked or expired. Create a new one at %s "
                "and store it (atlassian-auth-proxy login, or the token file); until then requests to %s are "
                "answered locally with 401 for %.0f s, then one request tests the token again.",
                host,
                email,
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
