"""A real Secret Service for tests: gnome-keyring on a private D-Bus session bus."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PASSWORD = b"throwaway-test-keyring-password"
PROBE = "import keyring, sys; keyring.set_password('readiness-probe', 'probe', 'ok'); sys.exit(0)"


def require_tools() -> None:
    missing = [tool for tool in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(tool) is None]
    if missing:
        message = f"needs {', '.join(missing)} (apt-get install dbus gnome-keyring; .ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def secret_service(home: Path) -> Iterator[dict[str, str]]:
    """Yield the environment variables that make `keyring` use a fresh, unlocked gnome-keyring."""
    require_tools()
    runtime = home / "run"
    runtime.mkdir(mode=0o700, parents=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    daemon = None
    try:
        assert bus.stdout is not None
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
        daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert daemon.stdin is not None
        daemon.stdin.write(PASSWORD)
        daemon.stdin.close()
        env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.SecretService.Keyring"
        wait_until_usable(env)
        yield env
    finally:
        for process in (daemon, bus):
            if process is not None:
                process.terminate()
                process.wait(10)


def wait_until_usable(env: dict[str, str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        probe = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gnome-keyring did not become usable: {probe.stderr[-500:]}")
        time.sleep(0.1)


def keyring_call(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, timeout=30
    )
