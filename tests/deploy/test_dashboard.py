"""examples/grafana-dashboard.json: a Grafana dashboard that queries only what the proxy really exports.

Every PromQL expression in it is parsed (`support/promql.py`), and each series and label it reads
is checked against the `/metrics` of a running proxy after a few requests of each kind, not
against a list kept by hand: a metric renamed or a label dropped breaks this test, not the
operators' dashboards.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.adminclient import admin_port, get
from support.clients import curl
from support.promql import grafana_expr as expr_of
from support.promql import parse
from support.proxy import TOKEN_24, basic, wait_for

DASHBOARD = Path(__file__).parents[2] / "examples" / "grafana-dashboard.json"
EMAIL = "dashboard@acme.example"  # its own account: the rejection below pauses no other test's token
MYSELF = "https://acme.atlassian.net/rest/api/3/myself"
LABEL_VALUES = re.compile(r"label_values\((\w+),\s*(\w+)\)")
ISSUE_23_ROWS = {
    "Rate-limit holds": {"atlassian_proxy_rate_limit_holds_total", "atlassian_proxy_rate_limit_held"},
    "In flight and queue": {"atlassian_proxy_in_flight", "atlassian_proxy_queued"},
}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def every_panel(panels: list[dict]) -> list[dict]:
    """Panels, with those inside collapsed rows."""
    return [p for panel in panels for p in (panel, *every_panel(panel.get("panels", [])))]


def expressions() -> list[str]:
    return [target["expr"] for panel in every_panel(dashboard()["panels"]) for target in panel.get("targets", [])]


@pytest.fixture(scope="module")
def exported(site, ca_file, confdir):
    """{series name: its label names} from the /metrics of a proxy that saw a request of each kind."""
    from support.proxy import proxy_env, start_proxy

    env = proxy_env(
        site, ca_file, confdir,
        ATLASSIAN_PROXY_EMAIL=EMAIL, ATLASSIAN_PROXY_API_TOKEN=TOKEN_24, ATLASSIAN_PROXY_ADMIN_PORT="0",
        ATLASSIAN_PROXY_TOKEN_EXPIRES="2031-01-31", ATLASSIAN_PROXY_PROXY_AUTH="dash:Pr0xy-pa55word-dash-4c1e",
    )  # fmt: skip
    proxy = start_proxy(env)
    login = ("--proxy-user", "dash:Pr0xy-pa55word-dash-4c1e")
    try:
        assert curl(proxy.url, MYSELF, proxy.ca_file, *login).returncode == 0
        assert curl(proxy.url, "http://acme.atlassian.net/cleartext", proxy.ca_file, *login).returncode == 0
        site.record.rejected.add(basic(EMAIL, TOKEN_24))
        try:
            assert curl(proxy.url, MYSELF, proxy.ca_file, *login).returncode == 0
            port = admin_port(proxy.output)
            wait_for(lambda: "atlassian_proxy_upstream_auth_failures_total{" in get(port, "/metrics")[2])
        finally:
            site.record.rejected.discard(basic(EMAIL, TOKEN_24))
        text = get(port, "/metrics")[2]
    finally:
        proxy.stop()
    series: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[sample.name] |= set(sample.labels)
    return dict(series)


def test_the_proxy_exports_every_family_the_dashboard_covers(exported):
    """The fixture saw a sample of each, so their labels are known from real output."""
    for name in (
        "atlassian_proxy_requests_total",
        "atlassian_proxy_upstream_auth_failures_total",
        "atlassian_proxy_request_duration_seconds_bucket",
        "atlassian_proxy_token_expiry_timestamp_seconds",
        "atlassian_proxy_audit_export_dropped_total",
        "atlassian_proxy_rate_limit_holds_total",
        "atlassian_proxy_rate_limit_held",
        "atlassian_proxy_in_flight",
        "atlassian_proxy_queued",
    ):
        assert name in exported


@pytest.mark.parametrize("expr", expressions())
def test_each_query_reads_only_series_and_labels_the_proxy_exports(expr, exported):
    tree = parse(expr_of(expr))
    assert tree.selectors, f"{expr} reads no series"
    for selector in tree.selectors:
        assert selector.metric in exported, f"{selector.metric} is not exported (in {expr})"
        unknown = set(selector.labels) - exported[selector.metric] - {"__name__"}
        assert not unknown, f"{selector.metric} has no label {unknown} (in {expr})"
    for labels, selectors in tree.groupings:
        known = set().union(*(exported[s.metric] for s in selectors if s.metric))
        assert set(labels) <= known, f"grouping by {set(labels) - known}, which none of its series has (in {expr})"


def test_the_variables_list_values_of_exported_labels_and_the_datasource_is_a_variable(exported):
    variables = dashboard()["templating"]["list"]
    (source,) = [v for v in variables if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    for variable in variables:
        if variable["type"] == "query":
            metric, label = LABEL_VALUES.fullmatch(variable["query"]["query"]).groups()
            assert label in exported[metric], variable["name"]
            assert variable["datasource"]["uid"] == "${" + source["name"] + "}"
    for panel in every_panel(dashboard()["panels"]):
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${" + source["name"] + "}"}, panel["title"]


def test_it_is_a_grafana_dashboard_with_a_place_for_each_panel():
    board = dashboard()
    assert board["title"]
    assert board["uid"]
    assert isinstance(board["schemaVersion"], int)
    panels = every_panel(board["panels"])
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] >= 1, panel["title"]
        assert panel["type"] in {"row", "timeseries", "stat", "table", "text"}, panel["type"]
        refs = [target["refId"] for target in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
    titles = {panel["title"] for panel in board["panels"] if panel["type"] == "row"}
    assert titles >= {"Traffic", "Latency", "Token health", "Clients", "Audit export"}


def test_the_rows_of_holds_and_of_the_queue_chart_their_metrics():
    rows = {panel["title"]: panel for panel in dashboard()["panels"] if panel["type"] == "row"}
    for title, metrics in ISSUE_23_ROWS.items():
        read = {
            selector.metric
            for panel in rows[title]["panels"]
            for target in panel["targets"]
            for selector in parse(expr_of(target["expr"])).selectors
        }
        assert metrics <= read, title
