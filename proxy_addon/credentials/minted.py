"""Service accounts' access tokens: minted by the proxy at auth.atlassian.com, kept in memory only.

A site with `scheme = "client_credentials"` has a client id and secret, not a token. The proxy
trades them for a Bearer access token (`POST https://auth.atlassian.com/oauth/token`, the id
and secret in the form body only; `auth.atlassian.com` never gets a client's credentials, it
is in `policy.sites.NEVER_CREDENTIALED`) and hands it to the credentials registry like any
other token, so the wire puts it only into the copy of the request head it sends. The access
token is a `SecretStr` from the moment it is read from the answer (`read_token_answer`); the
secret is one until the form body is built (`token_request_body`).

`Mints` keeps each such site's token current:
- a request finds it fresh with one comparison, or waits for the one mint of its site that is
  running (the first request that found it due started it);
- a token is minted again once less than min(lifetime / 5, 5 minutes) of it is left, and a
  token with less than min(lifetime / 10, 30 s) left is never sent;
- a 401 from the gateway to the current token starts one mint at once (`renew`), at most one
  per `RENEW_AFTER_401_SECONDS`: a new token that is refused too says the account, not the
  token, is the problem;
- a rejected id or secret is logged once and tried again at most every `REJECTED_RETRY_SECONDS`;
  an endpoint that cannot be reached, every `FAILED_RETRY_SECONDS`;
- a 429 from the token endpoint is a rate-limit hold like a site's (`state.holds`, shared through
  the state store): no mint of that site is sent before its `Retry-After` (else the doubling wait)
  is over, here or in another proxy sharing the store. A token that may still be sent goes on
  being sent meanwhile.
Token health never pauses such a site and no identity page confirms its 401s
(`policy.token_verdict`): a minted token that fails is replaced, not paused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from pydantic import SecretStr

from proxy_addon.credentials.http_client import Reach, Unreachable, exchange, json_object
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import ClientSecret, Credentials, Resolved
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.policy.tokens import TokenFormatError, authorization_value, parse_token
from proxy_addon.state.holds import SharedHolds
from proxy_addon.state.store import Store

logger = logging.getLogger(__name__)

TOKEN_HOST = "auth.atlassian.com"  # noqa: S105 - the token endpoint's host, not a token
TOKEN_PATH = "/oauth/token"  # noqa: S105 - its path
TOKEN_HEADERS = (("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"))
MAX_TOKEN_ANSWER = 64 * 1024
TOKEN_DEADLINE = 30.0
"""The longest a mint may take in all: one stuck at a token endpoint that answers a byte at a time would hold the
site's one mint, and so every request needing a token, for as long as it dripped."""
DEFAULT_LIFETIME = 3600.0
"""Atlassian's access tokens last 60 minutes; an answer without `expires_in` is taken to mean that."""
MAX_RENEW_MARGIN = 300.0
MIN_LIFETIME = 10
"""An answer whose token lasts less is no token: renewed as soon as it is sent, every request would mint one."""
REJECTED_RETRY_SECONDS = 30
FAILED_RETRY_SECONDS = 5
RENEW_AFTER_401_SECONDS = 30.0
REJECTING_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
"""OAuth error codes (RFC 6749, 5.2) that reject the client's id or secret; any 401 does too."""
ERROR_CODE = re.compile(r"[a-z_]{1,40}")


class MintFailed(Unreachable):
    """No access token could be minted: the endpoint could not be asked, failed, or answered no token."""

    def __init__(self, why: str, retry_after: int = FAILED_RETRY_SECONDS) -> None:
        super().__init__(why)
        self.why = why
        self.retry_after = retry_after


class MintRejected(MintFailed):
    """The token endpoint rejected the client id or secret."""


class MintLimited(MintFailed):
    """The token endpoint answered 429: `headers` (lowercased) say how long to wait."""

    def __init__(self, why: str, headers: dict[str, str]) -> None:
        super().__init__(why)
        self.headers = headers


@dataclass(frozen=True)
class Minted:
    """An access token, as its Authorization value, and how many seconds it lasts."""

    authorization: SecretStr
    lifetime: float


def token_request_body(client: ClientSecret) -> bytes:
    """The form the token endpoint takes: the only place the client secret is in plain text."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.secret.get_secret_value(),
    }
    return urlencode(form).encode("ascii")


def oauth_error(document: dict[str, object]) -> str | None:
    """The answer's OAuth error code, if it is one (a short code, never a free text of the site's)."""
    error = document.get("error")
    return error if isinstance(error, str) and ERROR_CODE.fullmatch(error) else None


def read_token_answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Minted:
    """The access token the endpoint answered, wrapped at once; MintRejected, MintLimited or MintFailed otherwise.
    `headers` are the answer's, lowercased."""
    document = json_object(body)
    error = oauth_error(document)
    said = f"HTTP {status}" + (f" {error}" if error else "")
    if status == 429:
        raise MintLimited(said, headers or {})
    if status == 401 or (status in (400, 403) and error in REJECTING_ERRORS):
        raise MintRejected(said, REJECTED_RETRY_SECONDS)
    if status != 200:
        raise MintFailed(said)
    token_type = document.get("token_type", "Bearer")
    text = document.pop("access_token", None)
    if not isinstance(text, str) or not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise MintFailed("the answer holds no Bearer access token")
    try:
        token = parse_token(text)
    except TokenFormatError:
        raise MintFailed("the access token it answered has characters no token has") from None
    del text
    expires_in = document.get("expires_in", DEFAULT_LIFETIME)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or not expires_in < 10**7:
        expires_in = DEFAULT_LIFETIME
    if expires_in < MIN_LIFETIME:
        raise MintFailed(
            f"the access token it answered lasts {expires_in:g} s, less than the {MIN_LIFETIME} s it needs"
        )
    return Minted(authorization_value("", token, bearer=True), float(expires_in))


def mint(client: ClientSecret, reach: Reach) -> Minted:
    """Ask the token endpoint for an access token (blocking: run it off the event loop)."""
    try:
        answer = exchange(
            TOKEN_HOST,
            443,
            "POST",
            TOKEN_PATH,
            TOKEN_HEADERS,
            token_request_body(client),
            reach,
            MAX_TOKEN_ANSWER,
            TOKEN_DEADLINE,
        )
    except Unreachable as e:
        raise MintFailed(str(e)) from None
    return read_token_answer(answer.status, answer.body, {name.lower(): value for name, value in answer.headers})


def renew_margin(lifetime: float) -> float:
    """Mint again once less than this is left of a token: min(lifetime / 5, 5 minutes)."""
    return min(lifetime / 5, MAX_RENEW_MARGIN)


def send_margin(lifetime: float) -> float:
    """Never send a token with less than this left: min(lifetime / 10, 30 s)."""
    return min(lifetime / 10, 30.0)


@dataclass
class SiteMint:
    """One client-credentials site's token and what its mints said. Times are monotonic seconds."""

    site: Site
    client: ClientSecret
    source: str
    """Where the secret came from, for the log."""
    renew_at: float = 0.0
    usable_until: float = 0.0
    stamp: int | None = None
    """Token health's stamp when the current token was adopted: requests sent since carry it."""
    next_try: float = 0.0
    rejected: str | None = None
    failed: str | None = None
    renewed_on_401: float = -math.inf
    refused: bool = False
    """The gateway refused the current token (a 401): requests wait for the mint that replaces it."""
    task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


class Mints:
    """The access tokens of every client-credentials site: one mint at a time per site, in memory only."""

    def __init__(self, health: TokenHealth, credentials: CredentialRegistry, holds: SharedHolds | None = None) -> None:
        self.health = health
        self.credentials = credentials
        self.holds = SharedHolds(Store()) if holds is None else holds
        self.reach = Reach()
        self.timeout = 60.0
        self._mints: dict[str, SiteMint] = {}

    def use(self, resolved: Iterable[Resolved], reach: Reach, timeout: float) -> None:
        """The client-credentials sites as configured. A site whose client id and secret are unchanged keeps its
        token; any other starts without one."""
        kept: dict[str, SiteMint] = {}
        for entry in resolved:
            if entry.client is None:
                continue
            site = entry.site
            old = self._mints.get(site.name)
            if old is not None and old.client == entry.client:
                old.site = site
                kept[site.name] = old
            else:
                kept[site.name] = SiteMint(site, entry.client, entry.source.description)
                self.credentials.forget(site.name)
            self.credentials.register(site)
        self._mints, self.reach, self.timeout = kept, reach, timeout

    def due(self, site: str, now: float) -> bool:
        """Must a request for `site` wait for a mint (`fresh`) first? False for a fresh token, and for other sites."""
        mint_of = self._mints.get(site)
        return mint_of is not None and now >= mint_of.renew_at

    async def fresh(self, site: str) -> None:
        """A token for `site` that may be sent now: minted first if due (or waited for, when another request
        started that mint). A token still good is sent while its renewal runs: waiting for it would add the token
        endpoint's round trip, or its whole timeout when it hangs, to requests that need no new token. Raises
        `MintRejected` or `MintFailed` when there is none."""
        mint_of = self._mints[site]
        now = time.monotonic()
        if now < mint_of.renew_at:
            return
        task = self._start(mint_of, now)
        good = mint_of.rejected is None and not mint_of.refused and now < mint_of.usable_until
        if task is not None and not good:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), self.timeout)
        self._usable(mint_of)

    def renew(self, site: str, stamp: int) -> None:
        """The gateway answered 401 to the token sent at `stamp`: unless that token was replaced since (or one was
        minted after a 401 less than `RENEW_AFTER_401_SECONDS` ago), nothing carries it any more and a mint starts."""
        mint_of = self._mints.get(site)
        if mint_of is None or mint_of.stamp is None or stamp < mint_of.stamp:
            return
        now = time.monotonic()
        if now - mint_of.renewed_on_401 < RENEW_AFTER_401_SECONDS:
            return
        mint_of.renewed_on_401 = now
        mint_of.renew_at = 0.0
        mint_of.refused = True
        if self._start(mint_of, now) is None:
            logger.warning(
                "site %s: the API gateway refused its access token before it expired; no new one is minted before "
                "the token endpoint may be asked again",
                site,
            )
        else:
            logger.warning(
                "site %s: the API gateway refused its access token before it expired (revoked?); minting a new one",
                site,
            )

    async def renewed(self, site: str, stamp: int) -> bool:
        """After `renew`: is there a usable token newer than the one sent at `stamp` (once the mint is done)?"""
        mint_of = self._mints.get(site)
        if mint_of is None:
            return False
        if mint_of.running and mint_of.task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(mint_of.task), self.timeout)
        try:
            self._usable(mint_of)
        except MintFailed:
            return False
        return mint_of.stamp is not None and mint_of.stamp > stamp

    def new_secret(self, site: str, secret: SecretStr) -> bool:
        """The site's secret changed (its file, the keyring, SIGHUP): the next request may mint with it at once.
        False when it is the same."""
        mint_of = self._mints.get(site)
        if mint_of is None or mint_of.client.secret == secret:
            return False
        mint_of.client = ClientSecret(mint_of.client.client_id, secret)
        mint_of.next_try = 0.0
        if mint_of.rejected is not None:
            mint_of.renew_at = 0.0
        return True

    def rejected(self) -> list[str]:
        """The sites whose client credentials the token endpoint rejected (for /healthz)."""
        return sorted(name for name, mint_of in self._mints.items() if mint_of.rejected is not None)

    def _start(self, mint_of: SiteMint, now: float) -> asyncio.Task[None] | None:
        """The running mint of the site, or a new one; None while the endpoint may not be asked again yet."""
        if mint_of.running:
            return mint_of.task
        if now < mint_of.next_try:
            return None
        held = self.holds.check(mint_of.site.name, TOKEN_HOST, "POST", TOKEN_PATH)
        if held is not None:
            mint_of.next_try = now + held.retry_after
            mint_of.failed = mint_of.failed or f"held {held.retry_after} s after a 429"
            return None
        mint_of.task = asyncio.get_running_loop().create_task(self._mint(mint_of))
        return mint_of.task

    def _usable(self, mint_of: SiteMint) -> None:
        """Raise unless the site has a token that may be sent now."""
        now = time.monotonic()
        retry_after = max(1, math.ceil(mint_of.next_try - now))
        if mint_of.rejected is not None:
            raise MintRejected(mint_of.rejected, retry_after)
        if now < mint_of.usable_until:
            return
        raise MintFailed(mint_of.failed or f"it did not answer within {self.timeout:g} s", retry_after)

    async def _mint(self, mint_of: SiteMint) -> None:
        site = mint_of.site.name
        started, sent = time.monotonic(), time.time()
        try:
            minted = await asyncio.to_thread(mint, mint_of.client, self.reach)
        except MintLimited as e:
            await self._limited(mint_of, e, sent)
            return
        except MintRejected as e:
            mint_of.next_try = time.monotonic() + REJECTED_RETRY_SECONDS
            if mint_of.rejected is None:
                logger.warning(
                    "site %s: %s rejected the client credentials of client_id %s (%s; the secret from %s): the secret "
                    "may be wrong, rotated or revoked, or the service account removed. Requests for the site are "
                    "answered locally with 502 (client_credentials_rejected); the proxy asks again at most every "
                    "%d s, at once when the secret changes.",
                    site,
                    TOKEN_HOST,
                    mint_of.client.client_id,
                    e.why,
                    mint_of.source,
                    REJECTED_RETRY_SECONDS,
                )
            mint_of.rejected = e.why
            return
        except MintFailed as e:
            mint_of.next_try = time.monotonic() + FAILED_RETRY_SECONDS
            if mint_of.failed is None:
                logger.warning("site %s: could not mint an access token at %s: %s", site, TOKEN_HOST, e.why)
            mint_of.failed = e.why
            return
        self.credentials.adopt(
            mint_of.site, Credentials(mint_of.client.client_id, mint_of.source, minted.authorization)
        )
        mint_of.stamp = self.health.stamp()
        lifetime = minted.lifetime
        mint_of.renew_at = started + lifetime - renew_margin(lifetime)
        mint_of.usable_until = started + lifetime - send_margin(lifetime)
        mint_of.next_try = 0.0
        mint_of.refused = False
        if mint_of.rejected is not None or mint_of.failed is not None:
            logger.info("site %s: %s minted an access token again; requests pass as usual", site, TOKEN_HOST)
        mint_of.rejected = mint_of.failed = None
        logger.debug("site %s: minted an access token for %.0f s", site, lifetime)
        self.holds.answered(site, TOKEN_HOST, "POST", TOKEN_PATH, 200, {}, sent)

    async def _limited(self, mint_of: SiteMint, limited: MintLimited, sent: float) -> None:
        """A 429 from the token endpoint: hold the site's mints as a site's 429 holds its requests."""
        site = mint_of.site.name
        told = self.holds.answered(site, TOKEN_HOST, "POST", TOKEN_PATH, 429, limited.headers, sent)
        if told is not None:
            await told
        held = self.holds.check(site, TOKEN_HOST, "POST", TOKEN_PATH)
        wait = held.retry_after if held is not None else FAILED_RETRY_SECONDS
        mint_of.next_try = time.monotonic() + wait
        why = f"{limited.why}, held {wait} s"
        if mint_of.failed is None:
            logger.warning(
                "site %s: %s answered 429 Too Many Requests; no access token is minted for %d s", site, TOKEN_HOST, wait
            )
        mint_of.failed = why

    def done(self) -> None:
        for mint_of in self._mints.values():
            if mint_of.task is not None:
                mint_of.task.cancel()
