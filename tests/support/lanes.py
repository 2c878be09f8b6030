"""The test lanes: which folder's tests are `unit`, `e2e` or `deploy`, and what a unit test may not do.

A unit test runs in the pytest process: it starts no process and opens no socket to anything
but loopback (mitmproxy's `taddons` open none; a few internals tests use a loopback pair).
`confined()` makes either an error while a unit test runs, so a slow test cannot slip into the
fast lane (`pytest -m unit`) unnoticed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
FOLDER_LANES = {"e2e": "e2e", "deploy": "deploy"}
"""Every other folder (and tests/test_layout.py) holds unit tests."""
LANES = ("unit", "e2e", "deploy")


def lane_of(path: Path) -> str:
    return FOLDER_LANES.get(path.relative_to(TESTS).parts[0], "unit")


class NotAUnitTest(Exception):
    """A unit test started a process or reached past loopback; it belongs in tests/e2e/."""


def _loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).partition("%")[0]).is_loopback
    except ValueError:
        return False  # a name to resolve, or "" (every interface)


@contextmanager
def confined(violations: list[str]) -> Iterator[None]:
    """While inside: starting a process, or connecting or binding a non-loopback socket, raises and is noted."""

    def refuse(what: str) -> NotAUnitTest:
        violations.append(what)
        return NotAUnitTest(f"a unit test {what}; move it to tests/e2e/ (see CONTRIBUTING.md)")

    def no_process(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            raise refuse(f"started a process ({name})")

        return refused

    def loopback_only(original: Callable[..., Any], name: str) -> Callable[..., Any]:
        def checked(sock: socket.socket, address: Any, *args: Any) -> Any:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
                raise refuse(f"called socket.{name}({address!r}), which is not loopback")
            return original(sock, address, *args)

        return checked

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", no_process("subprocess"))
        for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp"):
            if hasattr(os, name):
                patch.setattr(os, name, no_process(f"os.{name}"))
        for name in ("connect", "connect_ex", "bind", "sendto"):
            patch.setattr(socket.socket, name, loopback_only(getattr(socket.socket, name), name))
        yield
