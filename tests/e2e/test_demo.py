"""`atlassian-auth-proxy demo`: a newcomer's first command proves the three promises and cleans up."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.proxy import TOKEN_192, command


def processes_mentioning(text: str) -> list[str]:
    """Processes whose environment mentions `text` (the demo's temp dir is in its proxy's env)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if text.encode() in environ.read_bytes():
                found.append(environ.parent.name)
        except OSError:
            continue
    return found


def run_demo(exe: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the demo as a user who has a real token and a .env: neither may reach the demo's proxy."""
    work, temp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    (work / ".env").write_text("ATLASSIAN_PROXY_EMAIL=real@user.example\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(temp), "ATLASSIAN_PROXY_API_TOKEN": TOKEN_192}
    result = subprocess.run([*exe, "demo"], capture_output=True, text=True, env=env, cwd=work, timeout=90, check=False)
    assert list(temp.iterdir()) == [], "the demo left files behind"
    assert processes_mentioning(str(temp)) == [], "the demo left a process running"
    return result


def check_output(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.rstrip().endswith("3 of 3 checks passed")
    assert "Basic base64(demo@example.com:demo…)" in out  # what the site received, token masked
    assert "(removed)" in out  # the client's cookie
    assert "403 atlassian-auth-proxy: refused to send credentials over plain http" in out
    assert "the site's certificate, verified" in out
    assert "real@user.example" not in out
    assert TOKEN_192 not in out + result.stderr
    assert "demo-token-not-a-real-one" not in out  # even the demo's made-up token is masked


def test_demo_exits_0_showing_what_the_client_sent_and_the_site_received(tmp_path):
    check_output(run_demo(command(), tmp_path))


def test_demo_exits_0_on_a_fresh_install_from_the_wheel(fresh_install, tmp_path):
    check_output(run_demo([str(fresh_install / "atlassian-auth-proxy")], tmp_path))
