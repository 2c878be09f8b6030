"""What proxy processes share: rate-limit holds, token pauses, one confirmation of a 401, clients' windows.

Without `ATLASSIAN_PROXY_STATE_URL` each process keeps all of it in memory (`store.Store`, the
default: nothing to run beside the proxy); with it, a Redis or Valkey server (`redis_store`)
carries it between processes, and a process that cannot reach it goes on with its own state.
"""
