"""The body judged is the body sent (issue 20 #4): no mitmproxy option or addon makes a request a
boundary holds for its body leave before its verdict, under `run` or `mitmdump -s`.

mitmproxy itself streams a body once it passes `stream_large_bodies` (`check_body_size` in its
HTTP layer), which would send the head, the credential and the body before the `request` hook
judged them. So an option below the boundaries' body limit is refused at start, and a held request
that starts streaming anyway is answered by the proxy and never sent.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.bounded import bounded_env, clients_toml
from support.clients import curl
from support.proxy import ADDON, Proxy, start_mitmdump, wait_for
from support.proxy import mitmdump as mitmdump_command

SEARCH = "https://acme.atlassian.net/rest/api/3/search/jql"
OUTSIDE = json.dumps({"jql": "project = SEC", "fields": ["summary"], "padding": "x" * 40_000})
PASSWORDS = {"ops-agent": "ops-Pa55word-31c8", "free-agent": "free-Pa55word-5ab7"}
CLIENTS = clients_toml({"ops-agent": {"jira_projects": ["OPS"]}, "free-agent": {}})
STREAM_EVERY_REQUEST = Path(__file__).parents[1] / "support" / "stream_every_request.py"
STREAM_ABOVE_16K = Path(__file__).parents[1] / "support" / "stream_above_16k.py"


@pytest.fixture
def clients_env(site, ca_file, tmp_path) -> dict[str, str]:
    return bounded_env(site, ca_file, tmp_path, tmp_path / "clients.toml", CLIENTS, PASSWORDS)


@pytest.fixture
def mitmdump(clients_env) -> Iterator:
    started: list[Proxy] = []

    def start(*args: str) -> Proxy:
        started.append(start_mitmdump(clients_env, *args))
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


def refused_unsent(status: str, answer: str, proxy: Proxy, site, before: int) -> None:
    """Answered by the proxy (or, as the reply raced the rest of the upload, the connection reset),
    logged as refused, and nothing of it reached the site."""
    assert status in ("502", "000"), answer
    if status == "502":
        assert "must be judged before it is sent" in answer
    wait_for(lambda: "credentials=refused-undecided" in proxy.output, what="the refusal's log line")
    assert len(site.record.requests) == before, "nothing of the held request reached the site"


def search(proxy: Proxy, client: str, body: str = OUTSIDE) -> tuple[str, str]:
    """A POST search as `client` with a 40 KB body; the status and the body of the answer."""
    login = f"{client}:{PASSWORDS[client]}"
    args = ("--proxy-user", login, "-H", "Content-Type: application/json", "--data-binary", body)
    result = curl(proxy.url, SEARCH, proxy.ca_file, *args, "-w", "\n%{http_code}")
    answer, _, status = result.stdout.rpartition("\n")
    return status, answer


@pytest.mark.parametrize("size", ["16k", "0", "1023k"])
def test_mitmdump_refuses_stream_large_bodies_below_the_judged_limit_at_start(clients_env, size):
    argv = [mitmdump_command(), "-s", str(ADDON), "--listen-host", "127.0.0.1", "--listen-port", "0"]
    result = subprocess.run(
        [*argv, "--set", f"stream_large_bodies={size}"],
        env=clients_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "stream_large_bodies" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    assert f"stream_large_bodies={size}" in errors[0]
    assert "at least 1m" in errors[0]


def test_at_the_limit_a_large_judged_body_is_still_judged_before_it_is_sent(mitmdump, site):
    proxy = mitmdump("--set", "stream_large_bodies=1m")
    before = len(site.record.requests)
    status, answer = search(proxy, "ops-agent")
    assert status == "200", answer
    sent = site.record.posted[-1]
    assert sent["jql"] != "project = SEC", "the search was confined before it went"
    assert len(site.record.requests) == before + 1


def test_a_held_request_an_addon_makes_stream_is_refused_and_never_sent(mitmdump, site):
    proxy = mitmdump("-s", str(STREAM_EVERY_REQUEST))
    before = len(site.record.requests)
    refused_unsent(*search(proxy, "ops-agent"), proxy, site, before)
    status, _ = search(proxy, "free-agent")
    assert status == "200", "an unbounded client's request streams as the addon wants"
    assert site.record.last().path == "/rest/api/3/search/jql"


def test_a_body_size_limit_below_the_judged_limit_refuses_the_body_rather_than_send_it(mitmdump, site):
    proxy = mitmdump("--set", "body_size_limit=16k")
    before = len(site.record.requests)
    status, _ = search(proxy, "ops-agent")
    assert status in ("502", "000"), "mitmproxy's 413 (which the upstream-fault page replaces), or a reset"
    wait_for(lambda: "body_size_limit" in proxy.output, what="mitmproxy's refusal in the log")
    assert len(site.record.requests) == before


def test_a_held_body_mitmproxy_starts_streaming_halfway_is_refused_and_never_sent(mitmdump, site):
    """The finding itself, with the option slipped past the check: the body passes 16 KiB while buffered."""
    proxy = mitmdump("-s", str(STREAM_ABOVE_16K))
    before = len(site.record.requests)
    refused_unsent(*search(proxy, "ops-agent"), proxy, site, before)
    status, _ = search(proxy, "ops-agent", json.dumps({"jql": "project = SEC", "padding": "x" * 1000}))
    assert status == "200", "a body under 16 KiB is judged and sent confined"
    assert site.record.posted[-1]["jql"] != "project = SEC"
