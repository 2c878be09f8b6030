"""The [[sites]] and [[clients]] tables: what each key becomes, and one line naming the key when it is bad."""

from __future__ import annotations

import os

import pytest

from proxy_addon.policy.layouts import Prefixes
from proxy_addon.policy.sites import Scheme
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.names import SettingsError
from proxy_addon.settings.tables import Table

from support.configs import ACME_SITE, CLIENT_PASSWORD, client_config
from support.proxy import basic


def test_clients_load_into_a_table_of_prepared_bounds_and_digests(clean_env, monkeypatch):
    password_file = clean_env / "pw"
    password_file.write_text(f"  {CLIENT_PASSWORD}-file\n")
    config = client_config(
        clean_env,
        ACME_SITE
        + '[[clients]]\nname = "a"\npassword_env = "PW"\nsites = ["acme"]\nread_only = true\n'
        + 'jira_projects = ["ops", "X_1"]\nconfluence_spaces = ["doc", "~557058abc"]\nrequests_per_minute = 30\n'
        + f'[[clients]]\nname = "b"\npassword_file = "{password_file}"\n',
        monkeypatch,
    )
    settings = load_settings(config)
    table = settings.client_table
    a, b = table.get("a"), table.get("b")
    assert a is not None
    assert b is not None
    assert (a.sites, a.read_only, a.requests_per_minute) == (frozenset({"acme"}), True, 30)
    assert (a.jira_projects, a.confluence_spaces) == (frozenset({"OPS", "X_1"}), frozenset({"DOC", "~557058ABC"}))
    assert (b.sites, b.read_only, b.jira_projects, b.requests_per_minute) == (None, False, None, None)
    assert settings.login_required
    assert settings.proxy_login is None
    assert table.authenticate(basic("a", CLIENT_PASSWORD)) is a
    assert table.authenticate(basic("b", CLIENT_PASSWORD + "-file")) is b
    assert table.authenticate(basic("b", CLIENT_PASSWORD)) is None, "a's password does not log in as b"
    for text in (repr(settings), str(settings), repr(table)):
        assert CLIENT_PASSWORD not in text


def test_without_clients_the_table_is_empty_and_the_single_sites_name_is_default(clean_env, monkeypatch):
    assert not load_settings().client_table
    text = '[[clients]]\nname = "a"\npassword_env = "PW"\nsites = ["default"]\n'
    assert load_settings(client_config(clean_env, text, monkeypatch)).client_table.get("a").sites == {"default"}


CLIENT_BAD = [
    ('name = "a"\n', "client 'a': set password_env or password_file (exactly one)"),
    ('name = "a"\npassword_env = "PW"\npassword_file = "/x"\n', "set password_env or password_file (exactly one)"),
    ('name = "a"\npassword_env = "UNSET_PW"\n', "client 'a': UNSET_PW is not set"),
    ('name = "a"\npassword_env = "EMPTY_PW"\n', "client 'a': the password in password_env EMPTY_PW is empty"),
    ('name = "a"\npassword_file = "/nonexistent/pw"\n', "client 'a': cannot read password_file '/nonexistent/pw'"),
    ('name = "a"\npassword_file = "{fifo}"\n', "(not a regular file)"),
    (
        'name = "a"\npassword_env = "SHORT_PW"\n',
        "client 'a': the password in password_env SHORT_PW is shorter than 16 characters",
    ),
    ('name = "a"\npassword_file = "{short}"\n', "client 'a': the password in password_file {short} is shorter than 16"),
    ('name = "a:b"\npassword_env = "PW"\n', "name 'a:b' cannot be a proxy-login user"),
    ('name = "none"\npassword_env = "PW"\n', "name 'none' stands for requests without a login"),
    ('name = "a"\npassword_env = "PW"\nsites = ["acmee"]\n', "[[clients]] 'a': sites names 'acmee'"),
    ('name = "a"\npassword_env = "PW"\nsites = []\n', "[[clients]] number 1, sites:"),
    ('name = "a"\npassword_env = "PW"\njira_projects = ["1AB"]\n', "'1AB' is not a Jira project key"),
    ('name = "a"\npassword_env = "PW"\njira_projects = ["A-B"]\n', "'A-B' is not a Jira project key"),
    ('name = "a"\npassword_env = "PW"\nconfluence_spaces = ["D~C"]\n', "'D~C' is not a Confluence space key"),
    ('name = "a"\npassword_env = "PW"\nconfluence_spaces = ["DÖC"]\n', "'DÖC' is not a Confluence space key"),
    ('name = "a"\npassword_env = "PW"\nrequests_per_minute = 0\n', "requests_per_minute: Input should be greater"),
    ('name = "a"\npassword_env = "PW"\nrequests_per_minute = "5"\n', "requests_per_minute: Input should be a valid"),
    ('name = "a"\npassword_env = "PW"\nread_olny = true\n', "unknown key 'read_olny' in [[clients]] number 1"),
    ('name = "a"\npassword_env = "PW"\n[[clients]]\nname = "a"\npassword_env = "PW"\n', "two clients are named 'a'"),
]


@pytest.mark.parametrize(("table", "expected"), CLIENT_BAD, ids=[e for _, e in CLIENT_BAD])
def test_bad_clients_fail_with_one_line_naming_the_key_and_never_the_password(clean_env, monkeypatch, table, expected):
    fifo = clean_env / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv("EMPTY_PW", " ")
    monkeypatch.setenv("SHORT_PW", "fifteen-chars-x")
    short = clean_env / "short"
    short.write_text(" fifteen-chars-x\n")
    config = client_config(clean_env, ACME_SITE + "[[clients]]\n" + table.format(fifo=fifo, short=short), monkeypatch)
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert expected.format(short=short) in message
    assert "fifteen-chars-x" not in message
    assert "\n" not in message
    assert CLIENT_PASSWORD not in message


def test_a_new_env_key_of_a_table_names_a_secret_variable_without_a_list_to_update():
    class Future(Table):
        client_secret_env: str | None = None
        region: str = "eu"

    assert Future(client_secret_env="ACME_CLIENT_SECRET").secret_variables() == {"ACME_CLIENT_SECRET"}
    assert Future().secret_variables() == set()


DC_SITE = '[[sites]]\nname = "dc"\nhosts = ["wiki.corp.example"]\nscheme = "bearer"\ntoken_env = "T"\n'


def test_a_data_center_site_declares_its_product_and_context_path(clean_env, monkeypatch):
    config = clean_env / "dc.toml"
    config.write_text(
        DC_SITE
        + 'product = "confluence"\n'
        + '[[sites]]\nname = "jira"\nhosts = ["jira.corp.example:8443"]\nscheme = "bearer"\ntoken_env = "T"\n'
        + 'product = "jira"\ncontext_path = "/jira/"\n'
        + ACME_SITE
    )
    sites = {site.name: site for site in load_settings(config).site_list()}
    assert sites["dc"].layout == Prefixes(confluence="", data_center=True)
    assert sites["jira"].layout == Prefixes(jira="/jira", data_center=True)
    assert sites["acme"].layout is None


SITE_BAD = [
    ('product = "bamboo"\n', "[[sites]] number 1, product: Input should be 'jira' or 'confluence'"),
    ('context_path = "/jira"\n', "[[sites]] number 1: context_path needs product"),
    ('product = "jira"\ncontext_path = "jira"\n', "context_path: 'jira' is not a context path"),
    ('product = "jira"\ncontext_path = "/a/../b"\n', "context_path: '/a/../b' is not a context path"),
    ('product = "jira"\ncontext_path = "/a//b"\n', "context_path: '/a//b' is not a context path"),
    ('product = "jira"\ncontext_path = "/a?b"\n', "context_path: '/a?b' is not a context path"),
    ('product = "jira"\ncontext_path = "/%2e%2e"\n', "context_path: '/%2e%2e' is not a context path"),
    ('product = "jira"\nscoped = true\n', "product and context_path are for Data Center and Server sites"),
    ('product = "jira"\nprodcut = "x"\n', "unknown key 'prodcut' in [[sites]] number 1; did you mean 'product'?"),
]


@pytest.mark.parametrize(("keys", "expected"), SITE_BAD, ids=[e for _, e in SITE_BAD])
def test_bad_product_or_context_path_fails_with_one_line_naming_it(clean_env, monkeypatch, keys, expected):
    config = clean_env / "dc.toml"
    config.write_text(DC_SITE + keys)
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


SERVICE_SITE = (
    '[[sites]]\nname = "bot"\nhosts = ["acme.atlassian.net"]\nscheme = "client_credentials"\n'
    'client_id = "sa-Client-0123"\n'
)


def test_a_client_credentials_site_loads_with_its_client_and_cloud_id(clean_env, monkeypatch):
    config = clean_env / "bot.toml"
    config.write_text(SERVICE_SITE + 'client_secret_env = "BOT_SECRET"\ncloud_id = "5ca1ab1e-0000"\n')
    settings = load_settings(config)
    (site,) = settings.site_list()
    assert (site.scheme, site.minted, site.cloud_id, site.user) == (
        Scheme.CLIENT_CREDENTIALS,
        True,
        "5ca1ab1e-0000",
        "",
    )
    assert settings.sites[0].client_keyring_user == "client:sa-Client-0123"
    assert "BOT_SECRET" in settings.secret_variables(), "exec keeps the client secret from CMD"


SERVICE_BAD = [
    ('client_secret_env = "A"\nclient_secret_file = "/etc/hostname"\n', "set client_secret_env or client_secret_file"),
    ('email = "me@acme.example"\n', 'scheme = "client_credentials" mints its own access tokens'),
    ("scoped = true\n", "remove scoped"),
    ('token_env = "T"\n', "remove token_env"),
    ('token_expires = "2030-01-01"\n', "remove token_expires"),
    ('client_id = "has space"\n', "client_id: 'has space' is not an OAuth client id"),
]


@pytest.mark.parametrize(("keys", "expected"), SERVICE_BAD, ids=[e for _, e in SERVICE_BAD])
def test_a_client_credentials_site_that_cannot_work_fails_with_one_line(clean_env, keys, expected):
    config = clean_env / "bot.toml"
    text = SERVICE_SITE.replace('client_id = "sa-Client-0123"\n', "") if "client_id" in keys else SERVICE_SITE
    config.write_text(text + keys)
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SERVICE_SITE.replace('client_id = "sa-Client-0123"\n', ""), "needs client_id"),
        (SERVICE_SITE.replace("acme.atlassian.net", "*.atlassian.net"), "name its host exactly"),
        (SERVICE_SITE.replace("acme.atlassian.net", "jira.corp.example"), "not jira.corp.example"),
        (
            SERVICE_SITE.replace('"acme.atlassian.net"', '"acme.atlassian.net", "globex.atlassian.net"'),
            "name its one host, not 2",
        ),
        (ACME_SITE + 'client_id = "x"\n', "client_id, client_secret_env and client_secret_file need scheme"),
        (DC_SITE + 'cloud_id = "abc"\n', "cloud_id is for Atlassian Cloud sites"),
        (ACME_SITE + 'cloud_id = "not/one"\n', "'not/one' is not a cloudId"),
        (
            ACME_SITE
            + 'cloud_id = "c1"\n'
            + SERVICE_SITE.replace("acme.atlassian.net", "globex.atlassian.net")
            + 'cloud_id = "c1"\n',
            "two sites have cloud_id 'c1'",
        ),
    ],
)
def test_client_and_cloud_keys_are_checked(clean_env, text, expected):
    config = clean_env / "bad.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as raised:
        load_settings(config)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)
