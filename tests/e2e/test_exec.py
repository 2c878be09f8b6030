"""`atlassian-auth-proxy exec -- CMD`: CMD runs through a proxy of its own, which ends with it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from support import corp_proxy
from support.clients import assert_identity
from support.proxy import EMAIL, TOKEN_192, basic, command, proxy_env, site_toml, wait_for
from support.recipes import MCP_AND_EXEC, recipe

MCP_SERVER = Path(__file__).parents[1] / "support" / "mcp_stdio_server.py"


def exec_env(site, ca_file, confdir, **overrides: str) -> dict[str, str]:
    return {k: v for k, v in proxy_env(site, ca_file, confdir, **overrides).items() if not k.lower().endswith("_proxy")}


def run_exec(env: dict[str, str], *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(), "exec", "--", *cmd], env=env, capture_output=True, text=True, timeout=90, check=False
    )


def refuses_connections(proxy_url: str) -> bool:
    address = urlsplit(proxy_url)
    try:
        socket.create_connection((address.hostname, address.port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_exit_code_stdout_and_exports_are_the_commands_own(site, ca_file, confdir):
    env = exec_env(site, ca_file, confdir)
    script = (
        'printf "%s\\n" "$HTTPS_PROXY"; '
        "curl -sS --max-time 20 https://acme.atlassian.net/rest/api/3/myself?via=exec; exit 7"
    )
    result = run_exec(env, "sh", "-c", script)
    assert result.returncode == 7, result.stderr
    proxy_url, body = result.stdout.split("\n", 1)
    assert json.loads(body)["displayName"] == "Test User", "stdout holds the command's output and nothing else"
    assert proxy_url.startswith("http://127.0.0.1:")
    assert "listening on " + proxy_url in result.stderr, "the proxy's log goes to stderr"
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
    assert refuses_connections(proxy_url), "the proxy stopped with the command"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_reach_the_command_and_its_status_comes_back(site, ca_file, confdir, sig):
    env = exec_env(site, ca_file, confdir)
    program = (
        "import os, signal, sys\n"
        "def done(signum, frame):\n"
        "    print('got', signal.Signals(signum).name, flush=True); sys.exit(40 + signum)\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP): signal.signal(s, done)\n"
        "print(os.environ['HTTPS_PROXY'], flush=True)\n"
        "signal.pause()\n"
    )
    process = subprocess.Popen(
        [*command(), "exec", "--", sys.executable, "-c", program],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    proxy_url = process.stdout.readline().strip()
    assert proxy_url.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
    process.send_signal(sig)
    out, _ = process.communicate(timeout=30)
    assert out == f"got {sig.name}\n"
    assert process.returncode == 40 + sig
    wait_for(lambda: refuses_connections(proxy_url), what="the proxy to stop")


def test_a_proxy_that_cannot_start_exits_2_and_never_runs_the_command(site, ca_file, confdir, tmp_path):
    marker = tmp_path / "ran"
    env = exec_env(site, ca_file, confdir, ATLASSIAN_PROXY_LISTEN_HOST="10.0.0.1")
    result = run_exec(env, "touch", str(marker))
    assert result.returncode == 2
    assert not marker.exists()
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    assert "refusing to listen on 10.0.0.1" in errors[0]


def test_a_missing_command_is_exit_127_and_the_proxy_stops(site, ca_file, confdir):
    result = run_exec(exec_env(site, ca_file, confdir), "/nonexistent/server")
    assert result.returncode == 127
    assert "cannot run /nonexistent/server" in result.stderr
    assert "stopped" in result.stderr.splitlines()[-1]


def test_the_exec_recipe_reaches_the_site_with_the_identity(site, ca_file, confdir, tmp_path):
    """docs/how-to/mcp-and-exec.md's `exec` line as written, with the proxy's settings in the environment."""
    env = {**exec_env(site, ca_file, confdir), "PATH": f"{Path(command()[0]).parent}:/usr/bin:/bin"}
    before = len(site.record.requests)
    result = subprocess.run(
        ["sh", "-c", recipe(MCP_AND_EXEC, "exec").command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["displayName"] == "Test User"
    assert_identity(site.record.requests[before:])


def test_exec_listens_on_a_free_port_whatever_the_config_file_says(site, ca_file, confdir, tmp_path):
    """`listen_port` in the config file names a port in use here: `exec` takes a free one (its flag's default)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "port.toml"
        config.write_text(f"listen_port = {port}\n")
        env = exec_env(site, ca_file, confdir, ATLASSIAN_PROXY_CONFIG=str(config))
        result = run_exec(env, "sh", "-c", 'printf %s "$HTTPS_PROXY"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("http://127.0.0.1:")
    assert not result.stdout.endswith(f":{port}")


def test_an_mcp_host_starts_a_stdio_server_through_exec(site, ca_file, confdir):
    """As an MCP host config would: command `atlassian-auth-proxy`, args `exec -- SERVER`, an env block.

    The MCP SDK starts the server with only a few safe variables plus the env block, so the
    shell's exports would never reach it; the server sends no credentials of its own.
    """
    settings = {k: v for k, v in exec_env(site, ca_file, confdir).items() if k.startswith("ATLASSIAN_PROXY_")}
    settings["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    params = StdioServerParameters(
        command=command()[0], args=["exec", "--", sys.executable, str(MCP_SERVER)], env=settings
    )

    async def call() -> str:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            assert [tool.name for tool in tools.tools] == ["myself"]
            result = await session.call_tool("myself", {})
            return result.content[0].text

    assert json.loads(asyncio.run(asyncio.wait_for(call(), 90))) == {"status": 200, "displayName": "Test User"}
    seen = site.record.last()
    assert seen.path == "/rest/api/3/myself?via=mcp-stdio"
    assert [v for k, v in seen.headers if k.lower() == "authorization"] == [basic(EMAIL, TOKEN_192)]


PRINT_ENVIRONMENT = "import os, json; print(json.dumps(dict(os.environ)))"


def environment_and_request(env: dict[str, str], *exec_args: str) -> tuple[dict[str, str], str]:
    """CMD's environment as CMD printed it, and the status of a request CMD made through the proxy."""
    script = (
        f"{sys.executable} -c '{PRINT_ENVIRONMENT}'; "
        "curl -sS -o /dev/null -w '%{http_code}' --max-time 20 https://acme.atlassian.net/rest/api/3/myself"
    )
    result = subprocess.run(
        [*command(), "exec", *exec_args, "--", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    printed, status = result.stdout.rsplit("\n", 1)
    return json.loads(printed), status


def test_the_command_gets_no_token_proxy_login_or_corporate_password(site, ca_file, confdir):
    corp = corp_proxy.start(site.port)
    proxy_login, corp_password = "ci:Pr0xy-login-of-ci-xyz", "corp-Secret-pw"
    try:
        env = exec_env(
            site,
            ca_file,
            confdir,
            ATLASSIAN_PROXY_PROXY_AUTH=proxy_login,
            ATLASSIAN_PROXY_CONNECT_TO="",
        )
        env["ATLASSIAN_PROXY_UPSTREAM_PROXY"] = f"http://corp-user:{corp_password}@127.0.0.1:{corp.port}"
        env["OTEL_EXPORTER_OTLP_HEADERS"] = "api-key=collector-Secret-key"
        env["ATLASSIAN_PROXY_STATE_URL"] = "redis://:store-Secret-pw@127.0.0.1:1/0"
        environment, status = environment_and_request(env)
    finally:
        corp.shutdown()
    assert status == "200", "the proxy itself still had every secret"
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in environment, "a collector's API key is the audit export's secret"
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
    for name in (
        "ATLASSIAN_PROXY_API_TOKEN",
        "ATLASSIAN_PROXY_PROXY_AUTH",
        "ATLASSIAN_PROXY_UPSTREAM_PROXY",
        "ATLASSIAN_PROXY_STATE_URL",
    ):
        assert name not in environment
    printed = json.dumps(environment)
    assert TOKEN_192 not in printed
    assert corp_password not in printed
    assert "store-Secret-pw" not in printed
    assert environment["HTTPS_PROXY"].startswith(f"http://{proxy_login}@127.0.0.1:"), "the one login CMD uses"
    assert environment["ATLASSIAN_PROXY_EMAIL"] == EMAIL, "what is no secret stays"


def test_the_command_gets_only_its_own_clients_login_and_no_sites_token(site, ca_file, confdir, tmp_path):
    passwords = {"agent-a": "agent-a-Pa55word-4e1f", "agent-b": "agent-b-Pa55 w:rd/%", "agent-c": "agent-c-Pa55-file-9"}
    tokens = {"ACME_TOKEN": TOKEN_192, "GLOBEX_TOKEN": "Gl0bexT0kenAb3dE6gH9jK2m"}
    c_file = tmp_path / "agent-c.password"
    c_file.write_text(passwords["agent-c"])
    config = tmp_path / "clients.toml"
    config.write_text(
        site_toml("acme", "acme.atlassian.net", EMAIL, token_env="ACME_TOKEN")
        + site_toml("globex", "globex.atlassian.net", EMAIL, token_env="GLOBEX_TOKEN")
        + '[[clients]]\nname = "agent-a"\npassword_env = "AGENT_A_PASSWORD"\n\n'
        + '[[clients]]\nname = "agent-b"\npassword_env = "AGENT_B_PASSWORD"\nsites = ["acme"]\n\n'
        + f'[[clients]]\nname = "agent-c"\npassword_file = "{c_file}"\n'
    )
    corp = corp_proxy.start(site.port)
    try:
        env = exec_env(
            site,
            ca_file,
            confdir,
            ATLASSIAN_PROXY_EMAIL=None,
            ATLASSIAN_PROXY_API_TOKEN=None,
            ATLASSIAN_PROXY_CONFIG=str(config),
            ATLASSIAN_PROXY_CONNECT_TO="",
            AGENT_A_PASSWORD=passwords["agent-a"],
            AGENT_B_PASSWORD=passwords["agent-b"],
            **tokens,
        )
        env["ATLASSIAN_PROXY_UPSTREAM_PROXY"] = f"http://corp-user:corp-Secret-pw@127.0.0.1:{corp.port}"
        environment, status = environment_and_request(env, "--client", "agent-b")
    finally:
        corp.shutdown()
    assert status == "200"
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
    printed = json.dumps(environment)
    for secret in (*tokens.values(), passwords["agent-a"], passwords["agent-c"], "corp-Secret-pw"):
        assert secret not in printed
    for name in (
        "ACME_TOKEN",
        "GLOBEX_TOKEN",
        "AGENT_A_PASSWORD",
        "AGENT_B_PASSWORD",
        "ATLASSIAN_PROXY_UPSTREAM_PROXY",
    ):
        assert name not in environment
    assert environment["HTTPS_PROXY"].startswith(f"http://agent-b:{quote(passwords['agent-b'], safe='')}@")
    assert environment["ATLASSIAN_PROXY_CONFIG"] == str(config)


# Red team #5: the command's parent and sibling keep no secret where the command can read it.

FAMILY = """
import os
me, parent = os.getpid(), os.getppid()
def children_of(pid):
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rpartition(")")[2].split()[1]) == pid:
                        yield int(entry)
            except OSError:
                pass
proxy = next(children_of(parent))
"""
SIGHUP_COMMAND = (
    FAMILY
    + """
import signal, subprocess, sys
print(proxy, flush=True)
sys.stdin.readline()
url = "https://acme.atlassian.net/rest/api/3/myself"
status = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", url],
                        capture_output=True, text=True).stdout
print(status, flush=True)
"""
)


def test_the_proxy_reads_the_secrets_exec_handed_it_again_on_sighup(site, ca_file, confdir, tmp_path):
    """A `token_env` token is read again on SIGHUP, from the environment the proxy was handed by pipe."""
    config = tmp_path / "sites.toml"
    config.write_text(site_toml("acme", "acme.atlassian.net", EMAIL, token_env="ACME_TOKEN"))
    env = exec_env(site, ca_file, confdir, ATLASSIAN_PROXY_API_TOKEN=None, ATLASSIAN_PROXY_EMAIL=None)
    env.update(ATLASSIAN_PROXY_CONFIG=str(config), ACME_TOKEN=TOKEN_192)
    process = subprocess.Popen(
        [*command(), "exec", "--", sys.executable, "-c", SIGHUP_COMMAND],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(iter(process.stderr.readline, "")), daemon=True).start()
    proxy = int(process.stdout.readline())
    os.kill(proxy, signal.SIGHUP)
    wait_for(lambda: any("SIGHUP: reading every token again" in line for line in log), what="the reload")
    process.stdin.write("go\n")
    process.stdin.flush()
    assert process.stdout.readline().strip() == "200"
    assert process.wait(30) == 0
    output = "".join(log)
    assert "keeping the previous token" not in output, output
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)


UNDUMPABLE_READER = (
    FAMILY
    + """
def readable(pid, what):
    try:
        with open(f"/proc/{pid}/{what}", "rb"):
            return True
    except PermissionError:
        return False
sleeper = __import__("subprocess").Popen(["sleep", "30"])
print("control", readable(sleeper.pid, "mem"))
sleeper.kill()
for name, pid in (("exec", parent), ("proxy", proxy)):
    print(name, readable(pid, "mem"), readable(pid, "environ"))
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("setpriv") is None, reason="Linux setpriv")
def test_exec_and_its_proxy_are_undumpable_so_a_command_of_the_same_user_cannot_read_their_memory(
    site, ca_file, confdir
):
    """Run as root without capabilities (root is an ordinary user for ptrace then): the command opens a dumpable
    process's `/proc/PID/mem` of the same user (its own child), and neither exec's nor the proxy's."""
    env = exec_env(site, ca_file, confdir)
    without_capabilities = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
    result = subprocess.run(
        [*without_capabilities, *command(), "exec", "--", sys.executable, "-c", UNDUMPABLE_READER],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["control True", "exec False False", "proxy False False"]
