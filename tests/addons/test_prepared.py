"""What the root prepares once per configuration: the settings' defaults until then, and who must log in."""

from __future__ import annotations

from proxy_addon.addons.client_rate import ClientRate
from proxy_addon.addons.prepared import DEFAULTS, Configured, Prepared
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.settings.model import Settings

LOGIN = ProxyLogin.parse("ci:Pr0xy-pa55word-9f3e")


def test_unconfigured_it_holds_the_settings_models_defaults_and_no_sites():
    prepared = Prepared()
    assert prepared.settings is DEFAULTS
    assert DEFAULTS.upstream_timeout == Settings.model_fields["upstream_timeout"].default
    assert prepared.table.lookup("acme.atlassian.net", 443) is None
    assert not prepared.login_required


def test_a_proxy_login_or_any_client_means_every_request_must_log_in():
    assert Prepared(login=LOGIN).login_required
    assert Prepared(clients=ClientTable.of([Client("agent", LOGIN)])).login_required


def test_a_child_with_a_use_method_is_configured_by_the_root():
    assert isinstance(ClientRate(), Configured)
    assert not isinstance(object(), Configured)
