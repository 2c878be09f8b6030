"""The addon mitmproxy loads: `atlassian-auth-proxy run` uses it, and so can
`mitmdump -s proxy_addon/addon.py`, configured by the same ATLASSIAN_PROXY_* settings.

The root loads and checks the settings once, then hands each concern what it needs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import certifi
from mitmproxy import ctx, exceptions

from proxy_addon.clientlimits import ClientLimits
from proxy_addon.connect_to import ConnectTo
from proxy_addon.credentials import Credentials, TokenFileWatcher, resolve_credentials
from proxy_addon.errors import ConnectErrors
from proxy_addon.faults import UpstreamFaults
from proxy_addon.guard import SafeOptions
from proxy_addon.inject import CredentialInjector
from proxy_addon.proxyauth import ProxyAuthentication
from proxy_addon.requestlog import RequestLog
from proxy_addon.settings import Settings, SettingsError, load_settings

logger = logging.getLogger(__name__)

UPSTREAM_BUNDLE_NAME = "atlassian-auth-proxy-upstream-ca.pem"


def upstream_trust_bundle(extra: Path, confdir: Path) -> Path:
    """mitmproxy's upstream CA option replaces the default store; ours adds to it."""
    confdir.mkdir(parents=True, exist_ok=True)
    bundle = confdir / UPSTREAM_BUNDLE_NAME
    bundle.write_text(Path(certifi.where()).read_text() + "\n" + extra.read_text())
    return bundle


class AtlassianAuthProxy:
    """Root addon; its children each own one concern."""

    def __init__(self, settings: Settings | None = None, credentials: Credentials | None = None) -> None:
        self.given_settings = settings
        self.given_credentials = credentials
        self.injector = CredentialInjector()
        self.connect_to = ConnectTo()
        self.proxy_auth = ProxyAuthentication()
        self.safe_options = SafeOptions()
        self.faults = UpstreamFaults()
        self.client_limits = ClientLimits()
        self.token_file = TokenFileWatcher(self._use)
        self.hosts = self.injector.hosts
        self.addons: list[Any] = [
            self.safe_options,
            self.proxy_auth,
            self.client_limits,
            self.faults,
            self.connect_to,
            self.injector,
            self.token_file,
            ConnectErrors(),
            RequestLog(),
        ]

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
        config = ctx.options.atlassian_proxy_config
        try:
            settings = self.given_settings or load_settings(Path(config) if config else None)
            credentials = self.given_credentials or resolve_credentials(settings)
            proxy_login = settings.proxy_login
        except SettingsError as e:
            raise exceptions.OptionsError(str(e)) from None
        self.proxy_auth.login = proxy_login
        self.safe_options.proxy_auth = proxy_login is not None
        self.injector.hosts = settings.hosts
        self.injector.allow_browsers = settings.allow_browsers
        self.faults.timeout = settings.upstream_timeout
        self.client_limits.head_timeout = settings.client_timeout
        self.connect_to.rules = settings.connect_to
        self.token_file.watch(settings.api_token_file if settings.api_token is None else None)
        self._use(credentials)
        self.hosts = settings.hosts
        ctx.options.update(**self._options(settings))

    def running(self) -> None:
        credentials = self.injector.credentials
        if credentials is not None:
            logger.info("credentials for %s from %s go to %s", credentials.email, credentials.source, self.hosts)
        if self.proxy_auth.login is not None:
            logger.info("clients must authenticate to the proxy as %s", self.proxy_auth.login.user)

    def _use(self, credentials: Credentials) -> None:
        self.injector.credentials = credentials
        self.token_file.credentials = credentials

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
                upstream_trust_bundle(settings.upstream_ca_bundle, settings.confdir)
            )
        return changes


addons = [AtlassianAuthProxy()]
