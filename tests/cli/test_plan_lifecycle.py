"""`plan` on email changes, deletions and group changes: per target, from the config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.plain import events as ev
from connector.testing.plain import customer_event, group_event

from tests.conftest import run_cli, write_setup

ENT = ("cg_ent", "enterprise", "Enterprise")
TARGETS = {
    "audit": {"type": "jsonl", "path": "data/a.jsonl", "on_email_change": "keep", "on_customer_deleted": "remove"},
    "hook": {"type": "jsonl", "path": "data/b.jsonl"},
}


def plan(tmp_path: Path, body: dict[str, Any]) -> list[str]:
    config = write_setup(
        tmp_path, targets=TARGETS,
        mappings=[{"group": "enterprise", "on_group_deleted": "remove", "to": [{"target": "audit"}]},
                  {"group": "cg_ent", "to": [{"target": "hook"}]}],
    )  # fmt: skip
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(body))
    result = run_cli("plan", "--config", str(config), str(event_file))
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_plan_shows_an_email_change_per_target(tmp_path: Path) -> None:
    body = customer_event(event_id="pEv_1", event_type=ev.CUSTOMER_UPDATED, customer_id="c_1",
                          email="new@example.com", previous_email="old@example.com", timestamp="2026-01-01T00:00:00Z")  # fmt: skip
    lines = plan(tmp_path, body)
    assert "  audit: email change: leave old@example.com as it is, add synced groups to new@example.com" in lines
    assert "  hook: email change: remove synced groups from old@example.com, add them to new@example.com" in lines


def test_plan_shows_a_customer_deletion_per_target(tmp_path: Path) -> None:
    body = customer_event(event_id="pEv_1", event_type=ev.CUSTOMER_DELETED, customer_id="c_1",
                          email="ada@example.com", timestamp="2026-01-01T00:00:00Z")  # fmt: skip
    lines = plan(tmp_path, body)
    assert "  audit: customer deleted: remove ada@example.com from every group synced here" in lines
    assert "  hook: customer deleted: keep ada@example.com's groups as they are (on_customer_deleted: keep)" in lines


def test_plan_shows_a_group_deletion_per_mapping(tmp_path: Path) -> None:
    lines = plan(tmp_path, group_event(event_id="pEv_1", change="REMOVED", group=ENT, timestamp="2026-01-01T00:00:00Z"))
    assert "  hook: group enterprise deleted: keep members as they are (-; on_group_deleted: keep)" in lines
    assert "  audit: group enterprise deleted: remove every member (-)" in lines
