"""The expiry hook on its own: the daily warning repeats, the gauge follows the sites, /healthz's reason."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from prometheus_client import CollectorRegistry

from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.token_expiry import TokenExpiry
from proxy_addon.policy.expiry import expiry_problem
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.sites import Site

from support.prepared import resolved

DAY = dt.date(2027, 3, 15)
MIDNIGHT = dt.datetime(2027, 3, 15, tzinfo=dt.UTC).timestamp()


def sites(expires: dt.date | None) -> Prepared:
    patterns = (HostPattern.parse("acme.atlassian.net"),)
    sites = [Site("acme", patterns, "me@acme.example", token_expires=expires), Site("globex", patterns, "x")]
    return Prepared(resolved=tuple(resolved(site, "tok3n-for-hook-tests") for site in sites))


def test_warns_only_within_14_days_and_names_site_and_date(caplog):
    expiry = TokenExpiry(CollectorRegistry())
    expiry.use(sites(DAY))
    with caplog.at_level(logging.WARNING):
        expiry.warn(MIDNIGHT - 15 * 86400)
        assert not caplog.records
        expiry.warn(MIDNIGHT - 14 * 86400)
    assert "site acme expires on 2027-03-15 (in 14 days)" in caplog.text
    assert "globex" not in caplog.text


def test_gauge_and_reason_follow_the_sites():
    registry = CollectorRegistry()
    expiry = TokenExpiry(registry)
    expiry.use(sites(DAY))
    assert registry.get_sample_value("atlassian_proxy_token_expiry_timestamp_seconds", {"site": "acme"}) == MIDNIGHT
    assert registry.get_sample_value("atlassian_proxy_token_expiry_timestamp_seconds", {"site": "globex"}) is None
    assert expiry_problem(expiry.dates, MIDNIGHT - 1) is None
    assert "site acme expired on 2027-03-15" in (expiry_problem(expiry.dates, MIDNIGHT) or "")
    expiry.use(sites(None))
    assert registry.get_sample_value("atlassian_proxy_token_expiry_timestamp_seconds", {"site": "acme"}) is None
    assert expiry_problem(expiry.dates, MIDNIGHT) is None


def test_the_warning_repeats_on_its_timer(caplog):
    async def two_rounds() -> None:
        expiry = TokenExpiry(CollectorRegistry(), interval=0.01)
        expiry.use(sites(dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)))
        expiry.running()
        while caplog.text.count("expires on") < 2:
            await asyncio.sleep(0.005)
        expiry.done()

    with caplog.at_level(logging.WARNING):
        asyncio.run(asyncio.wait_for(two_rounds(), 10))
    assert "(in 1 day)" in caplog.text
