"""Several sites and identities through one proxy: each request gets its own site's credentials."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from support.clients import curl
from support.proxy import TOKEN_24, TOKEN_192, basic, run_cli, start_scoped

ACME_USER, GLOBEX_USER = "me@acme.example", "me@globex.example"
BITBUCKET_TOKEN = "ATBBbitbucketToken_0123456789-abcdefghij"
PAT = "NjQ0ODM1NzUzOTE2OkRhdGFDZW50ZXJQQVQ"

CONFIG = """
[[sites]]
name = "acme"
hosts = ["acme.atlassian.net"]
email = "me@acme.example"
token_env = "ACME_TOKEN"

[[sites]]
name = "globex"
hosts = ["*.atlassian.net"]
email = "me@globex.example"
token_file = "{globex_file}"
read_only = true

[[sites]]
name = "bitbucket-api"
hosts = ["api.bitbucket.org"]
email = "me@acme.example"
token_env = "BITBUCKET_TOKEN"

[[sites]]
name = "bitbucket-git"
hosts = ["bitbucket.org"]
email = "x-bitbucket-api-token-auth"
token_env = "BITBUCKET_TOKEN"

[[sites]]
name = "datacenter"
hosts = ["jira.corp.example:8443"]
scheme = "bearer"
token_env = "DC_PAT"

[[sites]]
name = "atlassian-com"
hosts = ["*.atlassian.com"]
email = "me@acme.example"
token_env = "ACME_TOKEN"
"""


def start(make_proxy, tmp_path, site_port):
    globex_file = tmp_path / "globex-token"
    globex_file.write_text(TOKEN_24)
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG.format(globex_file=globex_file))
    return make_proxy(
        "--config",
        str(config),
        ATLASSIAN_PROXY_EMAIL=None,
        ATLASSIAN_PROXY_API_TOKEN=None,
        ACME_TOKEN=TOKEN_192,
        BITBUCKET_TOKEN=BITBUCKET_TOKEN,
        DC_PAT=PAT,
        ATLASSIAN_PROXY_CONNECT_TO=(
            f"*.atlassian.net=127.0.0.1:{site_port},*.atlassian.com=127.0.0.1:{site_port},"
            f"api.bitbucket.org=127.0.0.1:{site_port},bitbucket.org=127.0.0.1:{site_port},"
            f"jira.corp.example=127.0.0.1:{site_port}"
        ),
    )


def test_two_identities_under_32_concurrent_clients_never_mix(make_proxy, site, tmp_path):
    proxy = start(make_proxy, tmp_path, site.port)
    expected = {"acme": basic(ACME_USER, TOKEN_192), "globex": basic(GLOBEX_USER, TOKEN_24)}

    def client(i: int) -> None:
        name = "acme" if i % 2 else "globex"
        with requests.Session() as session:
            session.trust_env = False
            for j in range(8):
                url = f"https://{name}.atlassian.net/rest/api/3/myself?client={i}&n={j}"
                r = session.get(url, proxies={"https": proxy.url}, verify=str(proxy.ca_file), timeout=30)
                assert r.status_code == 200

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(client, range(32)))
    seen = [r for r in site.record.requests if "client=" in r.path]
    assert len(seen) == 32 * 8
    for request in seen:
        client_id = int(request.path.split("client=")[1].split("&")[0])
        assert request.header("Authorization") == expected["acme" if client_id % 2 else "globex"], request.path


def test_read_only_site_passes_reads_and_search_and_refuses_writes(make_proxy, site, tmp_path):
    proxy = start(make_proxy, tmp_path, site.port)
    search = curl(proxy.url, "https://globex.atlassian.net/rest/api/3/search", proxy.ca_file, "-d", '{"jql":"x"}')
    assert search.returncode == 0
    assert site.record.last().path == "/rest/api/3/search"
    before = len(site.record.requests)
    write = curl(
        proxy.url, "https://globex.atlassian.net/rest/api/3/issue", proxy.ca_file, "-d", "{}", "-w", "\n%{http_code}"
    )
    assert write.stdout.endswith("\n403")
    assert "site globex is read-only: POST /rest/api/3/issue is not a read" in write.stdout
    assert len(site.record.requests) == before, "nothing reached the site"
    acme_write = curl(proxy.url, "https://acme.atlassian.net/rest/api/3/issue", proxy.ca_file, "-d", "{}")
    assert acme_write.returncode == 0
    assert site.record.last().header("Authorization") == basic(ACME_USER, TOKEN_192)


def test_bitbucket_api_gets_email_and_git_host_gets_the_git_user(make_proxy, site, tmp_path):
    proxy = start(make_proxy, tmp_path, site.port)
    assert curl(proxy.url, "https://api.bitbucket.org/2.0/user", proxy.ca_file).returncode == 0
    assert site.record.last().header("Authorization") == basic(ACME_USER, BITBUCKET_TOKEN)
    assert curl(proxy.url, "https://bitbucket.org/acme/repo.git/info/refs", proxy.ca_file).returncode == 0
    assert site.record.last().header("Authorization") == basic("x-bitbucket-api-token-auth", BITBUCKET_TOKEN)


def test_data_center_bearer_on_its_own_port(make_proxy, site, tmp_path):
    proxy = start(make_proxy, tmp_path, site.port)
    result = curl(proxy.url, "https://jira.corp.example:8443/rest/api/2/myself", proxy.ca_file)
    assert result.returncode == 0, result.stderr
    seen = site.record.last()
    assert seen.header("Authorization") == f"Bearer {PAT}"
    assert seen.header("Host") == "jira.corp.example:8443"


def test_media_host_under_a_wildcard_gets_nothing(make_proxy, site, ca_file, tmp_path):
    proxy = start(make_proxy, tmp_path, site.port)
    assert curl(proxy.url, "https://api.atlassian.com/other", proxy.ca_file).returncode == 0
    assert site.record.last().header("Authorization") == basic(ACME_USER, TOKEN_192), "the wildcard works"
    media = curl(proxy.url, "https://api.media.atlassian.com/file/1?token=media", ca_file)
    assert media.returncode == 0, "tunnelled: the stand-in's own certificate"
    assert site.record.last().header("Authorization") is None


def test_config_errors_name_the_problem(tmp_path, site, ca_file, confdir):

    from support.proxy import proxy_env

    cases = {
        "sites 'a' and 'b' both claim acme.atlassian.net": (
            '[[sites]]\nname = "a"\nhosts = ["acme.atlassian.net"]\nemail = "a@x.test"\ntoken_env = "T"\n'
            '[[sites]]\nname = "b"\nhosts = ["ACME.atlassian.net."]\nemail = "b@x.test"\ntoken_env = "T"\n'
        ),
        "[[sites]] and the single-site settings (EMAIL) are both set": (
            'email = "me@x.test"\n[[sites]]\nname = "a"\nhosts = ["acme.atlassian.net"]\nemail = "a@x.test"\n'
            'token_env = "T"\n'
        ),
        "[[sites]] number 1, hosts: 'a.*.net' is not a host pattern": (
            '[[sites]]\nname = "a"\nhosts = ["a.*.net"]\nemail = "a@x.test"\ntoken_env = "T"\n'
        ),
        "T is not set: it should hold the API token": (
            '[[sites]]\nname = "a"\nhosts = ["acme.atlassian.net"]\nemail = "a@x.test"\ntoken_env = "T"\n'
        ),
    }
    for expected, text in cases.items():
        config = tmp_path / "bad.toml"
        config.write_text(text)
        env = proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_EMAIL=None, ATLASSIAN_PROXY_API_TOKEN=None)
        if "EMAIL" not in expected and "not set" not in expected:
            env["T"] = TOKEN_24
        result = run_cli("run", "--config", str(config), env=env)
        assert result.returncode == 2, (expected, result.stderr)
        assert expected in result.stderr
        assert result.stderr.count("\n") == 1


def test_scoped_token_goes_through_the_gateway_under_the_sites_own_prefix(make_proxy, site, tmp_path):
    from support.upstream import CLOUD_ID

    proxy = start_scoped(make_proxy, tmp_path)
    credentials = basic(ACME_USER, TOKEN_192)

    assert curl(proxy.url, "https://acme.atlassian.net/rest/api/3/myself", proxy.ca_file).returncode == 0
    seen = site.record.last()
    assert seen.path == f"/ex/jira/{CLOUD_ID}/rest/api/3/myself"
    assert (seen.header("Host"), seen.sni) == ("api.atlassian.com", "api.atlassian.com")
    assert seen.header("Authorization") == credentials

    assert curl(proxy.url, "https://acme.atlassian.net/wiki/rest/api/space", proxy.ca_file).returncode == 0
    assert site.record.last().path == f"/ex/confluence/{CLOUD_ID}/wiki/rest/api/space"

    assert (
        curl(proxy.url, f"https://api.atlassian.com/ex/jira/{CLOUD_ID}/rest/api/3/myself", proxy.ca_file).returncode
        == 0
    )
    assert site.record.last().header("Authorization") == credentials

    for path in ("/ex/jira/another-cloud-id/rest/api/3/myself", f"/ex/jira/{CLOUD_ID}/../another/rest", "/oauth/token"):
        assert curl(proxy.url, f"https://api.atlassian.com{path}", proxy.ca_file, "--path-as-is").returncode == 0
        assert site.record.last().header("Authorization") is None, path


def test_check_checks_every_site(site, ca_file, confdir, tmp_path):

    from support.proxy import proxy_env

    globex_file = tmp_path / "globex-token"
    globex_file.write_text(TOKEN_24)
    config = tmp_path / "sites.toml"
    config.write_text(CONFIG.format(globex_file=globex_file).split('[[sites]]\nname = "atlassian-com"')[0])
    env = proxy_env(
        site,
        ca_file,
        confdir,
        ATLASSIAN_PROXY_EMAIL=None,
        ATLASSIAN_PROXY_API_TOKEN=None,
        ATLASSIAN_PROXY_CONFIG=str(config),
        ATLASSIAN_PROXY_SITE="globex.atlassian.net",
        ACME_TOKEN=TOKEN_192,
        BITBUCKET_TOKEN=BITBUCKET_TOKEN,
        DC_PAT=PAT,
    )
    result = run_cli("check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "site acme: acme.atlassian.net: signed in as Test User" in lines[0]
    assert "site globex: globex.atlassian.net: signed in as Test User" in lines[1]
    assert "with the token from file" in lines[1]
    assert lines[2].startswith("site bitbucket-api: api.bitbucket.org: signed in as Test User")
    assert lines[3] == "site bitbucket-git: bitbucket.org: not checked (no identity page there)"
    assert lines[4].startswith("site datacenter: jira.corp.example: signed in as Test User")
    paths = [r.path for r in site.record.requests[-4:]]
    assert paths == ["/rest/api/3/myself", "/rest/api/3/myself", "/2.0/user", "/rest/api/2/myself"]


def test_a_bitbucket_site_whose_user_is_no_email_is_warned_once_at_start(make_proxy, site, tmp_path):
    """App passwords were removed on 2026-07-28; the API tokens that replace them take the account email."""
    from support.proxy import site_toml, wait_for

    config = tmp_path / "bitbucket.toml"
    config.write_text(
        site_toml("bitbucket-api", "api.bitbucket.org", "acme-bitbucket-user", token_env="BITBUCKET_TOKEN")
        + site_toml("bitbucket-git", "bitbucket.org", "x-bitbucket-api-token-auth", token_env="BITBUCKET_TOKEN")
    )
    proxy = make_proxy(
        "--config",
        str(config),
        ATLASSIAN_PROXY_EMAIL=None,
        ATLASSIAN_PROXY_API_TOKEN=None,
        BITBUCKET_TOKEN=BITBUCKET_TOKEN,
    )
    wait_for(lambda: "app passwords" in proxy.output, what="the warning")
    assert curl(proxy.url, "https://api.bitbucket.org/2.0/user", proxy.ca_file).returncode == 0
    (line,) = [line for line in proxy.output.splitlines() if "app password" in line]
    assert "site bitbucket-api: its email 'acme-bitbucket-user' has no @" in line
    assert "removed app passwords on 2026-07-28" in line
    assert "take the Atlassian account email" in line
