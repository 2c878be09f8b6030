"""What one request's handling learns is seen the same by the log, the metrics and the token verdicts.

Each test here is a way the scattered per-flow state used to break, tried as a user would.
"""

from __future__ import annotations

import json
import threading

from support.adminclient import admin_port, get, samples, value
from support.clients import curl
from support.proxy import TOKEN_24, TOKEN_192, basic, run_cli, wait_for

LOGIN = "carol:Pr0xy-pa55word-carol"
MYSELF = "https://acme.atlassian.net/rest/api/3/myself"


def test_the_json_log_names_the_proxy_user(make_proxy):
    proxy = make_proxy(ATLASSIAN_PROXY_PROXY_AUTH=LOGIN, ATLASSIAN_PROXY_LOG_FORMAT="json")
    result = curl(proxy.url, MYSELF + "?who=1", proxy.ca_file, "--proxy-user", LOGIN, "-o", "/dev/null")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: "?who=" in proxy.output, what="the request log line")
    line = next(json.loads(line) for line in proxy.lines if "?who=" in line)
    assert line["user"] == "carol"
    assert line["decision"] == "injected"
    assert "Pr0xy-pa55word" not in proxy.output


def test_refusals_are_counted_as_refused_the_log_agrees_and_a_refused_connect_counts(make_proxy, plain_site):
    proxy = make_proxy(ATLASSIAN_PROXY_PROXY_AUTH=LOGIN, ATLASSIAN_PROXY_ADMIN_PORT="0")
    plain = curl(proxy.url, f"http://127.0.0.1:{plain_site.port}/plain-refused", proxy.ca_file, "-w", "%{http_code}")
    assert plain.stdout.endswith("407")
    tunnel = curl(proxy.url, MYSELF, proxy.ca_file, "-w", "%{http_code}")
    assert "407" in tunnel.stdout + tunnel.stderr
    wait_for(lambda: proxy.output.count("credentials=refused-proxy-auth") == 2, what="both refusals in the log")
    metrics = samples(get(admin_port(proxy.output), "/metrics")[2])
    total = "atlassian_proxy_requests_total"
    assert value(metrics, total, site="other", decision="refused", status_class="4xx", client="none") == 2
    assert not any(name == total and ("decision", "passed") in labels for name, labels in metrics)


def test_one_sites_rejection_does_not_hide_anothers(make_proxy, site, tmp_path):
    """Site globex's request is in flight when acme's token is rejected; globex's own 401 still counts."""
    config = tmp_path / "two.toml"
    config.write_text(
        '[[sites]]\nname = "acme"\nhosts = ["acme.atlassian.net"]\nemail = "a@acme.example"\ntoken_env = "A"\n'
        '[[sites]]\nname = "globex"\nhosts = ["globex.atlassian.net"]\nemail = "g@globex.example"\ntoken_env = "G"\n'
    )
    proxy = make_proxy(
        "--config", str(config), ATLASSIAN_PROXY_EMAIL=None, ATLASSIAN_PROXY_API_TOKEN=None, A=TOKEN_192, G=TOKEN_24
    )
    rejected = {basic("a@acme.example", TOKEN_192), basic("g@globex.example", TOKEN_24)}
    site.record.rejected |= rejected
    site.record.slow_arrived.clear()
    site.record.slow_release.clear()
    try:
        held: list[str] = []
        globex = threading.Thread(
            target=lambda: held.append(
                curl(proxy.url, "https://globex.atlassian.net/slow", proxy.ca_file, "-w", "%{http_code}").stdout
            )
        )
        globex.start()
        assert site.record.slow_arrived.wait(15), "globex's request reached the site"
        assert curl(proxy.url, MYSELF, proxy.ca_file, "-w", "%{http_code}").stdout.endswith("401")
        wait_for(lambda: "acme.atlassian.net rejected the API token" in proxy.output, what="acme's rejection")
        site.record.slow_release.set()
        globex.join(30)
        assert held
        assert held[0].endswith("401")
        wait_for(lambda: "globex.atlassian.net rejected the API token" in proxy.output, what="globex's rejection")
        reached = len(site.record.requests)
        again = curl(proxy.url, "https://globex.atlassian.net/rest/api/3/myself", proxy.ca_file)
        assert json.loads(again.stdout)["error"] == "token_rejected", "answered locally: the token is not resent"
        assert len(site.record.requests) == reached
    finally:
        site.record.rejected -= rejected
        site.record.slow_release.set()


def test_a_misspelt_key_in_the_config_file_is_an_error_not_every_tenant(site, ca_file, confdir, tmp_path):
    from support.proxy import proxy_env

    config = tmp_path / "typo.toml"
    config.write_text('hsots = ["acme.atlassian.net"]\n')
    result = run_cli("run", "--config", str(config), env=proxy_env(site, ca_file, confdir))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"config file {config}: unknown key 'hsots' at the top level; did you mean 'hosts'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_misspelt_key_in_a_table_is_an_error_naming_the_table(site, ca_file, confdir, tmp_path):
    from support.proxy import proxy_env

    config = tmp_path / "typo.toml"
    config.write_text('[[sites]]\nname = "a"\nhosts = ["acme.atlassian.net"]\nemail = "a@x.test"\ntokne_env = "T"\n')
    env = proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_EMAIL=None, ATLASSIAN_PROXY_API_TOKEN=None)
    result = run_cli("run", "--config", str(config), env=env)
    assert result.returncode == 2
    assert "unknown key 'tokne_env' in [[sites]] number 1; did you mean 'token_env'?" in result.stderr


def test_unknown_variables_under_our_prefix_are_left_to_the_tools_that_read_them(make_proxy):
    proxy = make_proxy(ATLASSIAN_PROXY_WPAD_URL="http://127.0.0.1/wpad.dat")
    assert curl(proxy.url, MYSELF, proxy.ca_file, "-w", "%{http_code}").stdout.endswith("200")
