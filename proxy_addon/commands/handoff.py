"""Secrets handed from `exec` to itself and to its proxy through a pipe, never through an environment.

`/proc/PID/environ` is the environment a process was started with, and any process of the same
user may read it: scrubbing `os.environ` later changes nothing there. `exec`'s command is such a
process, and `exec` and the proxy it starts are its parent and sibling. So `exec` takes the
variables that hold a secret of the proxy out of its environment and starts itself again
(`execve`, the same program and arguments) without them, handing them over through an inherited
pipe; it hands them to its proxy the same way. Each receiver reads the pipe to its end, closes
it and keeps the secrets in its own memory (`os.environ`, where the settings read them, SIGHUP
included: `/proc/PID/environ` never shows what is set there), before anything else runs.

Both also mark themselves non-dumpable on Linux (`undumpable`), which closes `/proc/PID/environ`,
`/mem`, `/maps`, `/fd` and ptrace to other processes of the same user (not to root, nor to one
with `CAP_SYS_PTRACE`); `run` does too. That alone would not do: the original environment would
still be there for root, and `execve` makes a process dumpable again until it calls `prctl`.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import sys
from collections.abc import Mapping

from proxy_addon.settings.names import ENV_PREFIX, SettingsError

SECRETS_FD = "ATLASSIAN_AUTH_PROXY_SECRETS_FD"
"""The variable that names the inherited pipe (a number, no secret). Outside the settings' prefix: it is no setting."""
MAX_SECRETS = 16 * 1024
"""What a pipe takes without a reader on every platform: the secrets are written before the reader runs."""
PR_SET_DUMPABLE = 4

_received: list[frozenset[str]] = []
"""The names `take_over` received, once it ran in this process."""


def undumpable() -> None:
    """Linux: no other process of this user may read this one's environment, memory or descriptors, nor trace it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def secret_environment(environ: Mapping[str, str], secrets: frozenset[str]) -> dict[str, str]:
    """The variables of `environ` that hold a secret of the proxy (`Settings.secret_variables()`).

    `ATLASSIAN_PROXY_` names are matched ignoring case, as the settings read them; the variables
    `*_env` keys name are matched exactly, as they are read.
    """
    prefixed = {name.upper() for name in secrets if name.upper().startswith(ENV_PREFIX)}
    return {name: value for name, value in environ.items() if name in secrets or name.upper() in prefixed}


def without(environ: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in environ.items() if name not in secrets and name != SECRETS_FD}


def hand_over(secrets: Mapping[str, str]) -> int:
    """A pipe holding `secrets`, written and closed: the read end, for a process about to start to inherit.

    SettingsError when they do not fit in the pipe's buffer.
    """
    data = json.dumps(dict(secrets)).encode()
    if len(data) > MAX_SECRETS:
        raise SettingsError(
            f"the secrets in the environment take {len(data)} bytes; exec hands over at most {MAX_SECRETS}: "
            "put the larger ones in files (token_file, password_file)"
        )
    read, write = os.pipe()
    try:
        os.set_blocking(write, False)
        written = os.write(write, data)
    finally:
        os.close(write)
    if written != len(data):
        os.close(read)
        raise SettingsError(f"exec could not hand over the secrets in the environment ({written} of {len(data)} bytes)")
    os.set_inheritable(read, True)
    return read


def start_again(secrets: Mapping[str, str]) -> None:
    """Replace this process with itself, started without `secrets` in its environment and handed them by pipe."""
    fd = hand_over(secrets)
    environment = without(os.environ, secrets) | {SECRETS_FD: str(fd)}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)  # noqa: S606 - ourselves again


def child_environment(secrets: Mapping[str, str]) -> tuple[dict[str, str], int]:
    """The environment of a child that gets `secrets` by pipe, and the pipe's read end to pass it."""
    fd = hand_over(secrets)
    return without(os.environ, secrets) | {SECRETS_FD: str(fd)}, fd


def take_over() -> None:
    """If this process was handed secrets, become non-dumpable, read them into `os.environ` and close the pipe."""
    text = os.environ.pop(SECRETS_FD, None)
    if text is None:
        return
    undumpable()
    fd = int(text) if text.isdigit() else -1
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise OSError("not a pipe")
        with os.fdopen(fd, "rb") as pipe:
            secrets = json.loads(pipe.read(MAX_SECRETS + 1))
        if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
            raise ValueError("not what exec hands over")
    except (OSError, ValueError) as e:
        raise SettingsError(f"{SECRETS_FD} is for exec's own use ({e}); unset it") from None
    os.environ.update(secrets)
    _received.append(frozenset(secrets))


def handed_over() -> bool:
    """Was this process started by `exec` with its secrets by pipe (so it must not start itself again)?"""
    return bool(_received)
