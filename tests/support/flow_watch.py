"""A mitmproxy script that looks at every live flow as mitmweb's flow list and export do: on each hook, and on a timer.

Load it after the proxy's addon (`-s addon.py -s flow_watch.py`). Each look serializes the flow
(`flow.get_state()`, what saving and mitmweb use) and checks it for the values named in
FLOW_WATCH_SECRETS (comma-separated); on shutdown it writes what it saw to FLOW_WATCH_OUT as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from mitmproxy import http
from mitmproxy.io import tnetstring

TICK_SECONDS = 0.002


class FlowWatch:
    def __init__(self) -> None:
        self.secrets = [s.encode() for s in os.environ.get("FLOW_WATCH_SECRETS", "").split(",") if s]
        self.flows: dict[str, http.HTTPFlow] = {}
        self.looks = 0
        self.leaks: list[str] = []
        self.authorization: set[str] = set()
        self.timer: asyncio.TimerHandle | None = None

    def running(self) -> None:
        self._tick()

    def _tick(self) -> None:
        self._look_at_all()
        self.timer = asyncio.get_running_loop().call_later(TICK_SECONDS, self._tick)

    def _look_at_all(self, *_: Any) -> None:
        for flow in list(self.flows.values()):
            self._look(flow)

    def _look(self, flow: http.HTTPFlow) -> None:
        self.looks += 1
        blob = tnetstring.dumps(flow.get_state())
        if any(secret in blob for secret in self.secrets):
            self.leaks.append(flow.request.path)
        for name, value in flow.request.headers.fields:
            if name.lower() == b"authorization":
                self.authorization.add(value.decode("latin-1"))

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self.flows[flow.id] = flow
        self._look(flow)

    request = responseheaders = response = error = update = _look_at_all
    server_connect = server_connected = tls_established_server = client_disconnected = _look_at_all

    def done(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self._look_at_all()
        out = {"looks": self.looks, "leaks": self.leaks, "authorization": sorted(self.authorization)}
        with open(os.environ["FLOW_WATCH_OUT"], "w") as f:
            json.dump(out, f)


addons = [FlowWatch()]
