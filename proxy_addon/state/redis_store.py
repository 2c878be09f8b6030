"""The shared store on a Redis or Valkey server (`ATLASSIAN_PROXY_STATE_URL`), through the `redis` client library.

Imported only when a state URL is set, so the embedded default needs neither the library nor a server.

- Events go over one pub/sub channel per database: each process subscribes once and applies what the others
  publish to its own state, so a hold or a pause reaches every process within milliseconds and no
  request asks the store whether it is held.
- What must outlive a message (holds, pauses: for processes that connect later) is kept in keys
  that expire by themselves (the TTL is the hold or pause left), under `atlassian-auth-proxy:`;
  their names are digests, never a path, an issue key or a secret.
- A client's `requests_per_minute` window is a sorted set, counted and trimmed by one script on
  the server's clock; the confirmation of a 401 takes a lock with a TTL (`SET NX PX`) and leaves
  its verdict for a few seconds for the processes that waited.

Every command is bounded (`COMMAND_SECONDS`). A failure marks the store down: one warning naming
the server without its password, every call answers as `Store` does (this process alone), and a
background loop reconnects (one line when it is back, then what each side learned meanwhile is
exchanged). No request fails, and none waits longer than one bounded command, because of the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy_addon.settings.state_url import StateUrl
from proxy_addon.state.store import Event, Shared, Store, Verdict

logger = logging.getLogger(__name__)

PREFIX = "atlassian-auth-proxy:"
CHANNEL = PREFIX + "events:{db}"
"""The events of one database: a server's channels are not per database, and processes on another one
(another deployment, another token) must hear nothing of these."""
COMMAND_SECONDS = 0.25
"""The longest one command may take; past it the store counts as down."""
CONNECT_SECONDS = 1.0
RECONNECT_SECONDS = (0.5, 5.0)
"""The first wait before trying an unreachable store again, and the longest (doubling in between)."""
VERDICT_SECONDS = 5.0
"""How long a confirmation's verdict stays for the processes that waited for it."""
WAIT_STEP = 0.05
SCAN_COUNT = 1000
"""Keys one SCAN page looks at: a page of a large database takes about a millisecond on the server."""
WINDOW_MS = 60_000
STRIKES_KEPT_MS = 600_000
UNHINTED_MS = (5_000, 60_000)

HOLD = """
local pttl = redis.call('PTTL', KEYS[1])
local strikes = tonumber(redis.call('GET', KEYS[2]) or '0')
local ms = tonumber(ARGV[2])
if ms < 0 then
  if pttl > 0 then return {pttl, strikes} end
  strikes = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
  ms = math.min(tonumber(ARGV[3]) * 2 ^ (strikes - 1), tonumber(ARGV[4]))
end
if pttl >= ms then return {pttl, strikes} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ms)
return {ms, strikes}
"""
"""Start or lengthen a hold: a hint's length, or a hint-less 429's doubling (not while a hold lasts)."""

ADMIT = """
local limit, count, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if count > limit then return window end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local over = redis.call('ZCARD', KEYS[1]) + count - limit
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], over - 1, over - 1, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait > 0 then return wait end
end
for i = 1, count do redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i) end
redis.call('PEXPIRE', KEYS[1], window)
return -1
"""
"""A sliding window of a minute on the server's clock: admitted requests are counted, refused ones not."""

UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Failure = (RedisError, OSError, TimeoutError, ValueError)


def failure_kind(error: BaseException) -> str:
    """What went wrong, in words that never quote the server's message (nor anything of the URL)."""
    if isinstance(error, AuthenticationError):
        return "the password or user was refused"
    if isinstance(error, NoPermissionError):
        return "its user may not run a command the proxy needs: allow scripts, pub/sub, atlassian-auth-proxy:*"
    if isinstance(error, ResponseError):
        return f"it refused a command of the proxy's ({type(error).__name__}; scripts off? out of memory?)"
    cause = error.__cause__ or error.__context__
    for seen in (error, cause):
        if isinstance(seen, TimeoutError | asyncio.TimeoutError | RedisTimeoutError):
            return "no answer in time"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
    for seen in (cause, error):
        if isinstance(seen, OSError) and seen.errno and seen.errno > 0:
            return os.strerror(seen.errno).lower()  # asyncio's own text quotes the address: "Connect call failed (...)"
        if isinstance(seen, socket.gaierror) and seen.strerror:
            return seen.strerror.lower()
    return type(error).__name__


def client_of(url: StateUrl) -> aioredis.Redis:
    """A client for `url` whose every command fails fast instead of retrying: the caller decides what then."""
    common: dict[str, Any] = {
        "db": url.db,
        "username": url.user,
        "password": url.password.get_secret_value() if url.password else None,
        "socket_timeout": COMMAND_SECONDS,
        "socket_connect_timeout": CONNECT_SECONDS,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": True,
        "client_name": "atlassian-auth-proxy",
    }
    if url.scheme == "unix":
        return aioredis.Redis(unix_socket_path=url.path, **common)
    if url.scheme == "rediss":
        return aioredis.Redis(host=url.host, port=url.port, ssl=True, ssl_cert_reqs=ssl.CERT_REQUIRED, **common)
    return aioredis.Redis(host=url.host, port=url.port, **common)


class RedisStore:
    """Shares state through a Redis or Valkey server (a `store.Remote`); `up` says whether it can be reached."""

    def __init__(self, url: StateUrl) -> None:
        self.url = url
        self.where = url.where
        self.channel = CHANNEL.format(db=url.db)
        self.origin = uuid.uuid4().hex
        """Who published an event: a process ignores its own."""
        self.up = False
        self._client: aioredis.Redis | None = None
        self._runner: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._warned = False
        self._quiet = False
        """The last connection was lost while exchanging what each side learned: the next says nothing until one
        outlives that exchange (a store that fails each time logs one warning and one "back", not two per try)."""
        self._lost = asyncio.Event()
        self._sequence = 0
        self._scripts: dict[str, Any] = {}
        self._store = Store()

    async def start(self, store: Store) -> None:
        self._store = store
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self.up = False
        tasks = [task for task in (runner, *self._background) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, *Failure):
                await task
        if self._client is not None:
            with contextlib.suppress(*Failure):
                await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        """Connect, subscribe, exchange what each side learned, then apply events until the store is lost;
        again and again, waiting longer between tries (up to `RECONNECT_SECONDS[1]`) while it stays away."""
        wait = RECONNECT_SECONDS[0]
        while True:
            client = client_of(self.url)
            pubsub = client.pubsub()
            try:
                async with asyncio.timeout(CONNECT_SECONDS + COMMAND_SECONDS):
                    await client.ping()
                    for text in SCRIPTS.values():  # a user (ACL) or server without scripts fails here, not per request
                        await client.script_load(text)
                    await pubsub.subscribe(self.channel)
                self._client = client
                self._scripts = {name: client.register_script(text) for name, text in SCRIPTS.items()}
                self._lost.clear()
                self.up = True
                announced = not self._quiet
                if announced:
                    self._came_up()
                await self._store.connected()
                if self._lost.is_set():  # lost while exchanging: the next connects say nothing until one holds
                    self._quiet = True
                else:
                    if not announced:
                        self._came_up()
                    self._quiet = False
                    wait = RECONNECT_SECONDS[0]
                while not self._lost.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                    if message is not None:
                        self._received(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Failure as e:
                self._went_down(e)
            finally:
                self._client = None
                with contextlib.suppress(*Failure):
                    await pubsub.aclose()
                with contextlib.suppress(*Failure):
                    await client.aclose()
            await asyncio.sleep(wait)
            wait = min(wait * 2, RECONNECT_SECONDS[1])

    def _came_up(self) -> None:
        self.up = True
        if self._warned:
            logger.info("state store %s is back: holds, pauses and client windows are shared again", self.where)
        else:
            logger.info("sharing holds, pauses and client windows through the state store %s", self.where)
        self._warned = False

    def _went_down(self, error: BaseException) -> None:
        self.up = False
        self._lost.set()
        if not self._warned:
            self._warned = True
            logger.warning(
                "state store %s cannot be reached (%s): this process goes on with its own holds, pauses and client "
                "windows until it is back",
                self.where,
                failure_kind(error),
            )

    def _received(self, data: object) -> None:
        if not isinstance(data, str):
            return
        try:
            event = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to be one of ours
            return
        if not isinstance(event, dict) or event.get("origin") == self.origin or not isinstance(event.get("kind"), str):
            return
        self._store.deliver(event["kind"], event)

    async def _call[T](self, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        """Run one bounded command; None (and the store marked down) when it fails."""
        client = self._client
        if not self.up or client is None:
            return None
        try:
            async with asyncio.timeout(COMMAND_SECONDS):
                return await command(client)
        except Failure as e:
            self._went_down(e)
            return None

    def _soon(self, command: Callable[[aioredis.Redis], Awaitable[Any]]) -> None:
        if not self.up:
            return
        task = asyncio.get_running_loop().create_task(self._call(command))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _message(self, kind: str, event: Event) -> str:
        return json.dumps({**event, "kind": kind, "origin": self.origin})

    def publish(self, kind: str, event: Event) -> None:
        message = self._message(kind, event)
        self._soon(lambda client: client.publish(self.channel, message))

    async def hold(self, name: str, event: Event, seconds: float, hint: bool) -> Shared | None:
        ms = max(1, math.ceil(seconds * 1000)) if hint else -1
        stored = json.dumps(event)
        script = self._scripts.get("hold")
        if script is None:
            return None
        keys = [f"{PREFIX}hold:{name}", f"{PREFIX}strikes:{name}"]
        args = [stored, ms, UNHINTED_MS[0], UNHINTED_MS[1], STRIKES_KEPT_MS]
        result = await self._call(lambda client: script(keys=keys, args=args, client=client))
        if not isinstance(result, list) or len(result) != 2:
            return None
        shared = Shared(int(result[0]) / 1000, int(result[1]))
        message = self._message("hold", {**event, "name": name, "ms": int(result[0]), "strikes": shared.strikes})
        await self._call(lambda client: client.publish(self.channel, message))
        return shared

    def calm(self, names: list[str]) -> None:
        keys = [f"{PREFIX}strikes:{name}" for name in names]
        message = self._message("calm", {"names": names})

        async def both(client: aioredis.Redis) -> None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.delete(*keys)
                pipe.publish(self.channel, message)
                await pipe.execute()

        self._soon(both)

    def keep(self, kind: str, name: str, event: Event, seconds: float) -> None:
        key, stored = f"{PREFIX}{kind}:{name}", json.dumps(event)
        message = self._message(kind, {**event, "ms": max(1, math.ceil(seconds * 1000))})

        async def both(client: aioredis.Redis) -> None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(key, stored, px=max(1, math.ceil(seconds * 1000)))
                pipe.publish(self.channel, message)
                await pipe.execute()

        self._soon(both)

    def forget(self, kind: str, name: str, event: Event) -> None:
        key, message = f"{PREFIX}{kind}:{name}", self._message(f"{kind}-over", event)

        async def both(client: aioredis.Redis) -> None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.delete(key)
                pipe.publish(self.channel, message)
                await pipe.execute()

        self._soon(both)

    async def kept(self, kind: str) -> list[tuple[Event, float]]:
        """Every `kind` key's event and seconds left. SCAN walks the whole database, the proxy's keys or not, so
        each page is one bounded command: a database of many keys takes more pages, never one command longer
        than `COMMAND_SECONDS` (which would count the store as down on every connect)."""
        match = f"{PREFIX}{kind}:*"
        found: list[tuple[Event, float]] = []
        cursor = 0
        while True:
            page = await self._call(partial(_scan, cursor=cursor, match=match))
            if page is None:
                return found
            cursor, keys = int(page[0]), list(page[1])
            if keys:
                found += await self._call(partial(_read, keys=keys)) or []
            if cursor == 0:
                return found

    async def admit(self, client: str, limit: int, count: int) -> tuple[bool, int | None]:
        script = self._scripts.get("admit")
        if script is None:
            return False, None
        self._sequence += 1
        member = f"{self.origin}:{self._sequence}"
        key = f"{PREFIX}window:{client}"
        result = await self._call(
            lambda redis: script(keys=[key], args=[limit, count, WINDOW_MS, member], client=redis)
        )
        if result is None:
            return False, None
        wait_ms = int(result)
        return True, None if wait_ms < 0 else max(1, math.ceil(wait_ms / 1000))

    async def once(self, name: str, work: Callable[[], Awaitable[Verdict]], timeout: float) -> Verdict:
        """One process works out the verdict (the lock's holder); the others wait for it, at most `timeout`.
        A holder that died leaves the lock to its TTL; a store that is down leaves each process to itself."""
        lock, verdict_key = f"{PREFIX}lock:{name}", f"{PREFIX}verdict:{name}"
        token = f"{self.origin}:{os.getpid()}"
        deadline = asyncio.get_running_loop().time() + timeout
        lock_ms = max(1, math.ceil(timeout * 1000))
        while self.up:
            found = await self._call(lambda client: client.get(verdict_key))
            if isinstance(found, str):
                with contextlib.suppress(ValueError):
                    verdict = json.loads(found)
                    if isinstance(verdict, dict):
                        return {str(k): str(v) for k, v in verdict.items()}
            taken = await self._call(lambda client: client.set(lock, token, nx=True, px=lock_ms))
            if taken:
                return await self._as_holder(lock, token, verdict_key, work)
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(WAIT_STEP)
        return await work()

    async def _as_holder(
        self, lock: str, token: str, verdict_key: str, work: Callable[[], Awaitable[Verdict]]
    ) -> Verdict:
        """Holding the lock: work the verdict out, leave it for the waiters, then let the lock go."""
        try:
            verdict = await work()
            text = json.dumps(verdict)
            await self._call(lambda client: client.set(verdict_key, text, px=int(VERDICT_SECONDS * 1000)))
            return verdict
        finally:
            unlock = self._scripts.get("unlock")
            if unlock is not None:
                await self._call(lambda client: unlock(keys=[lock], args=[token], client=client))


async def _scan(client: aioredis.Redis, cursor: int, match: str) -> Any:
    return await client.scan(cursor, match=match, count=SCAN_COUNT)


async def _read(client: aioredis.Redis, keys: list[Any]) -> list[tuple[Event, float]]:
    """The events under `keys` with the seconds each has left, in one round trip; a malformed one is skipped."""
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.get(key)
            pipe.pttl(key)
        answers = await pipe.execute()
    found = []
    for value, pttl in zip(answers[::2], answers[1::2], strict=True):
        with contextlib.suppress(ValueError, TypeError, RecursionError):
            event = json.loads(value)
            if isinstance(event, dict) and int(pttl) > 0:
                found.append((event, int(pttl) / 1000))
    return found


SCRIPTS = {"hold": HOLD, "admit": ADMIT, "unlock": UNLOCK}
