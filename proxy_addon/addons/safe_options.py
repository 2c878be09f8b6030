"""mitmproxy options that would leak the credential or open the proxy to others are refused."""

from __future__ import annotations

from mitmproxy import ctx, exceptions

from proxy_addon.policy.options import listen_problem, logging_problem

STREAM_LARGE_BODIES = "1m"


class SafeOptions:
    """Keeps mitmproxy's options inside what this proxy can promise."""

    def __init__(self) -> None:
        self.proxy_auth = False

    def configure(self, updated: set[str]) -> None:
        if "stream_large_bodies" in updated and ctx.options.stream_large_bodies is None:
            ctx.options.stream_large_bodies = STREAM_LARGE_BODIES
        if updated & {"flow_detail", "proxy_debug", "listen_host"}:  # flow_detail exists only with the dumper
            flow_detail = ctx.options.flow_detail if "flow_detail" in ctx.options else 0
            problem = logging_problem(flow_detail, ctx.options.proxy_debug) or listen_problem(
                ctx.options.listen_host, self.proxy_auth
            )
            if problem:
                raise exceptions.OptionsError(problem)
