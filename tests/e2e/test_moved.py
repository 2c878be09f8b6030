"""A credentialed request goes only where its verdict sent it (red team #10), end to end under `mitmdump -s`.

The verdict is made on the request head, a boundary's judgement by the `request` hook; another addon may
move the request after both. The wire then sends nothing and opens no connection for it (`refused-moved`),
and mitmdump's options that move or answer requests after the verdict are refused at start.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.bounded import bounded_env, clients_toml
from support.clients import curl
from support.proxy import ADDON, Proxy, start_mitmdump, wait_for
from support.proxy import mitmdump as mitmdump_command

CLOUD = "https://acme.atlassian.net"
PASSWORDS = {"ops-agent": "ops-Pa55word-31c8-mv", "free-agent": "free-Pa55word-5ab7-mv"}
CLIENTS = clients_toml({"ops-agent": {"jira_projects": ["OPS"]}, "free-agent": {}})
MOVER = Path(__file__).parents[1] / "support" / "move_after_verdict.py"


@pytest.fixture
def clients_env(site, ca_file, tmp_path) -> dict[str, str]:
    return bounded_env(site, ca_file, tmp_path, tmp_path / "clients.toml", CLIENTS, PASSWORDS)


@pytest.fixture
def moving(clients_env) -> Iterator[Proxy]:
    proxy = start_mitmdump(clients_env, "-s", str(MOVER))
    yield proxy
    proxy.stop()


def get(proxy: Proxy, client: str, path: str) -> tuple[str, str]:
    login = f"{client}:{PASSWORDS[client]}"
    result = curl(proxy.url, CLOUD + path, proxy.ca_file, "--proxy-user", login, "-w", "\n%{http_code}")
    answer, _, status = result.stdout.rpartition("\n")
    return status, answer


def test_a_request_moved_to_another_host_after_its_verdict_is_refused_and_nothing_is_sent(moving, site):
    before = len(site.record.requests)
    status, answer = get(moving, "free-agent", "/elsewhere/rest/api/3/myself")
    assert status == "502", answer
    assert "was changed after the proxy decided where its credentials go" in answer
    wait_for(lambda: "credentials=refused-moved" in moving.output, what="the refusal's log line")
    assert len(site.record.requests) == before, "nothing reached any host, with or without the credential"
    status, _ = get(moving, "free-agent", "/rest/api/3/myself")
    assert status == "200", "a request left where it was decided goes as before"


def test_a_judged_request_whose_path_changed_after_its_judgement_is_refused_and_nothing_is_sent(moving, site):
    before = len(site.record.requests)
    status, answer = get(moving, "ops-agent", "/rest/api/3/issue/OPS-1")
    assert status == "502", answer
    assert "the method or path of acme.atlassian.net" in answer
    assert len(site.record.requests) == before, "SEC-1 was never asked for"
    status, _ = get(moving, "free-agent", "/rest/api/3/issue/OPS-1")
    assert status == "200", "an unbounded client's path is nobody's bound: the move goes through, to the same site"
    assert site.record.last().path == "/rest/api/3/issue/SEC-1"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("map_remote", "|https://acme.atlassian.net/wiki/|https://other.example.test/"),
        ("map_local", "|~d acme.atlassian.net|/tmp"),
        ("modify_headers", "/~q/Authorization/Bearer s3cret-in-a-spec"),
        ("modify_body", "/jql/summary"),
        ("stickyauth", ".*"),
        ("stickycookie", ".*"),
    ],
)
def test_mitmdump_refuses_options_that_move_requests_after_the_verdict_in_one_line(clients_env, option, value):
    argv = [mitmdump_command(), "-s", str(ADDON), "--listen-host", "127.0.0.1", "--listen-port", "0"]
    result = subprocess.run(
        [*argv, "--set", f"{option}={value}"], env=clients_env, capture_output=True, text=True, timeout=30, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    errors = [line for line in output.splitlines() if "after the proxy decided where their credentials go" in line]
    assert len(errors) == 1, output
    assert f"{option} " in errors[0], errors[0]
    assert "s3cret" not in output


def test_mitmdump_keeps_response_only_header_changes(clients_env):
    proxy = start_mitmdump(clients_env, "--set", "modify_headers=/~s/X-Changed/yes")
    try:
        result = curl(proxy.url, CLOUD + "/rest/api/3/myself", proxy.ca_file, "-i", "--proxy-user",
                      f"free-agent:{PASSWORDS['free-agent']}")  # fmt: skip
    finally:
        proxy.stop()
    assert "HTTP/1.1 200" in result.stdout, result.stdout
    assert "x-changed: yes" in result.stdout.lower()
