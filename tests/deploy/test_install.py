"""The README's other install path: `pipx install .` gives a working `atlassian-auth-proxy`."""

from __future__ import annotations

import subprocess
import sys

from support.proxy import REPO, base_image_python


def test_pipx_install_from_the_checkout_gives_a_working_command(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    install = subprocess.run(
        [sys.executable, "-m", "pipx", "install", "--python", base_image_python(), str(REPO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    exe = tmp_path / "bin" / "atlassian-auth-proxy"
    result = subprocess.run(
        [str(exe), "env", "--listen-port", "8123"],
        env={**env, "ATLASSIAN_PROXY_CONFDIR": str(tmp_path / "conf")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "export HTTPS_PROXY=http://127.0.0.1:8123" in result.stdout


def test_a_plain_install_runs_without_redis_and_a_state_url_names_the_extra_it_needs(fresh_install, tmp_path):
    """`pip install .` alone: the proxy never imports the Redis client; asking for a store says what to install."""
    python = fresh_install / "python"
    imported = subprocess.run(
        [str(python), "-c", "import sys, proxy_addon.runtime.root; print('redis' in sys.modules)"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert imported.stdout.strip() == "False", imported.stderr
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ATLASSIAN_PROXY_API_TOKEN": "Ab3dE6gH9jK2mN5pQ8sT1vWx",
        "ATLASSIAN_PROXY_EMAIL": "me@acme.example",
        "ATLASSIAN_PROXY_STATE_URL": "redis://:st0re-pa55@127.0.0.1:6379/0",
    }
    result = subprocess.run(
        [str(fresh_install / "atlassian-auth-proxy"), "run", "--listen-port", "0"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "atlassian-auth-proxy: error: ATLASSIAN_PROXY_STATE_URL: needs the Redis client library, which is not "
        "installed: pip install 'atlassian-auth-proxy[redis]'\n"
    )
