"""Clients: who uses the proxy, and the bounds each one's requests stay within.

An Atlassian API token acts with its owner's full rights and Atlassian cannot narrow it to a
project or a space; the proxy sees every request, so this is where a client's bounds live.
Pure: the settings build the `ClientTable` from `[[clients]]` once at load, and the hooks ask it
who a `Proxy-Authorization` header names and what that client may reach.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from proxy_addon.policy.proxy_login import ProxyLogin, basic_credentials

NO_CLIENT = "none"
"""The `client` metrics label of requests without a proxy login, so no client may take the name."""


@dataclass(frozen=True, slots=True)
class Client:
    """One `[[clients]]` table, prepared. `None` for a bound means "not bounded by it".

    `jira_projects` and `confluence_spaces` hold upper-case keys, so the per-request check
    compares without folding case again.
    """

    name: str
    login: ProxyLogin = field(repr=False)
    sites: frozenset[str] | None = None
    read_only: bool = False
    jira_projects: frozenset[str] | None = None
    confluence_spaces: frozenset[str] | None = None
    requests_per_minute: int | None = None

    def may_use(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    @property
    def bounded(self) -> bool:
        """Has a Jira or Confluence boundary: routes that could cross it are refused."""
        return self.jira_projects is not None or self.confluence_spaces is not None


@dataclass(frozen=True, slots=True)
class ClientTable:
    """Every configured client by name, built once at load; empty when there is no `[[clients]]`."""

    clients: dict[str, Client] = field(default_factory=dict)

    @classmethod
    def of(cls, clients: Iterable[Client]) -> ClientTable:
        return cls({client.name: client for client in clients})

    def __bool__(self) -> bool:
        return bool(self.clients)

    def get(self, name: str | None) -> Client | None:
        return self.clients.get(name) if name is not None else None

    def authenticate(self, header: str | None) -> Client | None:
        """The client whose login the Proxy-Authorization header carries, or None.

        The password is compared in constant time (a digest) against the one client the
        header names; which names exist is not a secret, the passwords are.
        """
        given = basic_credentials(header)
        if given is None:
            return None
        client = self.clients.get(given[0])
        if client is None:
            return None
        return client if client.login.check(header) is not None else None
