"""Command-line tools and Python clients, each running its recipe from docs/how-to/clients.md as written.

Each talks to https://acme.atlassian.net as it would in real use, with nothing but the `env`
exports (and the recipe's one line, where the page gives one); the TLS stand-in records what
arrives, which is the proof: the configured identity, not the client's own.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from support.clients import assert_identity, require, run_recipe
from support.proxy import REPO, TOKEN_192, basic
from support.recipes import CLIENTS, recipe

RUNTIMES = {"curl": "curl", "wget": "wget"}
"""The recipes that need a program of their own; the Python ones run in the test environment."""


@pytest.mark.parametrize(
    "name", ["curl", "wget", "requests", "httpx", "urllib", "aiohttp", "jira", "atlassian-python-api"]
)
def test_client_gets_the_configured_identity(proxy, site, tmp_path, name):
    if name in RUNTIMES:
        require(RUNTIMES[name], shutil.which(RUNTIMES[name]) is not None)
    result, arrived = run_recipe(proxy, site, tmp_path, recipe(CLIENTS, name))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Test User" in result.stdout
    assert_identity(arrived)


def test_git_over_https_to_bitbucket(make_proxy, site, tmp_path):
    """git reaches Bitbucket with the git site's identity; the stand-in is no git server, so git then gives up."""
    require("git", shutil.which("git") is not None)
    proxy = make_proxy(
        "--config",
        str(REPO / "config" / "bitbucket.example.toml"),
        ATLASSIAN_PROXY_EMAIL=None,
        ATLASSIAN_PROXY_API_TOKEN=None,
        BITBUCKET_API_TOKEN=TOKEN_192,
    )
    result, arrived = run_recipe(proxy, site, tmp_path, recipe(CLIENTS, "git"), GIT_TERMINAL_PROMPT="0")
    assert "SSL" not in result.stderr, result.stderr
    assert "proxy" not in result.stderr.lower(), result.stderr
    assert arrived[0].path == "/acme/repo.git/info/refs?service=git-upload-pack"
    assert_identity(arrived, basic("x-bitbucket-api-token-auth", TOKEN_192), "bitbucket.org")


READER_PASSWORD = "reader-Pa55word-of-httpie"


def test_httpie_in_a_script_reads_as_a_read_only_client(make_proxy, site, tmp_path):
    """Standard input is no terminal here, as in any script: the recipe still sends a GET, which a
    read-only client may; without `--ignore-stdin`, httpie sends a POST, which it may not."""
    config = tmp_path / "reader.toml"
    config.write_text('[[clients]]\nname = "reader"\npassword_env = "READER_PASSWORD"\nread_only = true\n')
    settings = {"ATLASSIAN_PROXY_CONFIG": str(config), "READER_PASSWORD": READER_PASSWORD}
    proxy = make_proxy(**settings)
    httpie = recipe(CLIENTS, "httpie")
    result, arrived = run_recipe(proxy, site, tmp_path, httpie, "--client", "reader", **settings)
    assert result.returncode == 0, result.stderr
    assert "Test User" in result.stdout
    assert [r.method for r in arrived] == ["GET"]
    assert_identity(arrived)

    reading_stdin = replace(httpie, command=httpie.command.replace(" --ignore-stdin", ""))
    assert reading_stdin != httpie
    result, arrived = run_recipe(proxy, site, tmp_path, reading_stdin, "--client", "reader", **settings)
    assert arrived == [], "the POST never reaches the site"
    assert "client reader is read-only: POST /rest/api/3/myself is not a read" in result.stdout, result.stdout
