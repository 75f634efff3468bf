"""The PrometheusRule's alerts: ``promtool check rules`` and ``promtool test rules``
(tests/manifests/alerts.test.yaml), with at least one case where each alert fires and one
where it does not. promtool is Debian's ``prometheus`` package (make deps installs it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.manifests.render import DEPLOY, render, tool

TESTS = Path(__file__).with_name("alerts.test.yaml")
LABEL = re.compile(r"\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def rules() -> dict[str, Any]:
    """The rule groups (the PrometheusRule's ``spec``), as rendered by kustomize."""
    objects = render(DEPLOY / "base")
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    spec: dict[str, Any] = rule["spec"]
    return spec


def alerts() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rules()["groups"] for r in g["rules"] if "alert" in r}


def with_annotations(tests: dict[str, Any]) -> dict[str, Any]:
    """``tests`` with each expected alert's annotations rendered from its rule's templates."""
    by_name = alerts()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            templates = by_name[check["alertname"]].get("annotations", {})
            for alert in check.get("exp_alerts") or []:
                labels = {k: str(v) for k, v in alert["exp_labels"].items()}
                alert["exp_annotations"] = {
                    k: LABEL.sub(lambda m, labels=labels: labels[m.group(1)], v)
                    for k, v in templates.items()
                }
    return tests


def test_promtool_check_rules(tmp_path: Path) -> None:
    promtool = tool("promtool", "Debian package prometheus")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules()))
    done = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_test_rules(tmp_path: Path) -> None:
    promtool = tool("promtool", "Debian package prometheus")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules()))
    tests = with_annotations(yaml.safe_load(TESTS.read_text()))
    (tmp_path / "alerts.test.yaml").write_text(yaml.safe_dump(tests))
    done = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load(TESTS.read_text())
    firing, quiet = set(), set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = set(alerts())
    assert names == {
        "BgpmuxUpstreamSessionDown", "BgpmuxClientSessionDown", "BgpmuxPrefixesRejectedRising",
        "BgpmuxClientMaxPrefixes", "BgpmuxUpstreamMaxPrefixes", "BgpmuxEngineRestarts",
        "BgpmuxConfigReloadFailed", "BgpmuxNoUpstreamWithRoutes", "BgpmuxDown",
        "BgpmuxNotScraped", "BgpmuxDaemonSetUnavailable",
    }  # fmt: skip
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested quiet"
