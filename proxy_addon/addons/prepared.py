"""What the root prepares once per configuration and hands to each child's `use`: one object, read-only.

Each child reads its own settings from it in one method, `use(prepared)`; nothing else writes
into a child. Until its first configuration a child holds the settings model's own defaults
(`DEFAULTS`), so no default is written a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from proxy_addon.credentials.http_client import Reach
from proxy_addon.credentials.sources import Resolved
from proxy_addon.policy.clients import ClientTable
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.rate import ClientRates
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import SiteTable
from proxy_addon.policy.verdict import Policy
from proxy_addon.settings.model import Settings
from proxy_addon.settings.otlp import OtlpSettings

DEFAULTS = Settings.model_construct()
"""The settings model's defaults, read by no source: what a child holds before it is configured."""


def no_sites() -> Policy:
    return Policy(SiteTable.of(()), Gateway())


@dataclass(frozen=True)
class Prepared:
    """The settings, and what the root built from them: the sites with their credentials, the verdict's
    policy, how the proxy's own requests reach a site, the `[[clients]]` and their request windows, and
    the OpenTelemetry variables of the audit export."""

    settings: Settings = DEFAULTS
    policy: Policy = field(default_factory=no_sites)
    resolved: tuple[Resolved, ...] = ()
    reach: Reach = field(default_factory=Reach)
    clients: ClientTable = field(default_factory=ClientTable)
    """Every `[[clients]]` client by name; empty (false) without `[[clients]]`."""
    login: ProxyLogin | None = None
    """The one proxy login of PROXY_AUTH or PROXY_AUTH_FILE."""
    rates: ClientRates = field(default_factory=ClientRates)
    """The clients' `requests_per_minute` windows, new with each configuration: `ClientRate` counts
    requests in them, `Boundaries` the lookups a request causes."""
    otlp: OtlpSettings | None = None
    """The audit export's OpenTelemetry variables, read and checked once; None: no export."""

    @property
    def table(self) -> SiteTable:
        return self.policy.sites

    @property
    def login_required(self) -> bool:
        """Every request must carry a proxy login: PROXY_AUTH's, or one client's."""
        return self.login is not None or bool(self.clients)


@runtime_checkable
class Configured(Protocol):
    """A child with settings of its own: the root calls `use` at each configuration, before traffic."""

    def use(self, prepared: Prepared) -> None: ...
