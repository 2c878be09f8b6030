"""`atlassian-auth-proxy exec -- CMD [ARG...]`: run one program through a proxy of its own.

An MCP host starts a stdio server with a bare environment (the SDKs pass only HOME, PATH,
SHELL, TERM, USER, LOGNAME plus the host's `env` block), and a cron line or a CI step has no
shell to `eval "$(atlassian-auth-proxy env)"` in. `exec` starts the proxy on a free loopback
port, waits until it listens, runs CMD with the exports `env` would print, and stops the
proxy when CMD ends.

The proxy runs as a child process in its own session, so a terminal's Ctrl-C reaches CMD and
not the proxy (which must outlive CMD's last request); its stdout and stderr both go to our
stderr, because a stdio MCP server speaks JSON-RPC on stdout.

CMD never gets a secret of the proxy: the tool would otherwise hold the very token the proxy
exists to keep from it. Not in its own environment (`command_environment`), nor in its parent's
or its sibling's, which it could read in `/proc`: `exec` starts itself again without them before
it starts anything, and hands them to itself and to the proxy by pipe (`commands.handoff`).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO

from proxy_addon.commands import handoff
from proxy_addon.commands.env import login_of, variables
from proxy_addon.settings.loading import load_settings

LISTENING = re.compile(r"atlassian-auth-proxy listening on http://(\S+):(\d+)")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
START_SECONDS = 120.0
STOP_SECONDS = 15.0
CANNOT_START = 2


def die_with_parent() -> None:
    """Linux: the proxy gets SIGTERM if `exec` itself is killed, so no proxy outlives it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_proxy(args: argparse.Namespace, secrets: Mapping[str, str]) -> subprocess.Popen[str]:
    """The proxy, handed `secrets` by pipe: its environment is ours without them."""
    command = [sys.executable, "-m", "proxy_addon.commands.main", "run", "--listen-port", str(args.listen_port)]
    if args.listen_host:
        command += ["--listen-host", args.listen_host]
    if args.config:
        command += ["--config", str(args.config)]
    environment, fd = handoff.child_environment(secrets)
    try:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module, arguments from argparse
            command,
            env=environment,
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    finally:
        os.close(fd)


def wait_until_listening(proxy_log: IO[str], log: IO[str]) -> int | None:
    """Copy the proxy's log to `log` until it says where it listens; None if it ended first.

    The rest of its log keeps flowing to `log` from a thread for as long as the proxy runs.
    """
    found: list[int] = []
    ready = threading.Event()

    def pump() -> None:
        for line in proxy_log:
            log.write(line)
            log.flush()
            if not found and (match := LISTENING.search(line)):
                found.append(int(match[2]))
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    ready.wait(START_SECONDS)
    return found[0] if found else None


def stop(proxy: subprocess.Popen[str]) -> None:
    """SIGTERM lets the proxy finish what is in flight; a proxy that hangs is killed."""
    if proxy.poll() is None:
        proxy.terminate()
        try:
            proxy.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()


def command_environment(
    environ: Mapping[str, str], secrets: frozenset[str], exports: Mapping[str, str]
) -> dict[str, str]:
    """CMD's environment: the caller's without any variable that holds a secret of the proxy
    (`handoff.secret_environment`), plus the exports, which carry only the chosen client's own proxy login.
    """
    return {**handoff.without(environ, handoff.secret_environment(environ, secrets)), **exports}


def exit_code(returncode: int) -> int:
    """CMD's exit status as a shell reports it: 128+N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def forward_signals(target: Callable[[], subprocess.Popen[bytes] | None], on_early: Callable[[int], None]) -> None:
    """Pass SIGINT/SIGTERM/SIGHUP to CMD; before CMD runs, they stop the start instead."""

    def handler(signum: int, _frame: object) -> None:
        child = target()
        if child is None:
            on_early(signum)
        elif child.poll() is None:
            child.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, handler)


def exec_command(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print(
            "atlassian-auth-proxy: error: exec needs a command after --, e.g. exec -- uvx mcp-atlassian",
            file=sys.stderr,
        )
        return CANNOT_START
    settings = load_settings(args.config, listen_host=args.listen_host)  # a bad setting fails before anything starts
    login_of(settings, args.client)
    secrets = handoff.secret_environment(os.environ, settings.secret_variables())
    if secrets and not handoff.handed_over():
        handoff.start_again(secrets)  # does not return: this process goes on without them in its environment
    handoff.undumpable()
    running: list[subprocess.Popen[bytes]] = []
    early: list[int] = []
    proxy = start_proxy(args, secrets)

    def stop_start(signum: int) -> None:
        early.append(signum)
        proxy.terminate()

    forward_signals(lambda: running[0] if running else None, stop_start)
    try:
        port = wait_until_listening(proxy.stderr, sys.stderr) if proxy.stderr is not None else None
        if early:
            return 128 + early[0]
        if port is None:
            try:
                proxy.wait(STOP_SECONDS)  # its log ended: it is exiting, and its last line said why
            except subprocess.TimeoutExpired:
                print(
                    f"atlassian-auth-proxy: error: the proxy did not listen within {START_SECONDS:.0f} s",
                    file=sys.stderr,
                )
            return CANNOT_START
        exports = variables(settings.model_copy(update={"listen_port": port}), args.client)
        if early:  # the signal came just now: the proxy is stopping, so CMD must not start
            return 128 + early[0]
        try:
            environment = command_environment(os.environ, settings.secret_variables(), exports)
            running.append(subprocess.Popen(cmd, env=environment))  # noqa: S603 - the user's command
        except OSError as e:
            print(f"atlassian-auth-proxy: exec: cannot run {cmd[0]}: {e.strerror}", file=sys.stderr)
            return 127 if isinstance(e, FileNotFoundError) else 126
        return exit_code(running[0].wait())
    finally:
        stop(proxy)
