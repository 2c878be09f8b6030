"""What each site's answer to an injected credential says of the token, and what the proxy does about it.

Only a confirmed rejection pauses the token: a scope miss never does, and a 401 or a failed
login is first confirmed by the identity page of the site's home (`policy.token_verdict`,
`policy.unauthorized`), unless the request was that very page. After a rejection, requests to
every host of the site are answered locally until the proxy's own check succeeds or the token
changes (`credentials.outbound`). Here the answer's head is read
once: Set-Cookie removed (a session of the site's must not reach the client in place of the
token), the reading asked of `policy`, `Outbound` told to act on it, and two warnings logged
once each, for a token short of a scope and for a site that was probably renamed.

A client-credentials site's 401 from the gateway pauses nothing: `Outbound` mints a new access
token, and a GET or HEAD that got the 401 is sent again with it once it is there (`response`):
its client gets that answer instead. Any other method gets the 401: it may have done something.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from mitmproxy import http

from proxy_addon.addons import fields
from proxy_addon.addons.moves import moved
from proxy_addon.addons.prepared import Prepared, no_sites
from proxy_addon.addons.replies import answer_again
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.scoped import GATEWAY
from proxy_addon.policy.token_verdict import Sent, TokenVerdict, read_answer
from proxy_addon.policy.unauthorized import SCOPE_CHECK, OncePer, renamed_to
from proxy_addon.policy.verdict import METHOD_OVERRIDES, method_parameter

logger = logging.getLogger(__name__)

VERDICT_FIELDS = frozenset({b"x-failure-category", b"x-seraph-loginreason", b"location"})
"""The response fields the token verdict and the rename check read, gathered in one pass."""
SET_COOKIE = frozenset({b"set-cookie"})
REPLAYED = frozenset({"GET", "HEAD"})
"""The methods sent again after a minted token's 401: reads, which change nothing at the site."""
NOT_REPLAYED = frozenset(
    {
        b"host",
        b"authorization",
        b"cookie",
        b"proxy-authorization",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"upgrade",
        b"content-length",
    }
)
"""Request fields the proxy's own copy of a request does not take over: credentials, and its own connection's."""


class TokenVerdicts:
    """Reads the answers to injected credentials for the site's verdict on the token."""

    def __init__(self, outbound: Outbound, credentials: CredentialRegistry) -> None:
        self.outbound = outbound
        self.credentials = credentials
        self.policy = no_sites()
        self._logged = OncePer()

    def use(self, prepared: Prepared) -> None:
        self.policy = prepared.policy

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        record = FlowRecord.of(flow.metadata)
        if record.decision is not Decision.INJECT or flow.response is None:
            return
        response = flow.response
        fields.drop(response.headers, SET_COOKIE)
        site, host, stamp = record.site, record.host, record.stamp
        if site is None or host is None:
            return
        status, seen = response.status_code, fields.values(response.headers, VERDICT_FIELDS)
        self._note_rename(site, host, status, seen.get("location"))
        request = flow.request
        sent = Sent(request.method, GATEWAY if request.host == GATEWAY else host, request.port, request.path)
        reading = read_answer(status, seen, sent, self.credentials.site(site), self.policy)
        if stamp is not None:  # else the credential never went out: the answer says nothing of it
            self.outbound.act(site, host, stamp, reading, sent)
        if reading.verdict is TokenVerdict.SCOPE_MISS:
            self._note_scope_miss(site, request.host, sent)
        elif reading.verdict is not TokenVerdict.PASS:
            record.auth_failed = True
            if reading.verdict is TokenVerdict.RENEW and stamp is not None and replayable(request):
                record.replay = True

    def response(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        record = FlowRecord.of(flow.metadata)
        if not record.replay:
            return None
        record.replay = False
        return self._replay(flow, record)

    async def _replay(self, flow: http.HTTPFlow, record: FlowRecord) -> None:
        """Send the GET or HEAD again with the access token minted after its 401, if one was; else the 401 stays."""
        site, stamp, request, response = record.site, record.stamp, flow.request, flow.response
        if site is None or stamp is None or response is None or response.stream or request.raw_content is None:
            return
        if moved(flow) is not None or not await self.outbound.mints.renewed(site, stamp):
            return
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.fields
            if name.lower() not in NOT_REPLAYED
        ]
        host = record.host or request.host
        answer = await self.outbound.replay(
            site, host, request.method, (request.host, request.port), request.path, headers, request.raw_content or None
        )
        if answer is None:
            return
        answer_again(flow, answer.status, answer.reason, answer.headers, answer.body)
        record.auth_failed = answer.status == 401
        logger.info("site %s: %s %s sent again with a new access token", site, request.method, sent_route(request))

    def _note_scope_miss(self, site: str, host: str, sent: Sent) -> None:
        if self._logged.first("scope", site, sent.route):
            logger.warning(
                "%s: the API token of site %s lacks the scope for %s %s (401 %s); the answer goes to the client "
                "and the token stays in use. Scoped tokens get scopes per route: give the token the scope this "
                "route needs.",
                host,
                site,
                sent.method,
                sent.route,
                SCOPE_CHECK,
            )

    def _note_rename(self, site: str, host: str, status: int, location: str | None) -> None:
        """A credential host redirecting to another atlassian.net name: the site was probably renamed."""
        target = renamed_to(status, location, host)
        if target is None or not self._logged.first("rename", host, target):
            return
        where = "HOSTS" if site == "default" else f"the hosts of site {site} in [[sites]]"
        new_site = self.policy.sites.lookup(target, 443)
        gets = (
            f"{target} already gets the credentials of site {new_site.name}"
            if new_site is not None
            else f"{target} gets no credentials until then"
        )
        logger.warning(
            "%s redirects to %s (HTTP %d): the site was probably renamed. Change %s from %s to %s; %s. "
            "The redirect is passed to the client unchanged.",
            host,
            target,
            status,
            where,
            host,
            target,
            gets,
        )


def replayable(request: http.Request) -> bool:
    """A GET or HEAD that no method override may make a write at the site: only a read is sent twice."""
    if request.method not in REPLAYED or method_parameter(request.path) is not None:
        return False
    return not any(fields.present(request.headers, name) for name in METHOD_OVERRIDES)


def sent_route(request: http.Request) -> str:
    return request.path.partition("?")[0]
