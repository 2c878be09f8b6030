"""Secrets handed over by pipe (red team #5), to a real process: the receiver has them where the settings read
them, its environment as the kernel shows it (`/proc/PID/environ`) never held them, and it is non-dumpable before
it reads them; a `SECRETS_FD` that is no pipe of exec's stops the CLI with one line. commands/test_handoff.py has
the pure parts; e2e/test_exec.py and e2e/test_redteam_findings.py prove it through `exec`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from proxy_addon.commands import handoff

from support.proxy import command

TOKEN = "handed-0ver-T0ken-for-the-pipe"
RECEIVER = """
import ctypes, json, os
from proxy_addon.commands.handoff import SECRETS_FD, take_over
from proxy_addon.credentials.sources import NamedEnvToken
take_over()
with open("/proc/self/environ", "rb") as f:
    environ = f.read().decode()
print(json.dumps({
    "read": NamedEnvToken("ACME_TOKEN").read().get_secret_value(),
    "in_environ": "ACME_TOKEN" in environ or "handed-0ver" in environ,
    "fd_left": SECRETS_FD in os.environ,
    "dumpable": ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),
    "fds": sorted(int(n) for n in os.listdir("/proc/self/fd")),
}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl")
def test_a_process_handed_secrets_reads_them_as_settings_do_and_its_environment_never_held_them():
    fd = handoff.hand_over({"ACME_TOKEN": TOKEN})
    try:
        environment = {**os.environ, handoff.SECRETS_FD: str(fd)}
        result = subprocess.run(
            [sys.executable, "-c", RECEIVER],
            env=environment,
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.close(fd)
    seen = json.loads(result.stdout)
    assert seen["read"] == TOKEN, "where the settings and SIGHUP's reload read it"
    assert seen["in_environ"] is False
    assert seen["fd_left"] is False, "the pipe's number is gone too: a child of it inherits nothing"
    assert seen["dumpable"] == 0
    assert fd not in seen["fds"], "the pipe is closed once read"


@pytest.mark.parametrize("value", ["abc", "0", "999"])
def test_a_secrets_fd_that_is_no_pipe_of_execs_stops_with_one_line(value):
    result = subprocess.run(
        [*command(), "env"],
        env={**os.environ, handoff.SECRETS_FD: value},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"atlassian-auth-proxy: error: {handoff.SECRETS_FD} is for exec's own use")
