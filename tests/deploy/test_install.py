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
