"""The root addon: loads and checks the settings once, then hands each hook class what it needs.

`atlassian-auth-proxy run` builds it with the settings and credentials it already checked;
`mitmdump -s proxy_addon/addon.py` builds it with nothing, and it reads the same settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from mitmproxy import ctx, exceptions

from proxy_addon.addons.admin_endpoint import AdminEndpoint
from proxy_addon.addons.boundaries import Boundaries
from proxy_addon.addons.client_limits import ClientLimits
from proxy_addon.addons.client_rate import ClientRate
from proxy_addon.addons.connect_errors import ConnectErrors
from proxy_addon.addons.connect_to import ConnectTo
from proxy_addon.addons.fail_closed import FailClosed, Guarded
from proxy_addon.addons.head_check import HeadCheck
from proxy_addon.addons.injector import CredentialInjector
from proxy_addon.addons.metrics import Metrics
from proxy_addon.addons.mitmproxy_internals import check
from proxy_addon.addons.proxy_auth import ProxyAuthentication, auth_required
from proxy_addon.addons.request_log import RequestLog
from proxy_addon.addons.safe_options import SafeOptions
from proxy_addon.addons.streaming import Streaming
from proxy_addon.addons.token_expiry import TokenExpiry
from proxy_addon.addons.token_watcher import CredentialWatcher
from proxy_addon.addons.upstream_faults import UpstreamFaults
from proxy_addon.addons.wire import Wire
from proxy_addon.credentials.http_client import Reach, Unreachable
from proxy_addon.credentials.identity import check_target, cloud_id
from proxy_addon.credentials.sources import Resolved, resolve_sites
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import SiteTable
from proxy_addon.policy.verdict import Policy
from proxy_addon.runtime.chain import chain
from proxy_addon.runtime.trust import write_client_bundle, write_client_truststore, write_upstream_bundle
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import SettingsError

logger = logging.getLogger(__name__)


def scoped_gateway(resolved: list[Resolved], settings: Settings, reach: Reach) -> Gateway:
    """Look up each scoped site's cloudId once; a site we cannot look up stops the start."""
    gateway = Gateway()
    for entry in resolved:
        if entry.site.scoped:
            try:
                target = check_target(entry.site, settings.site)
                gateway.add(entry.site, cloud_id(target.host, reach))
            except (Unreachable, SettingsError) as e:
                raise exceptions.OptionsError(f"site {entry.site.name}: {e}") from None
    return gateway


class AtlassianAuthProxy:
    """Root addon; its children each own one concern."""

    def __init__(
        self,
        settings: Settings | None = None,
        given: tuple[SiteTable, list[Resolved]] | None = None,
        runtime: Sequence[object] = (),
    ) -> None:
        """`run` passes the settings and credentials it already checked, and its own addons
        (`runtime`, run after every child, so mitmproxy dispatches one addon instead of several);
        mitmdump passes nothing."""
        self.given_settings = settings
        self.given = given
        self.injector = CredentialInjector()
        self.boundaries = Boundaries(self.injector.outbound)
        self.connect_to = ConnectTo()
        self.watcher = CredentialWatcher(self.injector.use, lambda: self.injector.health.backing_off)
        self.resolved: list[Resolved] = []
        self.named: frozenset[tuple[str, str]] = frozenset()
        """(site, host) pairs the settings name exactly (a site's exact hosts, ATLASSIAN_PROXY_SITE)."""
        self.proxy_auth = ProxyAuthentication()
        self.metrics = Metrics(self.proxy_auth.user_of)
        self.expiry = TokenExpiry(self.metrics.registry)
        self.request_log = RequestLog()
        self.admin = AdminEndpoint(self.credential_problem, self.metrics.registry, self.paused_elsewhere)
        self.safe_options = SafeOptions()
        self.faults = UpstreamFaults()
        self.client_limits = ClientLimits()
        self.client_rate = ClientRate()
        self.fail_closed = FailClosed(auth_required)
        # Each child is Guarded: a security hook that raises refuses its request (fail_closed.py).
        children: list[Any] = [
            Guarded(self.safe_options),
            Guarded(self.proxy_auth, auth_required),
            Guarded(self.client_limits),
            Guarded(HeadCheck()),
            Guarded(self.client_rate),  # after the login that names the client; before anything goes upstream
            Guarded(self.faults),
            Guarded(self.connect_to),
            Guarded(self.injector),
            Guarded(Wire(self.injector.wire_credential)),  # the credential goes only into what is sent
            Guarded(Streaming()),  # after the injector: it decides on the head, then the body may stream
            Guarded(self.boundaries),  # after both: it judges credentialed requests, buffering bodies it must read
            Guarded(self.fail_closed),  # after every check: refuses what none let through
            Guarded(self.watcher),
            Guarded(self.expiry),
            Guarded(ConnectErrors()),
            Guarded(self.metrics),  # after everything that decides: it counts what the record says
            Guarded(self.request_log),
            Guarded(self.admin),
        ]
        chain(self, [*children, *runtime])

    def load(self, loader: Any) -> None:
        loader.add_option(
            "atlassian_proxy_config",
            Optional[str],  # noqa: UP045 - mitmproxy's option type check predates `X | None`
            None,
            "TOML settings file for atlassian-auth-proxy (else ATLASSIAN_PROXY_CONFIG).",
        )

    def configure(self, updated: set[str]) -> None:
        if "atlassian_proxy_config" not in updated:
            return
        check()  # `run` and mitmdump both configure the root before they listen
        config = ctx.options.atlassian_proxy_config
        try:
            settings = self.given_settings or load_settings(Path(config) if config else None)
            table, resolved = self.given or resolve_sites(settings)
            self.admin.bind(settings.admin_port)
        except SettingsError as e:
            raise exceptions.OptionsError(str(e)) from None
        self.proxy_auth.login = settings.proxy_login
        self.proxy_auth.clients = settings.client_table
        self.client_rate.use(settings.client_table)
        self.injector.clients = settings.client_table
        self.fail_closed.login_required = settings.login_required
        self.safe_options.proxy_auth = settings.login_required
        self._prepare_injector(settings, table, resolved)
        self.faults.timeout = settings.upstream_timeout
        self.injector.outbound.timeout = settings.upstream_timeout  # the longest wait for the check after a pause
        self.client_limits.head_timeout = settings.client_timeout
        self.connect_to.use(settings.connect_to)
        self.request_log.json = settings.log_format == "json"
        ctx.options.update(**self._options(settings))

    def _prepare_injector(self, settings: Settings, table: SiteTable, resolved: list[Resolved]) -> None:
        reach = Reach.of(settings)
        self.injector.policy = Policy(table, scoped_gateway(resolved, settings, reach), settings.allow_browsers)
        for entry in resolved:
            self.injector.use(entry.site, entry.credentials)
        self.injector.outbound.reach = reach
        self.boundaries.use(
            settings.client_table, self.client_rate.rates, {site.name: site.layout for site in table.sites}
        )
        self.watcher.watch(resolved)
        self.expiry.use([entry.site for entry in resolved])
        self.resolved = resolved
        named = {(e.site.name, p.domain) for e in resolved for p in e.site.patterns if not p.wildcard}
        if settings.site is not None and (owner := table.lookup(settings.site, 443)) is not None:
            named.add((owner.name, settings.site))
        self.named = frozenset(named)

    def running(self) -> None:
        for entry in self.resolved:
            logger.info(
                "site %s: credentials for %s from %s go to %s",
                entry.site.name,
                entry.credentials.user or "(bearer)",
                entry.credentials.source,
                ", ".join(map(str, entry.site.patterns)),
            )
        bundle = write_client_bundle(Path(ctx.options.confdir).expanduser())
        if bundle is not None:
            logger.info("clients trust %s (public CAs + this proxy's CA); see `atlassian-auth-proxy env`", bundle)
            write_client_truststore(bundle.parent)
        if self.proxy_auth.login is not None:
            logger.info("clients must authenticate to the proxy as %s", self.proxy_auth.login.user)
        if self.proxy_auth.clients:
            logger.info(
                "clients must authenticate to the proxy as one of: %s", ", ".join(self.proxy_auth.clients.clients)
            )

    def credential_problem(self) -> str | None:
        """What makes /healthz 503: why credentials cannot be served right now, or None.

        Only a paused token of a host the settings name counts: a host under a wildcard is any
        client's choice, and its 401 must not make the proxy unready for everyone.
        """
        if not self.injector.credentials:
            return "no credentials loaded"
        if paused := sorted(host for site, host in self.injector.health.backoffs if (site, host) in self.named):
            return f"{', '.join(paused)} rejected the API token; requests are answered locally until it is replaced"
        return self.expiry.problem(time.time())

    def paused_elsewhere(self) -> tuple[str, ...]:
        """Paused hosts that a client chose under a wildcard: /healthz names them but stays ready."""
        return tuple(sorted({host for site, host in self.injector.health.backoffs if (site, host) not in self.named}))

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
