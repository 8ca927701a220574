"""The Grafana dashboard and the alert rules in docs/ only query metrics the service has."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from connector.metrics import Metrics

DOCS = Path(__file__).resolve().parent.parent / "docs"
_NAME = re.compile(r"\bplain_crm_sync_[a-z_]+\b")


def _queried(expressions: list[str]) -> set[str]:
    return {name for e in expressions for name in _NAME.findall(e)}


def test_dashboard_parses_and_every_metric_it_queries_exists() -> None:
    dashboard = json.loads((DOCS / "grafana" / "plain-crm-sync.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queried = _queried(exprs)
    assert len(queried) >= 15
    assert queried <= Metrics().names(), queried - Metrics().names()


def test_alert_rules_query_existing_metrics_and_have_a_runbook() -> None:
    rules = yaml.safe_load((DOCS / "grafana" / "alerts.yaml").read_text())["groups"][0]["rules"]
    assert _queried([r["expr"] for r in rules]) <= Metrics().names()
    operations = (DOCS / "operations.md").read_text()
    for rule in rules:
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert f'<a id="{anchor}"></a>' in operations, anchor
        assert rule["alert"] in operations
