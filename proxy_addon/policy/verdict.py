"""The one verdict: what the proxy does with a request, from the facts of where it really goes.

`decide()` is the only place that turns a request's facts into a decision: the site lookup
(and the API gateway: a site's own host moved there for a scoped or minted token, the gateway
form of a known cloudId, a classic site's gateway form moved to its own host), plain http to a
claimed host, methods no credential rides, client-chosen names that differ from the real
destination, browsers, a `[[clients]]` client's sites and read-only bound, a request target URL
parsers read in different ways, method overrides where a rule judges the method, a login of the
client's own in the query, read-only sites (in the site's layout), scoped paths and the
rejected-token back-off. The hooks gather
`RequestFacts` from mitmproxy and act on the `Verdict`; nothing else decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, cast
from urllib.parse import unquote_plus

from proxy_addon.policy.clients import Client
from proxy_addon.policy.hosts import malformed_authority, normalize_host, path_authority, split_authority
from proxy_addon.policy.layouts import layout_of
from proxy_addon.policy.readonly import read_only_allows
from proxy_addon.policy.record import Decision
from proxy_addon.policy.refusals import REFUSAL_OF, Refusal
from proxy_addon.policy.scoped import GATEWAY, Gateway, gateway_path, site_path
from proxy_addon.policy.sites import Site, SiteTable
from proxy_addon.policy.targets import ambiguous_target
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.policy.unauthorized import query_login


@dataclass(slots=True)
class RequestFacts:
    """What the proxy knows of one request when its head has arrived.

    `host`/`port` are where the proxy really connects (the CONNECT target, or the configured
    target in reverse mode); `sni` is the name the upstream TLS session is for; `names` are
    every client-chosen authority (Host headers, `:authority`, an absolute-form URL's host).
    `plain_hop` is an `https://` request sent to the proxy in plain text, without a CONNECT
    tunnel (axios before 1.16.1 does this): the proxy's own TLS then goes to the URL's host,
    but the request crossed the hop from the client unencrypted, which is harmless only when
    that hop is loopback (`client_loopback`). `client` is the `[[clients]]` client the request
    authenticated as, whose bounds it must stay within. `method_override` is the name of a
    method-override header the request carries (`METHOD_OVERRIDES`), as sent.
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
    plain_hop: bool = False
    client_loopback: bool = False
    client: Client | None = None
    method_override: str | None = None


@dataclass(frozen=True)
class Policy:
    """The prepared state the verdict reads: built once when the settings are applied."""

    sites: SiteTable
    gateway: Gateway
    allow_browsers: bool = False
    named_site: str | None = None
    """ATLASSIAN_PROXY_SITE: the user's own site, the home of the site that gets it (`policy.homes`)."""


class Moved(NamedTuple):
    """Where a credentialed request is sent instead of where the client sent it: a host (port 443) and path."""

    host: str
    path: str


@dataclass(slots=True)
class Verdict:
    decision: Decision
    site: Site | None = None
    host: str | None = None
    """The normalized real destination, when a site claims it (a classic site's own host for its gateway form)."""
    moved_to: Moved | None = None
    """The request goes there instead: the gateway for a scoped or minted token on the site's own host, the
    site's own host for a classic token's gateway form."""
    retry_after: int = 0
    check_due: bool = False
    """Backed off, but the pause is over: the proxy's own check of the token decides; wait for it."""


CREDENTIAL_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
"""The methods Atlassian's REST APIs use, the only ones a credential rides. A server that echoes a
TRACE (Apache's default `TraceEnable On`) would hand the credential back to the client; TRACK,
CONNECT inside a tunnel and unknown methods have no use at a site. Methods are case-sensitive."""
ALLOWED_METHODS = ", ".join(CREDENTIAL_METHODS)
"""The `Allow` header of the 405 (RFC 9110 requires one)."""
_CREDENTIAL_METHODS = frozenset(CREDENTIAL_METHODS)

METHOD_OVERRIDES = frozenset({b"x-http-method-override", b"x-http-method", b"x-method-override"})
"""Header fields (lower case) with which frameworks let a request run as another method than its own."""
METHOD_PARAMETER = "_method"
"""The query parameter that does the same (Jersey's and Rails' filters)."""


def method_override(facts: RequestFacts) -> str | None:
    """What would let the site run the request as another method than the one judged: a header, or `_method`."""
    if facts.method_override is not None:
        return facts.method_override
    return method_parameter(facts.path)


def method_parameter(path: str) -> str | None:
    """The `_method` query parameter of `path`, named for a refusal, if it has one (any case, decoded)."""
    query = path.partition("?")[2]
    if METHOD_PARAMETER not in query.lower() and "%" not in query:
        return None
    for part in query.split("&"):
        if unquote_plus(part.partition("=")[0]).lower() == METHOD_PARAMETER:
            return f"the query parameter {METHOD_PARAMETER}"
    return None


def from_browser(origin: str | None, fetch_site: str | None) -> bool:
    """A request a web page may have made: it has an Origin, or a Sec-Fetch-Site other than `none`.

    `Sec-Fetch-Site: none` is what a browser sends for a user-initiated navigation.
    """
    return origin is not None or (fetch_site is not None and fetch_site.strip().lower() != "none")


def decide(facts: RequestFacts, policy: Policy, health: TokenHealth, now: float) -> Verdict:
    """The decision for one request. Only the real destination can earn credentials; client-chosen
    names, a browser origin, the client's bounds, a read-only site or a paused token can only lose them.
    """
    name = normalize_host(facts.host)
    if facts.scheme != "https":
        return Verdict(Decision.CLEARTEXT if policy.sites.claims(name) else Decision.PASS)
    on_gateway = policy.gateway.is_gateway(name, facts.port)
    tenant = policy.gateway.tenant_for(facts.path) if on_gateway else None
    site = tenant.site if tenant is not None else None if on_gateway else policy.sites.lookup(name, facts.port)
    if site is None or name is None:
        return Verdict(Decision.PASS)
    if facts.method not in _CREDENTIAL_METHODS:
        return Verdict(Decision.METHOD_NOT_ALLOWED, site, name)
    if facts.plain_hop and not facts.client_loopback:
        return Verdict(Decision.CLEARTEXT_HOP, site, name)
    named = facts.names if (in_path := path_authority(facts.path)) is None else (*facts.names, in_path)
    if any(malformed_authority(n) for n in named):
        return Verdict(Decision.BAD_AUTHORITY, site, name)
    if not same_name(facts.sni, facts.host, name) or not all(
        names_destination(n, facts.host, name, facts.port) for n in named
    ):
        return Verdict(Decision.MISDIRECTED, site, name)
    if not policy.allow_browsers and from_browser(facts.origin, facts.fetch_site):
        return Verdict(Decision.BROWSER, site, name)
    client = facts.client
    if client is not None and not client.may_use(site.name):
        return Verdict(Decision.CLIENT_SITE, site, name)
    read_only = site.read_only or (client is not None and client.read_only)
    judged = judges_target(site, client)
    if ambiguous_target(facts.path, judged) is not None:
        return Verdict(Decision.AMBIGUOUS_TARGET, site, name)
    if judged and method_override(facts) is not None:
        return Verdict(Decision.METHOD_OVERRIDE, site, name)
    if query_login(facts.path) is not None:
        return Verdict(Decision.QUERY_LOGIN, site, name)
    if read_only and not read_only_allows(facts.method, facts.path, layout_of(name, site.layout)):
        return Verdict(Decision.READ_ONLY if site.read_only else Decision.CLIENT_READ_ONLY, site, name)
    moved_to = None
    if tenant is not None and not site.on_gateway:
        path = site_path(tenant.cloud_id, facts.path)
        if path is None or tenant.host is None:
            return Verdict(Decision.PASS, site, name)
        name, moved_to = tenant.host, Moved(tenant.host, path)
    elif site.on_gateway and not on_gateway:
        cloud_id = policy.gateway.own_cloud_id(site, name)
        path = gateway_path(cloud_id, facts.path) if cloud_id is not None else None
        if path is None:
            return Verdict(Decision.PASS, site, name)
        moved_to = Moved(GATEWAY, path)
    hold = health.admit(site.name, name, now)
    if hold is not None:
        return Verdict(Decision.BACKED_OFF, site, name, retry_after=hold.retry_after, check_due=hold.check_due)
    return Verdict(Decision.INJECT, site, name, moved_to)


def judges_target(site: Site, client: Client | None) -> bool:
    """Does a rule read this request's target beyond its site: a bounded or read-only client, a read-only site?"""
    return site.read_only or (client is not None and (client.read_only or client.bounded))


def same_name(text: str | None, host: str, name: str) -> bool:
    """Does `text` denote the destination `host`, normalized `name`? The same text needs no second look."""
    return text == host or normalize_host(text) == name


def names_destination(authority: str, host: str, name: str, port: int) -> bool:
    """Does a client-chosen `host[:port]` denote the real destination `name:port`?"""
    named_host, named_port = split_authority(authority)
    return named_port in (None, port) and same_name(named_host, host, name)


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


def moved_to_gateway(policy: Policy, host: str | None, port: int | None) -> bool:
    """Do the credentialed requests of a connection to `host:port` all go to the API gateway instead: the own
    host of a scoped or client-credentials site whose cloudId is known?"""
    name = normalize_host(host)
    site = policy.sites.lookup(name, port)
    return site is not None and site.on_gateway and policy.gateway.own_cloud_id(site, name) is not None


def refusal(verdict: Verdict, facts: RequestFacts) -> tuple[Refusal, dict[str, object]] | None:
    """The refusal of a refusing verdict and the facts its text names (`policy.refusals`), or None when
    the request goes on."""
    refused = REFUSAL_OF.get(verdict.decision)
    if refused is None:
        return None
    site = verdict.site.name if verdict.site else None
    differs = misdirection(facts) if verdict.decision is Decision.MISDIRECTED else ""
    override = restricted = ambiguous = None
    if verdict.decision is Decision.METHOD_OVERRIDE:
        override, restricted = method_override(facts), restricted_by(facts.client, site)
    if verdict.decision is Decision.AMBIGUOUS_TARGET and verdict.site is not None:
        ambiguous = ambiguous_target(facts.path, judges_target(verdict.site, facts.client))
    client = facts.client
    bound = ", ".join(sorted(client.sites)) if client is not None and client.sites is not None else ""
    return refused, {
        "host": facts.host,
        "site": site,
        "method": facts.method,
        "route": facts.path.partition("?")[0],
        "differs": differs,
        "client": client.name if client is not None else None,
        "bound": bound,
        "override": override,
        "restricted": restricted,
        "what": ambiguous,
        "who": f"client {client.name}: " if client is not None else "",
        "retry_after": verdict.retry_after,
        "login": query_login(facts.path) if verdict.decision is Decision.QUERY_LOGIN else None,
        "allowed": ALLOWED_METHODS,
    }


def restricted_by(client: Client | None, site: str | None) -> str:
    """What judges a request by its method: the client's bounds or read-only, else the site's read-only."""
    if client is not None and client.bounded:
        return f"client {client.name} has bounds"
    if client is not None and client.read_only:
        return f"client {client.name} is read-only"
    return f"site {site} is read-only"


def misdirection(facts: RequestFacts) -> str:
    """What named another host than the real destination: the TLS name, or which client-chosen name."""
    name = cast(str, normalize_host(facts.host))  # decide() called it misdirected: the host normalized
    if facts.sni is None:
        return "the client sent no TLS server name (SNI) for it"
    if normalize_host(facts.sni) != name:
        return f"the TLS server name (SNI) is {facts.sni}"
    named = next((n for n in facts.names if not names_destination(n, facts.host, name, facts.port)), "another host")
    return f"the request names {named} (Host, :authority or the URL)"
