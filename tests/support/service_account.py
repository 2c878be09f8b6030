"""A client-credentials site as the root hands it to the hooks, with a fake token endpoint and gateway.

For hook tests: the injector, the token verdicts and the wire source over one service account's
site, `bot`, whose access tokens a fake `minted.mint` issues (`Bearer minted-1`, `-2`, ...) and
whose requests sent again by the proxy a fake `exchange` answers (200 for the newest token only).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils
from pydantic import SecretStr

from proxy_addon.addons.injector import CredentialInjector, WireSource
from proxy_addon.addons.token_verdicts import TokenVerdicts
from proxy_addon.credentials import minted as minted_module
from proxy_addon.credentials import outbound as outbound_module
from proxy_addon.credentials.http_client import Exchanged
from proxy_addon.credentials.minted import Minted
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import CLIENT_SECRET, ClientSecret, NamedEnvToken, Resolved
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.policy.verdict import Policy

from support.prepared import prepared

BOT_HOST = "bot.atlassian.net"
BOT = Site("bot", (HostPattern.parse(BOT_HOST),), "", Scheme.CLIENT_CREDENTIALS)
CLOUD_ID = "b0b0c0de"
CLIENT = ClientSecret("sa-client", SecretStr("the-Client-secret-0123"))


class Endpoint:
    """Stands in for `minted.mint`: `Bearer minted-<n>`, or the exception it is given; each call may be held."""

    def __init__(self) -> None:
        self.calls = 0
        self.failure: Exception | None = None
        self.release = threading.Event()
        self.release.set()

    def __call__(self, client: ClientSecret, reach: Any) -> Minted:
        self.calls += 1
        self.release.wait(5)
        if self.failure is not None:
            raise self.failure
        return Minted(SecretStr(f"Bearer minted-{self.calls}"), 3600)

    @property
    def newest(self) -> str:
        return f"Bearer minted-{self.calls}"


class Gateway401:
    """Stands in for `http_client.exchange` of a request sent again: 200 for the newest token, 401 for any other."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.sent: list[tuple[str, str, str, list[tuple[str, str]]]] = []

    def __call__(self, host, port, method, path, headers, body, reach, limit) -> Exchanged:
        self.sent.append((host, method, path, headers))
        token = dict(headers).get("Authorization")
        if token != self.endpoint.newest:
            return Exchanged(401, "Unauthorized", [("Content-Type", "application/json")], b"{}", True)
        document = json.dumps({"sent": "again", "path": path}).encode()
        fields = [("Content-Type", "application/json"), ("Set-Cookie", "atl.session=x"), ("Connection", "close")]
        return Exchanged(200, "OK", fields, b"" if method == "HEAD" else document, True)


class ServiceAccount:
    """The hooks over `bot`, as the root hands them out."""

    def __init__(self, monkeypatch: Any) -> None:
        self.endpoint = Endpoint()
        self.gateway = Gateway401(self.endpoint)
        monkeypatch.setattr(minted_module, "mint", self.endpoint)
        monkeypatch.setattr(outbound_module, "exchange", self.gateway)
        self.health = TokenHealth()
        self.credentials = CredentialRegistry(self.health)
        self.outbound = Outbound(self.health, self.credentials)
        gateway = Gateway()
        gateway.add(BOT, CLOUD_ID, BOT_HOST)
        configured = prepared([BOT], policy=Policy(SiteTable.of([BOT]), gateway))
        self.outbound.use(configured.policy, configured.reach, 2.0)
        self.outbound.mints.use(
            [Resolved(BOT, NamedEnvToken("BOT_SECRET", CLIENT_SECRET), None, CLIENT)], configured.reach, 2.0
        )
        self.injector = CredentialInjector(self.health, self.outbound)
        self.injector.use(configured)
        self.verdicts = TokenVerdicts(self.outbound, self.credentials)
        self.verdicts.use(configured)
        self.wire = WireSource(self.health, self.credentials)

    async def decide(self, method: str = "GET", host: str = BOT_HOST, path: str = "/rest/api/3/issue/OPS-1"):
        """A client request, through the injector: the flow and the credential the wire gives it (None: none)."""
        request = tutils.treq(host=host, port=443, scheme=b"https", authority=b"", path=path.encode(), method=method)
        request.headers.clear()
        request.headers["host"] = host
        request.headers["accept"] = "application/json"
        f = tflow.tflow(req=request)
        f.client_conn.sni = host
        waiting = self.injector.requestheaders(f)
        if waiting is not None:
            await waiting
        return f, self.wire(f)

    async def answered(self, f: http.HTTPFlow, status: int, fields: dict[str, str] | None = None) -> http.HTTPFlow:
        """The gateway answers `status`: the token verdicts read the head, then the whole answer."""
        f.response = http.Response.make(status, b'{"code": 401}' if status == 401 else b"{}", fields or {})
        self.verdicts.responseheaders(f)
        waiting = self.verdicts.response(f)
        if waiting is not None:
            await waiting
        return f

    async def settled(self) -> None:
        tasks = [state.task for state in self.outbound.mints._mints.values() if state.task is not None]
        await asyncio.gather(*tasks)

    async def refused(self, f: http.HTTPFlow) -> http.HTTPFlow:
        """The gateway answers 401 and the new token's minting ends: `f` as its client gets it."""
        f = await self.answered(f, 401)
        await self.settled()
        return f

    def run[T](self, scenario: Callable[[], Awaitable[T]]) -> T:
        """`scenario()` run to its end with the token verdicts loaded in mitmproxy's test context."""
        with taddons.context(self.verdicts):
            return asyncio.run(scenario())


def injected(f: http.HTTPFlow) -> bool:
    return FlowRecord.of(f.metadata).decision is Decision.INJECT
