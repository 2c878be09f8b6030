"""The host matcher decides who gets credentials: tested exhaustively, including generated lookalikes."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from proxy_addon.policy.hosts import HostPattern, HostPatternError, normalize_host, split_authority
from proxy_addon.policy.sites import Site, SiteTable


def table(*patterns: str) -> SiteTable:
    return SiteTable.of([Site("test", tuple(HostPattern.parse(p) for p in patterns), "me@example.test")])


def matches(sites: SiteTable, host: str) -> bool:
    """As the verdict asks: the host normalized once, then looked up on the HTTPS port."""
    return sites.lookup(normalize_host(host), 443) is not None


ATLASSIAN = table("*.atlassian.net")
EXACT = table("acme.atlassian.net")

label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12)
any_text = st.text(min_size=0, max_size=40)


@pytest.mark.parametrize(
    "host",
    ["acme.atlassian.net", "ACME.Atlassian.NET", "acme.atlassian.net.", "a.b.atlassian.net", "x-y.atlassian.net"],
)
def test_subdomains_match_the_wildcard(host):
    assert matches(ATLASSIAN, host)


@pytest.mark.parametrize(
    "host",
    [
        "atlassian.net",
        "evilatlassian.net",
        "acme.atlassian.net.example.test",
        "acme.atlassian.net..",
        "acme.atlassian.netx",
        "acme-atlassian.net",
        ".atlassian.net",
        "acme..atlassian.net",
        "acme.atlassian.net:443",
        "acme.atlassian.net/x",
        "acme.atlassian.net\x00.evil.test",
        "acme.atlassian\uff0enet",
        "acme.atlassıan.net",
        "аcme.atlassian.net",
        " acme.atlassian.net",
        "",
        "127.0.0.1",
        "::1",
    ],
)
def test_lookalikes_and_odd_names_never_match(host):
    assert not matches(ATLASSIAN, host)


def test_exact_pattern_matches_only_that_host():
    assert matches(EXACT, "ACME.atlassian.net.")
    assert not matches(EXACT, "other.atlassian.net")
    assert not matches(EXACT, "x.acme.atlassian.net")


@pytest.mark.parametrize(
    "text",
    ["*", "*.", "*foo.net", "a.*.net", "*.*.net", r"atlassian\.net$", ".*", "net", "", "**.atlassian.net", "1.2.3.4"],
)
def test_anything_but_an_exact_name_or_star_dot_domain_is_rejected(text):
    with pytest.raises(HostPatternError):
        HostPattern.parse(text)


@given(prefix=st.lists(label, min_size=1, max_size=3))
def test_every_proper_subdomain_matches(prefix):
    assert matches(ATLASSIAN, ".".join([*prefix, "atlassian", "net"]))


@given(host=any_text)
def test_nothing_outside_the_domain_ever_matches(host):
    name = normalize_host(host)
    assume(name is None or not name.endswith(".atlassian.net"))
    assert not matches(ATLASSIAN, host)


@given(suffix=any_text)
def test_appending_anything_to_a_match_never_keeps_the_match(suffix):
    assume(suffix and not suffix.startswith(".") and suffix != ".")
    candidate = "acme.atlassian.net" + suffix
    name = normalize_host(candidate)
    assume(name is None or not name.endswith(".atlassian.net"))
    assert not matches(ATLASSIAN, candidate)


@given(a=st.lists(label, min_size=2, max_size=4))
def test_normalizing_ignores_case_and_one_trailing_dot(a):
    name = ".".join(a)
    assume(not a[-1].isdigit())
    assert normalize_host(name.upper()) == normalize_host(name + ".") == name


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        ("acme.atlassian.net", ("acme.atlassian.net", None)),
        ("acme.atlassian.net:443", ("acme.atlassian.net", 443)),
        ("acme.atlassian.net:x", ("acme.atlassian.net", -1)),
        ("acme.atlassian.net:", ("acme.atlassian.net", -1)),
        ("[::1]:8443", ("::1", 8443)),
        ("acme.atlassian.net:4430000", ("acme.atlassian.net", -1)),
    ],
)
def test_split_authority(authority, expected):
    assert split_authority(authority) == expected


domain = st.lists(label, min_size=2, max_size=3).filter(lambda labels: not labels[-1].isdigit()).map(".".join)


@given(pattern_domain=domain, wildcard=st.booleans(), host=any_text | domain)
def test_no_generated_host_outside_a_generated_pattern_ever_matches(pattern_domain, wildcard, host):
    pattern = HostPattern.parse(("*." if wildcard else "") + pattern_domain)
    assert str(pattern) == ("*." if wildcard else "") + pattern_domain
    name = normalize_host(host)
    inside = name is not None and (name.endswith("." + pattern_domain) if wildcard else name == pattern_domain)
    assert (name is not None and pattern.matches(name)) is inside


@given(text=st.text(max_size=40))
def test_pattern_parsing_only_ever_raises_host_pattern_error(text):
    try:
        pattern = HostPattern.parse(text)
    except HostPatternError:
        return
    assert normalize_host(pattern.domain) == pattern.domain
    assert HostPattern.parse(str(pattern)) == pattern


@given(authority=st.text(max_size=40))
def test_split_authority_never_raises_and_ports_are_sane(authority):
    _, port = split_authority(authority)
    assert port is None or port == -1 or 0 <= port <= 99999
