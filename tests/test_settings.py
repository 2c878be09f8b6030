"""Settings: one model, five sources in a fixed order, and one clear line for every bad value."""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy_addon.credentials.sources import resolve_sites
from proxy_addon.policy.connect_rules import ConnectToRule
from proxy_addon.policy.layouts import Prefixes
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.names import SettingsError
from proxy_addon.settings.tables import Table

from support.proxy import EMAIL, TOKEN_24, TOKEN_192, basic, run_cli


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No ATLASSIAN_PROXY_* from the outside, and a working directory without a .env."""
    for name in list(os.environ):
        if name.startswith("ATLASSIAN_PROXY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return tmp_path


def test_sources_in_order_flags_env_dotenv_toml_defaults(clean_env, monkeypatch):
    toml = clean_env / "config.toml"
    toml.write_text('listen_port = 1001\nconfdir = "/from/toml"\nhosts = ["toml.example.test"]\nemail = "t@x.test"\n')
    (clean_env / ".env").write_text("ATLASSIAN_PROXY_LISTEN_PORT=1002\nATLASSIAN_PROXY_CONFDIR=/from/dotenv\n")
    monkeypatch.setenv("ATLASSIAN_PROXY_LISTEN_PORT", "1003")
    settings = load_settings(toml, listen_port=1004)
    assert settings.listen_port == 1004
    monkeypatch.setenv("ATLASSIAN_PROXY_CONFIG", str(toml))
    settings = load_settings()
    assert settings.listen_port == 1003
    assert str(settings.confdir) == "/from/dotenv"
    assert ",".join(map(str, settings.hosts)) == "toml.example.test"
    assert settings.email == "t@x.test"
    assert settings.listen_host == "127.0.0.1"


def test_defaults(clean_env):
    settings = load_settings()
    assert ",".join(map(str, settings.hosts)) == "*.atlassian.net"
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8080)
    assert settings.confdir.name == ".mitmproxy"


def test_the_token_never_shows_in_repr_or_str(clean_env, monkeypatch):
    monkeypatch.setenv("ATLASSIAN_PROXY_EMAIL", EMAIL)
    monkeypatch.setenv("ATLASSIAN_PROXY_API_TOKEN", TOKEN_192)
    settings = load_settings()
    _, [resolved] = resolve_sites(settings)
    credentials = resolved.credentials
    for text in (repr(settings), str(settings), repr(credentials), str(credentials), repr(settings.api_token)):
        assert TOKEN_192 not in text
        assert TOKEN_192[:24] not in text


def test_a_malformed_token_is_reported_without_echoing_it(clean_env, monkeypatch):
    monkeypatch.setenv("ATLASSIAN_PROXY_API_TOKEN", "ATATT3x secret-part")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "ATLASSIAN_PROXY_API_TOKEN" in str(raised.value)
    assert "secret-part" not in str(raised.value)


def test_token_file_surrounding_whitespace_is_ignored(clean_env, monkeypatch):
    token_file = clean_env / "token"
    token_file.write_text(f"\n  {TOKEN_24}\r\n")
    monkeypatch.setenv("ATLASSIAN_PROXY_EMAIL", EMAIL)
    monkeypatch.setenv("ATLASSIAN_PROXY_API_TOKEN_FILE", str(token_file))
    _, [resolved] = resolve_sites(load_settings())
    assert resolved.credentials.source == f"file {token_file}"


BAD = [
    ({"ATLASSIAN_PROXY_HOSTS": "*"}, "ATLASSIAN_PROXY_HOSTS: '*' is not a host pattern"),
    ({"ATLASSIAN_PROXY_HOSTS": "*foo.net"}, "ATLASSIAN_PROXY_HOSTS: '*foo.net' is not a host pattern"),
    ({"ATLASSIAN_PROXY_HOSTS": "a.*.net"}, "ATLASSIAN_PROXY_HOSTS: 'a.*.net' is not a host pattern"),
    ({"ATLASSIAN_PROXY_HOSTS": r"atlassian\.net$"}, "ATLASSIAN_PROXY_HOSTS:"),
    ({"ATLASSIAN_PROXY_HOSTS": " , "}, "ATLASSIAN_PROXY_HOSTS: is empty"),
    ({"ATLASSIAN_PROXY_LISTEN_PORT": "http"}, "ATLASSIAN_PROXY_LISTEN_PORT:"),
    ({"ATLASSIAN_PROXY_LISTEN_PORT": "70000"}, "ATLASSIAN_PROXY_LISTEN_PORT:"),
    ({"ATLASSIAN_PROXY_CONNECT_TO": "acme.atlassian.net"}, "ATLASSIAN_PROXY_CONNECT_TO: 'acme.atlassian.net' is not"),
    ({"ATLASSIAN_PROXY_CONNECT_TO": "*.atlassian.net=127.0.0.1:0"}, "ATLASSIAN_PROXY_CONNECT_TO:"),
    ({"ATLASSIAN_PROXY_EMAIL": "not-an-email"}, "ATLASSIAN_PROXY_EMAIL: 'not-an-email' is not an email address"),
    ({"ATLASSIAN_PROXY_EMAIL": None}, "ATLASSIAN_PROXY_EMAIL is not set"),
    ({"ATLASSIAN_PROXY_API_TOKEN": ""}, "ATLASSIAN_PROXY_API_TOKEN: the token is empty"),
    ({"ATLASSIAN_PROXY_API_TOKEN_FILE": "/nonexistent/token"}, "ATLASSIAN_PROXY_API_TOKEN_FILE:"),
    ({"ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE": "/nonexistent/ca.pem"}, "ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE:"),
    ({"ATLASSIAN_PROXY_CONFIG": "/nonexistent/config.toml"}, "ATLASSIAN_PROXY_CONFIG:"),
    (
        {"ATLASSIAN_PROXY_API_TOKEN": None},
        "no API token: set ATLASSIAN_PROXY_API_TOKEN, or ATLASSIAN_PROXY_API_TOKEN_FILE to a file holding it, "
        "or store it in the keyring with `atlassian-auth-proxy login`; the keyring cannot be used: no OS keyring",
    ),
]


@pytest.mark.parametrize(
    ("env", "expected"), BAD, ids=[expected.split(":")[0] + "-" + str(i) for i, (_, expected) in enumerate(BAD)]
)
def test_bad_settings_exit_2_with_one_line(tmp_path, env, expected):
    base = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_PROXY_")}
    base.update(
        ATLASSIAN_PROXY_EMAIL=EMAIL,
        ATLASSIAN_PROXY_API_TOKEN=TOKEN_24,
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    base.update(env)
    result = run_cli(
        "run",
        env={k: v for k, v in base.items() if v is not None},
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"atlassian-auth-proxy: error: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert TOKEN_24 not in result.stderr + result.stdout


def test_malformed_toml_names_the_file(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("hosts = [\n")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"atlassian-auth-proxy: error: --config: {config} is not valid TOML")


def test_bad_flag_is_named_as_a_flag(tmp_path):
    result = run_cli("run", "--listen-port", "99999")
    assert result.returncode == 2
    assert result.stderr.startswith("atlassian-auth-proxy: error: --listen-port:")


host_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
host_name = st.lists(host_label, min_size=2, max_size=3).filter(lambda ls: not ls[-1].isdigit()).map(".".join)


@given(pattern=host_name, wildcard=st.booleans(), host=host_name | st.ip_addresses(v=4).map(str), port=st.integers())
def test_connect_to_rules_round_trip_or_name_the_port(pattern, wildcard, host, port):
    text = f"{'*.' if wildcard else ''}{pattern}={host}:{port}"
    if not 0 < port < 65536:
        with pytest.raises(ValueError, match=r"PATTERN=HOST:PORT|not between 1 and 65535"):
            ConnectToRule.parse(text)
        return
    rule = ConnectToRule.parse(text)
    assert (str(rule.pattern), rule.host, rule.port) == (f"{'*.' if wildcard else ''}{pattern}", host, port)


@given(text=st.text(max_size=60))
def test_connect_to_parsing_only_ever_raises_value_error(text):
    try:
        rule = ConnectToRule.parse(text)
    except ValueError:
        return
    assert rule.host
    assert 0 < rule.port < 65536


SETTING_VALUES = st.text(max_size=40)
FLAGS = ["hosts", "connect_to", "email", "listen_port", "upstream_timeout", "client_timeout", "allow_browsers"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(flag=st.sampled_from(FLAGS), value=SETTING_VALUES)
def test_any_setting_value_loads_or_fails_with_one_line_naming_it(clean_env, flag, value):
    try:
        load_settings(**{flag: value})
    except SettingsError as e:
        message = str(e)
        assert message.startswith("--" + flag.replace("_", "-") + ":")
        assert "\n" not in message


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(value=st.text(max_size=40))
def test_any_proxy_auth_loads_or_fails_without_echoing_the_password(clean_env, value):
    try:
        loaded = load_settings(proxy_auth=value)
    except SettingsError as e:
        message = str(e)
        assert message.startswith("--proxy-auth:")
        _, _, password = value.strip().partition(":")
        if len(password) > 3:
            assert password not in message
        return
    assert loaded.proxy_login is not None
    assert loaded.proxy_login.check(None) is None


CLIENT_PASSWORD = "cl1ent-Pa55word-x"
ACME_SITE = '[[sites]]\nname = "acme"\nhosts = ["acme.atlassian.net"]\nemail = "a@x.test"\ntoken_env = "T"\n'


def client_config(clean_env, text: str, monkeypatch) -> object:
    monkeypatch.setenv("PW", CLIENT_PASSWORD)
    config = clean_env / "clients.toml"
    config.write_text(text)
    return config


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


@pytest.mark.parametrize("setting", ["proxy_auth", "proxy_auth_file"])
def test_clients_and_the_one_proxy_login_cannot_be_combined(clean_env, monkeypatch, setting):
    login_file = clean_env / "login"
    login_file.write_text(f"ci:{CLIENT_PASSWORD}")
    value = f"ci:{CLIENT_PASSWORD}" if setting == "proxy_auth" else str(login_file)
    monkeypatch.setenv(f"ATLASSIAN_PROXY_{setting.upper()}", value)
    config = client_config(clean_env, '[[clients]]\nname = "a"\npassword_env = "PW"\n', monkeypatch)
    with pytest.raises(SettingsError, match=rf"\[\[clients\]\] and ATLASSIAN_PROXY_{setting.upper()} are both set"):
        load_settings(config)


def test_secret_variables_are_the_settings_that_hold_a_secret_and_every_env_key(clean_env, monkeypatch):
    monkeypatch.setenv("ATLASSIAN_PROXY_API_TOKEN", "Ab3dE6gH9jK2mN5pQ8sT1vWx")
    monkeypatch.setenv("ATLASSIAN_PROXY_EMAIL", "me@acme.example")
    monkeypatch.setenv("ATLASSIAN_PROXY_UPSTREAM_PROXY", "http://corp:3128")
    assert load_settings().secret_variables() == {"ATLASSIAN_PROXY_API_TOKEN"}, "a corporate proxy without password"
    monkeypatch.setenv("ATLASSIAN_PROXY_UPSTREAM_PROXY", "http://user:pw@corp:3128")
    monkeypatch.setenv("ATLASSIAN_PROXY_PROXY_AUTH", f"ci:{CLIENT_PASSWORD}")
    assert load_settings().secret_variables() == {
        "ATLASSIAN_PROXY_API_TOKEN",
        "ATLASSIAN_PROXY_UPSTREAM_PROXY",
        "ATLASSIAN_PROXY_PROXY_AUTH",
    }
    for name in ("ATLASSIAN_PROXY_API_TOKEN", "ATLASSIAN_PROXY_EMAIL", "ATLASSIAN_PROXY_PROXY_AUTH"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("T", "Ab3dE6gH9jK2mN5pQ8sT1vWx")
    config = client_config(clean_env, ACME_SITE + '[[clients]]\nname = "a"\npassword_env = "PW"\n', monkeypatch)
    assert load_settings(config).secret_variables() == {"T", "PW", "ATLASSIAN_PROXY_UPSTREAM_PROXY"}


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


def test_a_cloud_site_takes_no_product(clean_env):
    config = clean_env / "cloud.toml"
    config.write_text(ACME_SITE + 'product = "confluence"\n')
    with pytest.raises(SettingsError, match="Atlassian Cloud hosts and scoped sites have Cloud's layout"):
        load_settings(config)
    result = run_cli("check", env={**os.environ, "ATLASSIAN_PROXY_CONFIG": str(config), "T": TOKEN_24})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
