"""Every PromQL expression in deploy/ (the Grafana dashboard's queries and variables, the
PrometheusRule's alerts) names only metrics bgpmux exports: the names are read from a scrape
of a real ``MetricsServer`` over an in-memory core (its collector and its histogram), not
from a list kept by hand. The alerts on bgpmux not running may also name the few series of
others listed in ``NOT_BGPMUX``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from prometheus_client import generate_latest

from bgpmux.config import parse_config
from bgpmux.core import Core
from bgpmux.engines.fake import FakeEngine
from bgpmux.metrics import MetricsServer
from bgpmux.reloads import ReloadStats
from bgpmux.transport.listeners import ClientServer
from tests.manifests.render import DEPLOY, one, render

DASHBOARD = DEPLOY / "grafana" / "bgpmux.json"
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
METRIC = re.compile(r"\bbgpmux_[a-zA-Z0-9_:]*")
# Series the alerts may use that bgpmux does not export: Prometheus's own per-target `up` and
# kube-state-metrics' DaemonSet status.
NOT_BGPMUX = frozenset({"up", "kube_daemonset_status_number_unavailable"})
OTHER = re.compile(r"\b(?:up|kube_[a-zA-Z0-9_:]*)\b(?!\s*\()")


@cache
def exported() -> frozenset[str]:
    """The sample names a scrape of bgpmux shows (counters with ``_total``, the histogram's
    ``_bucket``, ``_sum`` and ``_count``), with the deployed config."""
    text = (DEPLOY / "base" / "bgpmux.yaml").read_text()
    config = parse_config(
        text, env={"NODE_IP": "10.0.0.2", "NODE_IPS": "10.0.0.2", "TOR_IP": "10.0.0.1"}
    )
    core = Core(config, FakeEngine(["tor"]), now=0.0)
    clients = ClientServer(config, runner=None)  # type: ignore[arg-type]
    server = MetricsServer("127.0.0.1", 0, core, clients, core.engine, ReloadStats())
    names = set()
    for line in generate_latest(server.registry).decode().splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return frozenset(names)


def metrics_in(expr: str) -> set[str]:
    """The bgpmux metric names in a PromQL expression (string literals left out: a label
    value or a regex may hold anything)."""
    return set(METRIC.findall(STRINGS.sub('""', expr)))


def dashboard_queries(node: Any) -> Iterator[str]:
    """Every ``expr`` of a panel target and every variable query in the dashboard."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, dict) and "query" in value:
                yield value["query"]
            else:
                yield from dashboard_queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_queries(item)


def test_the_scrape_has_what_the_readme_lists() -> None:
    assert {
        "bgpmux_session_up",
        "bgpmux_config_reload_failures_total",
        "bgpmux_engine_restarts_total",
        "bgpmux_route_propagation_seconds_bucket",
    } <= exported()


def test_metric_names_are_read_from_promql() -> None:
    expr = 'sum by (le) (rate(bgpmux_a_bucket{peer=~"bgpmux_not_this"}[5m])) / bgpmux_b'
    assert metrics_in(expr) == {"bgpmux_a_bucket", "bgpmux_b"}


def test_dashboard_is_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "bgpmux" and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]


QUERIES = sorted(set(dashboard_queries(json.loads(DASHBOARD.read_text()))))


@pytest.mark.parametrize("query", QUERIES)
def test_every_dashboard_query_names_exported_metrics(query: str) -> None:
    named = metrics_in(query)
    assert named, f"no bgpmux metric in {query!r}"
    assert named <= exported(), f"not exported: {sorted(named - exported())}"


def test_every_alert_names_exported_metrics() -> None:
    rule = one(render(DEPLOY / "base"), "PrometheusRule")
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            named = metrics_in(alert["expr"])
            others = set(OTHER.findall(STRINGS.sub('""', alert["expr"])))
            assert named or others, alert["alert"]
            assert named <= exported(), f"{alert['alert']}: {sorted(named - exported())}"
            assert others <= NOT_BGPMUX, f"{alert['alert']}: {sorted(others - NOT_BGPMUX)}"


def test_other_series_are_read_from_promql() -> None:
    expr = 'absent(up{job=~"up"}) or kube_pod_info > 0 or bgpmux_info'
    assert set(OTHER.findall(STRINGS.sub('""', expr))) == {"up", "kube_pod_info"}
