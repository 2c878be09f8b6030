"""`mitmdump -s` script for the plain-mitmdump baseline: the proxy's CONNECT_TO redirect, nothing else.

Plain mitmdump would resolve acme.atlassian.net through DNS. Rather than bind nginx to port
443 and edit /etc/hosts, the baseline loads the very same resolver wrapper the proxy uses
(`proxy_addon.addons.connect_to.ConnectTo`), so both pay the same for the redirect and differ only
by the addon. Rules come from BENCH_CONNECT_TO (same syntax as ATLASSIAN_PROXY_CONNECT_TO);
without rules it refuses to load rather than let traffic reach the real host.
"""

from __future__ import annotations

import os

from proxy_addon.addons.connect_to import ConnectTo
from proxy_addon.policy.connect_rules import ConnectToRule


def rules_from_env() -> tuple[ConnectToRule, ...]:
    text = os.environ.get("BENCH_CONNECT_TO", "")
    rules = tuple(ConnectToRule.parse(item) for item in text.split(",") if item.strip())
    if not rules:
        raise RuntimeError("BENCH_CONNECT_TO is empty: refusing to proxy to real hosts")
    return rules


redirect = ConnectTo()
redirect.rules = rules_from_env()
addons = [redirect]
