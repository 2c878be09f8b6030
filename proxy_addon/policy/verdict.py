"""The one verdict: what the proxy does with a request, from the facts of where it really goes.

`decide()` is the only place that turns a request's facts into a decision: the site lookup
(and the shared gateway for scoped tokens), plain http to a claimed host, client-chosen names
that differ from the real destination, browsers, read-only sites, scoped paths and the
rejected-token back-off. The hooks gather `RequestFacts` from mitmproxy and act on the
`Verdict`; nothing else decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy_addon.policy.hosts import malformed_authority, normalize_host, path_authority, split_authority
from proxy_addon.policy.readonly import read_only_allows
from proxy_addon.policy.record import Decision
from proxy_addon.policy.scoped import Gateway, gateway_path
from proxy_addon.policy.sites import Site, SiteTable
from proxy_addon.policy.token_health import TokenHealth


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the proxy knows of one request when its head has arrived.

    `host`/`port` are where the proxy really connects (the CONNECT target, or the configured
    target in reverse mode); `sni` is the name the upstream TLS session is for; `names` are
    every client-chosen authority (Host headers, `:authority`, an absolute-form URL's host).
    """

    scheme: str
    method: str
    path: str
    host: str
    port: int
    sni: str | None
    names: tuple[str, ...]
    origin: str | None = None
    fetch_site: str | None = None


@dataclass(frozen=True)
class Policy:
    """The prepared state the verdict reads: built once when the settings are applied."""

    sites: SiteTable
    gateway: Gateway
    allow_browsers: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    site: Site | None = None
    host: str | None = None
    """The normalized real destination, when a site claims it."""
    gateway_path: str | None = None
    """For a scoped site: the path on the API gateway the request is sent to instead."""
    retry_after: int = 0


def from_browser(origin: str | None, fetch_site: str | None) -> bool:
    """A request a web page may have made: it has an Origin, or a Sec-Fetch-Site other than `none`.

    `Sec-Fetch-Site: none` is what a browser sends for a user-initiated navigation.
    """
    return origin is not None or (fetch_site is not None and fetch_site.strip().lower() != "none")


def decide(facts: RequestFacts, policy: Policy, health: TokenHealth, now: float) -> Verdict:
    """The decision for one request. Only the real destination can earn credentials; client-chosen
    names, a browser origin, a read-only site or a paused token can only lose them.

    The back-off is asked last, because admitting a request may take the single probe slot.
    """
    name = normalize_host(facts.host)
    if facts.scheme != "https":
        return Verdict(Decision.CLEARTEXT if policy.sites.claims(name) else Decision.PASS)
    on_gateway = policy.gateway.is_gateway(name, facts.port)
    site = policy.gateway.site_for(facts.path) if on_gateway else policy.sites.lookup(name, facts.port)
    if site is None or name is None:
        return Verdict(Decision.PASS)
    named = facts.names if (in_path := path_authority(facts.path)) is None else (*facts.names, in_path)
    if any(malformed_authority(n) for n in named):
        return Verdict(Decision.BAD_AUTHORITY, site, name)
    if normalize_host(facts.sni) != name or not all(names_destination(n, name, facts.port) for n in named):
        return Verdict(Decision.MISDIRECTED, site, name)
    if not policy.allow_browsers and from_browser(facts.origin, facts.fetch_site):
        return Verdict(Decision.BROWSER, site, name)
    if site.read_only and not read_only_allows(facts.method, facts.path):
        return Verdict(Decision.READ_ONLY, site, name)
    rewritten = None
    if site.scoped and not on_gateway and (cloud_id := policy.gateway.cloud_id(site)) is not None:
        rewritten = gateway_path(cloud_id, facts.path)
        if rewritten is None:
            return Verdict(Decision.PASS, site, name)
    retry_after = health.admit(site.name, name, now)
    if retry_after is not None:
        return Verdict(Decision.BACKED_OFF, site, name, retry_after=retry_after)
    return Verdict(Decision.INJECT, site, name, rewritten)


def names_destination(authority: str, name: str, port: int) -> bool:
    """Does a client-chosen `host[:port]` denote the real destination `name:port`?"""
    host, named_port = split_authority(authority)
    return normalize_host(host) == name and named_port in (None, port)


def should_intercept(policy: Policy, host: str | None, port: int | None, sni: str | None) -> bool:
    """Decrypt a TLS connection only when it could earn credentials; tunnel the rest.

    An SNI with a trailing dot is tunnelled too: mitmproxy cannot verify the upstream
    certificate for such a name and would leave the client hanging.
    """
    if sni is None or sni.endswith("."):
        return False
    name = normalize_host(host)
    could_earn = policy.sites.lookup(name, port) is not None or policy.gateway.is_gateway(name, port)
    return could_earn and normalize_host(sni) == name


REFUSALS = {
    Decision.CLEARTEXT: (403, "refused to send credentials over plain http to {host}: use https://"),
    Decision.BAD_AUTHORITY: (400, "the Host, :authority or URL of this request is not a valid host[:port]"),
    Decision.MISDIRECTED: (421, "this connection goes to {host}; the request names another host"),
    Decision.READ_ONLY: (403, "site {site} is read-only: {method} {route} is not a read (see README, read-only)"),
    Decision.BROWSER: (
        403,
        "refused to add credentials to a browser request (Origin or Sec-Fetch-Site): "
        "set ATLASSIAN_PROXY_ALLOW_BROWSERS=true to allow",
    ),
}


def refusal(verdict: Verdict, facts: RequestFacts) -> tuple[int, str] | None:
    """The status and one-line message of a refusing verdict, or None when the request goes on."""
    entry = REFUSALS.get(verdict.decision)
    if entry is None:
        return None
    status, template = entry
    site = verdict.site.name if verdict.site else None
    route = facts.path.partition("?")[0]
    return status, template.format(host=facts.host, site=site, method=facts.method, route=route)
