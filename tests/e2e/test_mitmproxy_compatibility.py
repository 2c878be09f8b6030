"""An incompatible mitmproxy (one internal hidden): `run` exits 2 with one line, mitmdump refuses at configure."""

from __future__ import annotations

import subprocess
import sys

from mitmproxy import version

from proxy_addon.addons import mitmproxy_internals as internals

from support.proxy import ADDON, proxy_env

HIDE = "import mitmproxy.proxy.layers.http as h; del h.HttpStream.start_request_stream\n"
MISSING = "mitmproxy.proxy.layers.http.HttpStream.start_request_stream is missing"


def test_run_on_an_incompatible_mitmproxy_exits_2_with_one_line_before_it_listens(site, ca_file, tmp_path):
    program = (
        HIDE + "import sys\nfrom proxy_addon.commands.main import main\nsys.exit(main(['run', '--listen-port', '0']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        env=proxy_env(site, ca_file, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"atlassian-auth-proxy: error: mitmproxy {version.VERSION} is not compatible with atlassian-auth-proxy, "
        f"which needs {internals.required_mitmproxy()}: {MISSING}"
    ]
    assert "listening" not in result.stdout


def test_mitmdump_with_the_addon_on_an_incompatible_mitmproxy_refuses_at_configure(site, ca_file, tmp_path):
    """mitmdump's way with a script's OptionsError: it logs it, and its ErrorCheck exits 1 once it has started."""
    argv = ["mitmdump", "-s", str(ADDON), "--listen-host", "127.0.0.1", "--listen-port", "0"]
    program = HIDE + f"import sys\nfrom mitmproxy.tools.main import mitmdump\nsys.argv = {argv!r}\nmitmdump()"
    result = subprocess.run(
        [sys.executable, "-c", program],
        env=proxy_env(site, ca_file, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"mitmproxy {version.VERSION} is not compatible with atlassian-auth-proxy" in output
    assert MISSING in output
