"""Site layouts: a site's path placed in the canonical (Cloud) form the route table is written in."""

from __future__ import annotations

import pytest

from proxy_addon.policy.layouts import (
    CLOUD,
    ON_GATEWAY,
    UNKNOWN,
    Placed,
    Prefixes,
    Product,
    declared,
    layout_of,
)

J, C = Product.JIRA, Product.CONFLUENCE
DC_WIKI = declared(C, "/")
DC_JIRA = declared(J, "/jira/")


@pytest.mark.parametrize(
    ("layout", "route", "placed"),
    [
        (CLOUD, "/rest/api/3/issue/OPS-1", Placed(J, "/rest/api/3/issue/OPS-1", "")),
        (CLOUD, "/wiki/rest/api/content/1", Placed(C, "/wiki/rest/api/content/1", "/wiki")),
        (CLOUD, "/WIKI/rest/api/content/1", Placed(C, "/wiki/rest/api/content/1", "/wiki")),
        (CLOUD, "/wiki", Placed(C, "/wiki", "/wiki")),
        (CLOUD, "/wikifoo/x", Placed(J, "/wikifoo/x", "")),
        (CLOUD, "/graphql", Placed(J, "/graphql", "")),
        (ON_GATEWAY, "/ex/jira/c0ffee/rest/api/3/myself", Placed(J, "/rest/api/3/myself", "/ex/jira/c0ffee")),
        (
            ON_GATEWAY,
            "/ex/confluence/c0ffee/wiki/rest/api/content/1",
            Placed(C, "/wiki/rest/api/content/1", "/ex/confluence/c0ffee/wiki"),
        ),
        (
            ON_GATEWAY,
            "/ex/confluence/c0ffee/rest/api/content/1",
            Placed(C, "/wiki/rest/api/content/1", "/ex/confluence/c0ffee"),
        ),
        (ON_GATEWAY, "/ex/bitbucket/c0ffee/2.0/user", None),
        (ON_GATEWAY, "/ex/jira/not-hex!/rest/api/3/myself", None),
        (ON_GATEWAY, "/rest/api/3/myself", None),
        (DC_WIKI, "/rest/api/content/1", Placed(C, "/wiki/rest/api/content/1", "")),
        (DC_WIKI, "/rest/api/space/HR", Placed(C, "/wiki/rest/api/space/HR", "")),
        (DC_WIKI, "/wiki/rest/api/content/1", Placed(C, "/wiki/wiki/rest/api/content/1", "")),
        (DC_JIRA, "/jira/rest/api/2/issue/OPS-1", Placed(J, "/rest/api/2/issue/OPS-1", "/jira")),
        (DC_JIRA, "/JIRA/rest/api/2/issue/OPS-1", Placed(J, "/rest/api/2/issue/OPS-1", "/jira")),
        (DC_JIRA, "/jira", Placed(J, "/", "/jira")),
        (DC_JIRA, "/jiranot/rest/api/2/myself", None),
        (DC_JIRA, "/rest/api/2/myself", None),
        (UNKNOWN, "/rest/api/2/myself", None),
        (UNKNOWN, "/wiki/rest/api/content/1", None),
    ],
)
def test_a_path_is_placed_by_the_sites_layout(layout, route, placed):
    assert layout.place(route) == placed


def test_the_host_decides_before_the_site():
    assert layout_of("api.atlassian.com", None) is ON_GATEWAY
    assert layout_of("acme.atlassian.net", DC_WIKI) is CLOUD, "a Cloud host keeps Cloud's layout"
    assert layout_of("confluence.corp.example", DC_WIKI) is DC_WIKI
    assert layout_of("confluence.corp.example", None) is UNKNOWN
    assert layout_of("evilatlassian.net", None) is UNKNOWN
    assert layout_of(None, None) is UNKNOWN


def test_only_a_declared_or_cloud_layout_is_known():
    assert all(layout.known for layout in (CLOUD, ON_GATEWAY, DC_JIRA))
    assert not UNKNOWN.known
    assert Prefixes(jira="/jira", data_center=True) == DC_JIRA
    assert declared(J, "/") == Prefixes(jira="", data_center=True)
    assert str(DC_JIRA) == "Jira at /jira"
    assert str(CLOUD) == "Jira at /, Confluence at /wiki"
