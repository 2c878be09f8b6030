"""What each site's answer to an injected credential says of the token, and what the proxy does about it.

Only a confirmed rejection pauses the token: a scope miss never does, and a 401 or a failed
login is first confirmed by the identity page of the site's home (`policy.token_verdict`,
`policy.unauthorized`), unless the request was that very page. After a rejection, requests to
every host of the site are answered locally until the proxy's own check succeeds or the token
changes (`credentials.outbound`). Here the answer's head is read
once: Set-Cookie removed (a session of the site's must not reach the client in place of the
token), the reading asked of `policy`, `Outbound` told to act on it, and two warnings logged
once each, for a token short of a scope and for a site that was probably renamed.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from proxy_addon.addons import fields
from proxy_addon.addons.prepared import Prepared, no_sites
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.scoped import GATEWAY
from proxy_addon.policy.token_verdict import Sent, TokenVerdict, read_answer
from proxy_addon.policy.unauthorized import SCOPE_CHECK, OncePer, renamed_to

logger = logging.getLogger(__name__)

VERDICT_FIELDS = frozenset({b"x-failure-category", b"x-seraph-loginreason", b"location"})
"""The response fields the token verdict and the rename check read, gathered in one pass."""
SET_COOKIE = frozenset({b"set-cookie"})


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
