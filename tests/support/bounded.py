"""Proxies with bounded clients for the e2e tests: `[[clients]]` tables rendered from data, the
Cloud and Data Center Jira sites most of them share, and the proxy started with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support import upstream
from support.clients import curl
from support.proxy import EMAIL, TOKEN_192, Proxy, proxy_env, start_proxy

PAT = "dc-personal-access-token-0123456789abcdef"
ACME_SITE = f"""
[[sites]]
name = "acme"
hosts = ["*.atlassian.net"]
email = "{EMAIL}"
token_env = "ACME_TOKEN"
"""
DC_JIRA_SITE = """
[[sites]]
name = "dc-jira"
hosts = ["tracker.corp.example"]
scheme = "bearer"
token_env = "DC_PAT"
product = "jira"
context_path = "/jira"
"""
SITE_TOKENS: dict[str, str | None] = {
    "ATLASSIAN_PROXY_EMAIL": None,
    "ATLASSIAN_PROXY_API_TOKEN": None,
    "ACME_TOKEN": TOKEN_192,
    "DC_PAT": PAT,
}
"""The tokens `ACME_SITE` and the Data Center sites (`DC_PAT`) read, and no default site credentials."""


def password_env(client: str) -> str:
    """The variable holding `client`'s password: `wiki-agent` -> `WIKI_AGENT_PASSWORD`."""
    return client.upper().replace("-", "_") + "_PASSWORD"


def password_envs(passwords: dict[str, str]) -> dict[str, str]:
    """Each client's password (client name -> password) under the variable `password_env` names."""
    return {password_env(client): password for client, password in passwords.items()}


def clients_toml(clients: dict[str, dict[str, object]]) -> str:
    """One `[[clients]]` table a client (name -> its bounds, such as `jira_projects`), in that order,
    each reading its password from the variable `password_env` names."""
    tables = []
    for name, bounds in clients.items():
        lines = ["[[clients]]", f'name = "{name}"', f'password_env = "{password_env(name)}"']
        lines += [f"{key} = {json.dumps(value)}" for key, value in bounds.items()]
        tables.append("\n".join(lines))
    return "\n" + "\n\n".join(tables) + "\n"


def bounded_env(
    site: upstream.UpstreamServer,
    ca_file: Path,
    confdir: Path,
    config: Path,
    text: str,
    passwords: dict[str, str],
    **extra: str | None,
) -> dict[str, str]:
    """The proxy's environment with the settings `text` (written to `config`) and every client's password."""
    config.write_text(text)
    return proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_CONFIG=str(config), **password_envs(passwords), **extra)


def start_bounded(*args: Any, **extra: str | None) -> Proxy:
    """A proxy started with `bounded_env(*args, **extra)`."""
    return start_proxy(bounded_env(*args, **extra))


class Call:
    """One request through the proxy as one bounded client (curl, its path sent as given), and what the stand-in
    saw because of it. `base` is put before each target (a site's URL), so tests can name paths alone."""

    def __init__(self, proxy: Proxy, site: upstream.UpstreamServer, client: str, password: str, base: str = "") -> None:
        self.proxy, self.site, self.client, self.base = proxy, site, client, base
        self.login = f"{client}:{password}"
        self.status = 0
        self.body = ""
        self.seen: list[upstream.Seen] = []

    def __call__(self, method: str, target: str, data: object | None = None, *args: str) -> Call:
        before = len(self.site.record.requests)
        extra = ["-X", method, "--proxy-user", self.login, "-w", "\n%{http_code}", "--path-as-is", *args]
        if data is not None:
            extra += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(data)]
        result = curl(self.proxy.url, self.base + target, self.proxy.ca_file, *extra)
        assert result.returncode == 0, result.stderr
        self.body, _, status = result.stdout.rpartition("\n")
        self.status = int(status)
        with self.site.record.lock:
            self.seen = self.site.record.requests[before:]
        return self

    @property
    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]
