"""The Redis store without a server: failures in words that quote nothing, a client that fails fast, and a
store that cannot be reached leaves the process alone after one warning. (With a real server:
tests/e2e/test_shared_state.py.)"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

from redis.exceptions import AuthenticationError, ConnectionError, NoPermissionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy_addon.settings.state_url import StateUrl
from proxy_addon.state.redis_store import RedisStore, client_of, failure_kind
from proxy_addon.state.store import Store

PASSWORD = "s3cret-store-pa55"


def test_failures_are_told_in_words_that_quote_neither_the_server_nor_the_url():
    assert failure_kind(AuthenticationError(f"WRONGPASS {PASSWORD}")) == "the password or user was refused"
    assert failure_kind(TimeoutError()) == "no answer in time"
    assert failure_kind(ConnectionRefusedError(111, "Connection refused")) == "connection refused"
    wrapped = ConnectionError(f"Error 111 connecting to redis://:{PASSWORD}@h")
    wrapped.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert failure_kind(wrapped) == "connection refused"
    assert failure_kind(ConnectionError(f"redis://:{PASSWORD}@h")) == "ConnectionError"


def test_failures_as_the_client_library_raises_them_are_told_in_plain_words():
    """What redis-py and asyncio really raise: the library's own TimeoutError, asyncio's text with the address."""
    refused = ConnectionError("network:ConnectionError")
    refused.__cause__ = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 6390)")
    assert failure_kind(refused) == "connection refused"
    assert failure_kind(RedisTimeoutError("Timeout connecting to server")) == "no answer in time"
    missing = ConnectionError("unix socket")
    missing.__cause__ = FileNotFoundError(errno.ENOENT, "No such file or directory: /run/redis.sock")
    assert failure_kind(missing) == "no such file or directory"
    unknown = ConnectionError("dns")
    unknown.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert failure_kind(unknown) == "name or service not known"
    denied = failure_kind(NoPermissionError(f"NOPERM this user has no permissions to run the 'evalsha' {PASSWORD}"))
    assert denied.startswith("its user may not run a command the proxy needs")
    assert PASSWORD not in denied


def test_the_client_never_retries_and_carries_the_password_only_to_the_server():
    client = client_of(StateUrl.parse(f"redis://:{PASSWORD}@127.0.0.1:6390/3"))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("127.0.0.1", 6390, 3, PASSWORD)
    assert kwargs["socket_timeout"] <= 0.25
    assert client.get_retry().get_retries() == 0
    assert PASSWORD not in repr(client)
    unix = client_of(StateUrl.parse("unix:///run/redis.sock?db=2")).connection_pool.connection_kwargs
    assert (unix["path"], unix["db"]) == ("/run/redis.sock", 2)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_store_warns_once_without_its_password_and_leaves_the_process_alone(caplog):
    remote = RedisStore(StateUrl.parse(f"redis://:{PASSWORD}@127.0.0.1:{closed_port()}/0"))
    store = Store()

    async def scenario() -> tuple:
        await store.use(remote)
        await store.start()
        await asyncio.sleep(1.2)  # the first try and a retry 0.5 s later
        answers = (store.sharing, await store.admit("agent", 4, 1), await store.hold("n", {}, 5.0, True))
        await store.stop()
        return answers

    with caplog.at_level(logging.INFO):
        assert asyncio.run(scenario()) == (False, (False, None), None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"state store redis://127.0.0.1:{remote.url.port}/0 cannot be reached (")
    assert PASSWORD not in caplog.text
