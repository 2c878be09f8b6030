"""Requests whose head other HTTP parsers could read differently are refused before any credential is added."""

from __future__ import annotations

from mitmproxy import http

from proxy_addon.addons.replies import refuse
from proxy_addon.policy.refusals import Refusal
from proxy_addon.policy.text import ambiguous_head


class HeadCheck:
    """400 for header bytes mitmproxy would relay ambiguously (NUL, bare CR, obs-fold) next to the credential."""

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is None and ambiguous_head(tuple(flow.request.headers.fields)):
            refuse(flow, Refusal.AMBIGUOUS_HEAD)
