"""Run mitmproxy from Python with our addon, and stop it without dropping requests.

mitmproxy's own SIGTERM handling closes in-flight requests with an empty reply; here a signal
stops the listener, lets running requests finish (bounded), then shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any, TextIO

from mitmproxy import hooks, http
from mitmproxy.addons import (
    block,
    core,
    disable_h2c,
    errorcheck,
    next_layer,
    proxyserver,
    tlsconfig,
    update_alt_svc,
    upstream_auth,
)
from mitmproxy.addons.termlog import TermLog
from mitmproxy.master import Master
from mitmproxy.options import Options

from proxy_addon.addons.mitmproxy_internals import listen_addresses
from proxy_addon.addons.request_log import JsonLines
from proxy_addon.credentials.sources import Resolved
from proxy_addon.policy.sites import SiteTable
from proxy_addon.runtime.root import AtlassianAuthProxy
from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import SettingsError

logger = logging.getLogger(__name__)

MITMPROXY_CLIENT_TLS_FAILED = "Client TLS handshake failed"
"""How mitmproxy's own line for a client's failed TLS handshake begins (`ClientTLSLayer.on_handshake_error`)."""

# Inside the 10 s that `docker stop` / `podman stop` wait before SIGKILL, with room to shut down.
DRAIN_SECONDS = 8.0


def without_connection_chatter(record: logging.LogRecord) -> bool:
    """Drop mitmproxy's per-connection INFO lines, as our request log already has one line per request,
    and its line for a client's failed TLS handshake, which the request log writes once with the client."""
    if record.name != "mitmproxy.proxy.server":
        return True
    return record.levelno > logging.INFO and not record.getMessage().startswith(MITMPROXY_CLIENT_TLS_FAILED)


class InFlight:
    """Counts requests between their headers and their end, so shutdown can wait for them."""

    def __init__(self) -> None:
        self.flows: set[http.HTTPFlow] = set()
        self.idle = asyncio.Event()
        self.idle.set()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self.flows.add(flow)
        self.idle.clear()

    def response(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def _finish(self, flow: http.HTTPFlow) -> None:
        self.flows.discard(flow)
        if not self.flows:
            self.idle.set()


class Listening:
    """Announces the real listen address (useful with --listen-port 0), unless the start was refused."""

    def __init__(self, refused: list[str]) -> None:
        self.refused = refused

    def running(self) -> None:
        if self.refused:
            return
        for address in listen_addresses():
            host, port = address[:2]
            logger.info("atlassian-auth-proxy listening on http://%s:%s", host, port)


def quiet_records() -> None:
    """Leave out of every log record what no format here prints: the caller's file and line, the
    process, the thread and the task, which `logging` otherwise looks up for each record (the
    knobs of the logging HOWTO's "Optimization" section): the request log writes a record per
    request, and each paid for a stack walk and a getpid() call."""
    logging._srcfile = None
    # typeshed does not declare logAsyncioTasks (Python 3.12 added it to logging).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = logging.logAsyncioTasks = False  # type: ignore[attr-defined]


def line_stream(stream: TextIO) -> TextIO:
    """`stream` (stderr) written one whole line per write(2).

    `sys.stderr` writes through: mitmproxy's `print` of each log line is two writes, the text and
    then its newline. This one buffers up to the newline and flushes there, so a line still leaves
    the moment it is complete. It shares the file descriptor and never closes it. A stream
    without one (stderr replaced by a caller) is used as it is.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream
    return open(fd, "w", buffering=1, encoding=stream.encoding, errors="backslashreplace", closefd=False)


def mitmproxy_addons(*ours: object) -> list[object]:
    """The mitmproxy addons `run` serves with, `ours` among them: what proxying, TLS and our settings need, no more.

    mitmdump loads about thirty more (map/modify/replay/sticky cookies and auth/anticache/
    onboarding/save and others): features for interactive use that `run` has no way to switch
    on, several of which would change or answer traffic to a credential host if they were. Each
    is also called for every event of every request, and all of them together cost more per
    request than everything this proxy does (bench/README.md).

    `Block` keeps refusing clients from public addresses (`block_global`), `DisableH2C` keeps
    refusing h2c upgrades, `UpdateAltSvc` keeps reverse-mode clients from being told to go around
    the proxy, `ErrorCheck` makes a listener that failed to start stop the process, and
    `UpstreamAuth` serves UPSTREAM_PROXY's credentials. It comes after `ours`, as mitmdump puts
    it after its scripts: it writes the corporate proxy's login into the `Proxy-Authorization` of
    plain-http requests in `requestheaders`, and the client's login there has to be checked and
    removed first, or the check would take the corporate login for the client's (407) or strip it.
    """
    return [
        core.Core(),
        block.Block(),
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        disable_h2c.DisableH2C(),
        update_alt_svc.UpdateAltSvc(),
        errorcheck.ErrorCheck(),
        *ours,
        upstream_auth.UpstreamAuth(),
    ]


def proxy_modes(settings: Settings) -> list[str]:
    """mitmproxy's `mode` option: regular (forward) unless reverse or an upstream proxy is set."""
    chosen = settings.reverse or settings.upstream_proxy
    return [chosen.mode()] if chosen else ["regular"]


async def serve(settings: Settings, given: tuple[SiteTable, list[Resolved]]) -> None:
    logging.getLogger().setLevel(logging.INFO)
    quiet_records()
    options = Options(listen_host=settings.listen_host, listen_port=settings.listen_port, mode=proxy_modes(settings))
    master = Master(options, with_termlog=False)
    in_flight = InFlight()
    refused: list[str] = []  # why SafeOptions refused the start once the servers were bound: exit 2 with it

    def refuse_start(problem: str) -> None:
        refused.append(problem)
        master.shutdown()

    proxy = AtlassianAuthProxy(settings, given, runtime=(in_flight, Listening(refused)), refuse_start=refuse_start)
    termlog = TermLog(out=line_stream(sys.stderr))
    termlog.logger.addFilter(without_connection_chatter)
    if settings.log_format == "json":
        termlog.logger.setFormatter(JsonLines())
    master.addons.add(*mitmproxy_addons(termlog, proxy))
    master.addons.invoke_addon_sync(proxy, hooks.ConfigureHook(set(master.options.keys())))
    if settings.upstream_proxy is not None and (auth := settings.upstream_proxy.auth()):
        master.options.update(upstream_auth=auth)

    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def on_signal(signum: int) -> None:
        if not stopping:
            stopping.append(loop.create_task(_drain(master, in_flight, signal.Signals(signum).name)))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    reloads: set[asyncio.Task[None]] = set()

    def on_hangup() -> None:
        logger.info("SIGHUP: reading every token again from its source")
        task = loop.create_task(proxy.watcher.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    await master.run()
    loop.set_exception_handler(_without_cancelled_clients)
    if refused:
        raise SettingsError(refused[0])


async def _drain(master: Master, in_flight: InFlight, name: str) -> None:
    logger.info("%s: no longer accepting connections; finishing %d request(s)", name, len(in_flight.flows))
    master.options.update(server=False)
    try:
        await asyncio.wait_for(in_flight.idle.wait(), DRAIN_SECONDS)
    except TimeoutError:
        logger.warning("%d request(s) still running after %.0fs; stopping anyway", len(in_flight.flows), DRAIN_SECONDS)
    master.shutdown()


def _without_cancelled_clients(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Once mitmproxy has stopped, `asyncio.run` cancels the task of every client still connected (an idle
    keep-alive one, say); some Python 3.12 releases' asyncio (`StreamReaderProtocol`'s done callback) then asks
    the cancelled task for its exception and logs the resulting `CancelledError` with a traceback, on an
    ordinary stop. Only that is dropped."""
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)
