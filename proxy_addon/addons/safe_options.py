"""mitmproxy options that would leak the credential, send a request before its verdict, change it
after its verdict, or open the proxy to others are refused."""

from __future__ import annotations

import logging
from collections.abc import Callable

from mitmproxy import ctx, exceptions
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.utils import human

from proxy_addon.addons.mitmproxy_internals import listen_addresses
from proxy_addon.addons.prepared import Prepared
from proxy_addon.policy.options import (
    REWRITING_OPTIONS,
    bound_problem,
    listen_problem,
    logging_problem,
    mode_problem,
    rewrite_problem,
    streaming_problem,
    upstream_trust_problem,
)

logger = logging.getLogger(__name__)

STREAM_LARGE_BODIES = "1m"


class SafeOptions:
    """Keeps mitmproxy's options inside what this proxy can promise."""

    def __init__(self, refuse_start: Callable[[str], None] | None = None) -> None:
        self.proxy_auth = False
        self.refuse_start = refuse_start
        """How a bad bound address stops the start; `run` passes one that exits 2 with that one line."""

    def use(self, prepared: Prepared) -> None:
        self.proxy_auth = prepared.login_required

    def configure(self, updated: set[str]) -> None:
        if "stream_large_bodies" in updated:
            setting = ctx.options.stream_large_bodies
            if setting is None:
                ctx.options.stream_large_bodies = STREAM_LARGE_BODIES
            elif problem := streaming_problem(setting, _size(setting)):
                raise exceptions.OptionsError(problem)
        if updated & {"flow_detail", "proxy_debug", "listen_host", "mode", "ssl_insecure"}:
            flow_detail = ctx.options.flow_detail if "flow_detail" in ctx.options else 0  # only with the dumper
            problem = (
                logging_problem(flow_detail, ctx.options.proxy_debug)
                or listen_problem(ctx.options.listen_host, self.proxy_auth)
                or mode_problem(self._modes(), self.proxy_auth)
                or upstream_trust_problem(ctx.options.ssl_insecure)
            )
            if problem:
                raise exceptions.OptionsError(problem)
        rewriting = updated & REWRITING_OPTIONS.keys()  # mitmdump's addons' options; `run` loads none of them
        if rewriting and (problem := rewrite_problem({name: getattr(ctx.options, name) for name in rewriting})):
            raise exceptions.OptionsError(problem)

    def running(self) -> None:
        """The servers are bound by now: check the addresses they really got, not only the specs.

        Under `run`, `refuse_start` ends it like any bad setting (one line, exit 2). Under
        mitmdump an error logged here stops the start: its ErrorCheck exits (code 1) right after
        the `running` hooks.
        """
        bound = [address[0] for address in listen_addresses()]
        if problem := bound_problem(bound, self.proxy_auth):
            if self.refuse_start is not None:
                self.refuse_start(problem)
                return
            logger.error(problem)
            ctx.master.shutdown()

    @staticmethod
    def _modes() -> list[tuple[str, str]]:
        """Each mode's type and the host it really listens on (its own `@host`, else `listen_host`)."""
        modes = []
        for spec in ctx.options.mode:
            try:
                mode = ProxyMode.parse(spec)
            except ValueError as e:
                raise exceptions.OptionsError(f"mode {spec!r}: {e}") from None
            modes.append((mode.type_name, mode.listen_host(ctx.options.listen_host)))
        return modes


def _size(setting: str) -> int | None:
    """mitmproxy's reading of a size option; None for one it refuses itself (Proxyserver says why)."""
    try:
        return human.parse_size(setting)
    except ValueError:
        return None
