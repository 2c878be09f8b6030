"""The root addon: loads and checks the settings once, then hands each hook class what it needs.

`atlassian-auth-proxy run` builds it with the settings and credentials it already checked;
`mitmdump -s proxy_addon/addon.py` builds it with nothing, and it reads the same settings.

It makes what several children share (token health, the credentials registry, `Outbound`, the
state store and the holds and windows shared through it, the proxy logins of connections, the
metrics registry) and hands each child the parts it needs when
it is built; at each configuration it builds one `Prepared` and calls each child's `use` with
it. The order of the children's hooks is `HOOK_ORDER` (docs/architecture.md says why).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Optional

from mitmproxy import ctx, exceptions
from prometheus_client import CollectorRegistry

from proxy_addon.addons.admin_endpoint import AdminEndpoint, Readiness
from proxy_addon.addons.audit_export import AuditExport
from proxy_addon.addons.boundaries import Boundaries
from proxy_addon.addons.client_limits import ClientLimits
from proxy_addon.addons.client_rate import ClientRate
from proxy_addon.addons.connect_errors import ConnectErrors
from proxy_addon.addons.connect_to import ConnectTo
from proxy_addon.addons.fail_closed import FailClosed, Guarded
from proxy_addon.addons.gateway_connect import GatewayConnect
from proxy_addon.addons.head_check import HeadCheck
from proxy_addon.addons.in_flight import InFlightCap
from proxy_addon.addons.injector import CredentialInjector, WireSource
from proxy_addon.addons.metrics import Metrics
from proxy_addon.addons.mitmproxy_internals import check
from proxy_addon.addons.prepared import Configured, Prepared
from proxy_addon.addons.proxy_auth import Logins, ProxyAuthentication
from proxy_addon.addons.rate_limit_holds import RateLimitHolds
from proxy_addon.addons.request_log import RequestLog
from proxy_addon.addons.safe_options import SafeOptions
from proxy_addon.addons.state_store import StateStore
from proxy_addon.addons.streaming import Streaming
from proxy_addon.addons.token_expiry import TokenExpiry
from proxy_addon.addons.token_verdicts import TokenVerdicts
from proxy_addon.addons.token_watcher import CredentialWatcher
from proxy_addon.addons.upstream_faults import UpstreamFaults
from proxy_addon.addons.upstream_pool import UpstreamPool
from proxy_addon.addons.wire import Wire
from proxy_addon.credentials.http_client import Reach, Unreachable
from proxy_addon.credentials.identity import check_target, cloud_id
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Resolved, resolve_sites
from proxy_addon.policy.refusals import Refusal
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import APP_PASSWORDS_REMOVED, BITBUCKET_API, SiteTable, app_password_user
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.policy.verdict import Policy
from proxy_addon.runtime.chain import chain
from proxy_addon.runtime.trust import write_client_bundle, write_client_truststore, write_upstream_bundle
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import SettingsError
from proxy_addon.settings.otlp import otlp_settings
from proxy_addon.state.holds import SharedHolds
from proxy_addon.state.rates import SharedRates
from proxy_addon.state.store import Store

logger = logging.getLogger(__name__)


class Link(NamedTuple):
    """One child's place in the hook order."""

    addon: type
    role: str
    """Why it is there: one line, the same in docs/architecture.md."""
    failed: Refusal = Refusal.UNDECIDED
    """What a client gets when one of its security hooks raises (`Guarded`)."""


HOOK_ORDER: tuple[Link, ...] = (
    Link(
        SafeOptions,
        "refuses mitmproxy options that would leak the credential, send before a verdict, move a request after it "
        "or open the proxy",
    ),
    Link(
        ProxyAuthentication,
        "the proxy login (407, the lockout's 429): first, so every later check knows the client",
        Refusal.UNDECIDED_LOGIN,
    ),
    Link(ClientLimits, "431 for an oversized head, a deadline to send one: before any work on the request"),
    Link(HeadCheck, "400 for a head other parsers could read differently: before any credential is added"),
    Link(
        ClientRate,
        "429 past a client's requests per minute: after the login that names it, before anything goes upstream",
    ),
    Link(UpstreamFaults, "502 for an untrusted upstream before any credential; the upstream timeout and fault pages"),
    Link(ConnectTo, "CONNECT_TO: where the upstream TCP connection goes, below every decision"),
    Link(CredentialInjector, "the verdict: intercept or tunnel, then the placeholder or a refusal on the head"),
    Link(
        RateLimitHolds,
        "the local 429 while a hold of the site's 429 covers the request: right after the verdict; 429s start holds",
    ),
    Link(TokenVerdicts, "what the answer to the credential says of the token; Set-Cookie removed"),
    Link(Wire, "the real credential only in the copy sent upstream; heads bounded while they arrive"),
    Link(Streaming, "streams bodies of unknown length: after the injector, which decides on the head alone"),
    Link(Boundaries, "bounded clients' credentialed requests judged: after the injector and Streaming"),
    Link(FailClosed, "after every check: refuses what none let through"),
    Link(
        GatewayConnect,
        "a CONNECT to a gateway site's own host answered without opening it: after every check of the CONNECT",
    ),
    Link(InFlightCap, "max_in_flight per site, the rest queued: after every check, so only what is sent takes a place"),
    Link(
        UpstreamPool,
        "warm upstream connections shared by clients: after every check, as its early CONNECT answer skips none",
    ),
    Link(CredentialWatcher, "keeps each site's token current: files, the keyring, SIGHUP"),
    Link(TokenExpiry, "warnings and a gauge for recorded token expiry dates"),
    Link(StateStore, "the state store of ATLASSIAN_PROXY_STATE_URL: shared from start to stop"),
    Link(ConnectErrors, "the CONNECT failure page, without the resolved address"),
    Link(Metrics, "after everything that decides: counts what the record says"),
    Link(RequestLog, "one line per request, from the same record"),
    Link(AuditExport, "the same record as an OTLP log record, batched and sent off the request path"),
    Link(AdminEndpoint, "/healthz, /livez and /metrics on loopback"),
)
"""The order in which mitmproxy's hooks reach the children; the root builds its chain from it."""


def known_gateway(resolved: tuple[Resolved, ...], settings: Settings, reach: Reach) -> Gateway:
    """Every site the API gateway knows by its cloudId: those with `cloud_id`, and the scoped and client-credentials
    sites, whose cloudId is looked up once without it. A site we cannot look up stops the start."""
    gateway = Gateway()
    owners: dict[str, str] = {}
    for entry in resolved:
        site = entry.site
        if site.cloud_id is None and not site.on_gateway:
            continue
        try:
            host = check_target(site, settings.site).host
            known = site.cloud_id or cloud_id(host, reach)
        except (Unreachable, SettingsError) as e:
            raise exceptions.OptionsError(f"site {site.name}: {e}") from None
        if (owner := owners.setdefault(known, site.name)) != site.name:
            raise exceptions.OptionsError(
                f"sites {owner} and {site.name} are both cloudId {known}: the gateway form could not tell whose "
                "credentials to send; configure the site once"
            )
        gateway.add(site, known, host)
    return gateway


def start_warnings(resolved: tuple[Resolved, ...]) -> list[str]:
    """What the settings will get wrong at the site, said once at start."""
    return [
        f"site {entry.site.name}: its email {entry.site.user!r} has no @, like a Bitbucket username of the app "
        f"password era; Bitbucket removed app passwords on {APP_PASSWORDS_REMOVED}, and the API tokens that replace "
        f"them take the Atlassian account email as the user for {BITBUCKET_API}: set email to it"
        for entry in resolved
        if app_password_user(entry.site)
    ]


class AtlassianAuthProxy:
    """Root addon; its children each own one concern, and share only what it hands them."""

    def __init__(
        self,
        settings: Settings | None = None,
        given: tuple[SiteTable, list[Resolved]] | None = None,
        runtime: Sequence[object] = (),
        refuse_start: Callable[[str], None] | None = None,
    ) -> None:
        """`run` passes the settings and credentials it already checked, its own addons (`runtime`,
        run after every child, so mitmproxy dispatches one addon instead of several) and how a bad
        bound address stops its start; mitmdump passes nothing."""
        self.given_settings = settings
        self.given = given
        self.prepared = Prepared()
        self.health = TokenHealth()
        self.credentials = CredentialRegistry(self.health)
        self.store = Store()
        self.holds = SharedHolds(self.store)
        rates = SharedRates(self.store)
        self.outbound = Outbound(self.health, self.credentials, self.holds, self.store)
        self.wire_source = WireSource(self.health, self.credentials)
        self.readiness = Readiness(self.credentials, self.health, self.outbound.mints)
        logins = Logins()
        metrics = CollectorRegistry()
        self.safe_options = SafeOptions(refuse_start)
        self.proxy_auth = ProxyAuthentication(logins)
        self.client_limits = ClientLimits()
        self.client_rate = ClientRate(rates)
        self.faults = UpstreamFaults()
        self.connect_to = ConnectTo()
        self.injector = CredentialInjector(self.health, self.outbound)
        self.token_verdicts = TokenVerdicts(self.outbound, self.credentials)
        self.boundaries = Boundaries(self.outbound, rates)
        self.fail_closed = FailClosed()
        self.pool = UpstreamPool(metrics)
        self.watcher = CredentialWatcher(self.credentials, self.health, self.outbound.mints)
        self.expiry = TokenExpiry(metrics)
        self.metrics = Metrics(metrics, logins)
        self.request_log = RequestLog()
        self.audit_export = AuditExport(metrics)
        self.admin = AdminEndpoint(self.readiness, metrics)
        children: list[object] = [
            self.safe_options,
            self.proxy_auth,
            self.client_limits,
            HeadCheck(),
            self.client_rate,
            self.faults,
            self.connect_to,
            self.injector,
            RateLimitHolds(self.holds, metrics),
            self.token_verdicts,
            Wire(self.wire_source),
            Streaming(),
            self.boundaries,
            self.fail_closed,
            GatewayConnect(),
            InFlightCap(self.holds, self.health, metrics),
            self.pool,
            self.watcher,
            self.expiry,
            StateStore(self.store, metrics),
            ConnectErrors(),
            self.metrics,
            self.request_log,
            self.audit_export,
            self.admin,
        ]
        self.children = in_hook_order(children)
        self.configured = [child for child in self.children if isinstance(child, Configured)]
        guarded = [Guarded(child, link.failed) for child, link in zip(self.children, HOOK_ORDER, strict=True)]
        chain(self, [*guarded, *runtime])

    def load(self, loader: Any) -> None:
        loader.add_option(
            "atlassian_proxy_config",
            Optional[str],  # noqa: UP045 - mitmproxy's option type check predates `X | None`
            None,
            "TOML settings file for atlassian-auth-proxy (else ATLASSIAN_PROXY_CONFIG).",
        )

    def configure(self, updated: set[str]) -> None:
        """Prepare the settings once, then let each child read its own from them."""
        if "atlassian_proxy_config" not in updated:
            return
        check()  # `run` and mitmdump both configure the root before they listen
        config = ctx.options.atlassian_proxy_config
        try:
            settings = self.given_settings or load_settings(Path(config) if config else None)
            self.apply(self._prepare(settings))
        except SettingsError as e:
            raise exceptions.OptionsError(str(e)) from None
        ctx.options.update(**self._options(settings))

    def apply(self, prepared: Prepared) -> None:
        """Hand `prepared` to what the children share, then to each child that has settings."""
        self.prepared = prepared
        for entry in prepared.resolved:
            if entry.credentials is not None:
                self.credentials.adopt(entry.site, entry.credentials)
        self.outbound.use(prepared.policy, prepared.reach, prepared.settings.upstream_timeout)
        self.outbound.mints.use(prepared.resolved, prepared.reach, prepared.settings.upstream_timeout)
        for child in self.configured:
            child.use(prepared)

    def _prepare(self, settings: Settings) -> Prepared:
        table, resolved = self.given or resolve_sites(settings)
        reach = Reach.of(settings)
        gateway = known_gateway(tuple(resolved), settings, reach)
        return Prepared(
            settings=settings,
            policy=Policy(table, gateway, settings.allow_browsers, settings.site),
            resolved=tuple(resolved),
            reach=reach,
            clients=settings.client_table,
            login=settings.proxy_login,
            otlp=otlp_settings(os.environ),
        )

    def running(self) -> None:
        prepared = self.prepared
        gateway = prepared.policy.gateway
        for entry in prepared.resolved:
            hosts = ", ".join(map(str, entry.site.patterns))
            if entry.credentials is not None:
                who = entry.credentials.user or "(bearer)"
                logger.info(
                    "site %s: credentials for %s from %s go to %s",
                    entry.site.name,
                    who,
                    entry.credentials.source,
                    hosts,
                )
            elif entry.client is not None:
                logger.info(
                    "site %s: access tokens of client_id %s, minted at auth.atlassian.com with the secret from %s, go "
                    "to the API gateway for %s (cloudId %s)",
                    entry.site.name,
                    entry.client.client_id,
                    entry.source.description,
                    hosts,
                    gateway.cloud_id(entry.site),
                )
        for warning in start_warnings(prepared.resolved):
            logger.warning("%s", warning)
        bundle = write_client_bundle(Path(ctx.options.confdir).expanduser())
        if bundle is not None:
            logger.info("clients trust %s (public CAs + this proxy's CA); see `atlassian-auth-proxy env`", bundle)
            write_client_truststore(bundle.parent)
        if prepared.login is not None:
            logger.info("clients must authenticate to the proxy as %s", prepared.login.user)
        if prepared.clients:
            logger.info("clients must authenticate to the proxy as one of: %s", ", ".join(prepared.clients.clients))

    def done(self) -> None:
        self.outbound.done()

    @staticmethod
    def _options(settings: Settings) -> dict[str, Any]:
        """Our settings for mitmproxy's own options, where the user has not set those directly.

        The listen address is not among them: mitmdump may already be binding it while scripts
        load, so `run` passes it to mitmproxy up front and SafeOptions checks it either way.
        """
        changes: dict[str, Any] = {}
        if ctx.options.confdir == ctx.options.default("confdir"):
            changes["confdir"] = str(settings.confdir)
        if settings.upstream_ca_bundle is not None:
            changes["ssl_verify_upstream_trusted_ca"] = str(
                write_upstream_bundle(settings.upstream_ca_bundle, settings.confdir)
            )
        return changes


def in_hook_order(children: Sequence[object]) -> list[object]:
    """`children` in `HOOK_ORDER`: each class there exactly once."""
    by_class = {type(child): child for child in children}
    missing = [link.addon.__name__ for link in HOOK_ORDER if link.addon not in by_class]
    if len(by_class) != len(children) or len(children) != len(HOOK_ORDER) or missing:
        raise TypeError(f"the children do not match HOOK_ORDER (missing: {', '.join(missing) or 'none'})")
    return [by_class[link.addon] for link in HOOK_ORDER]
