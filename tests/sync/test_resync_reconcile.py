"""`resync` (after a mapping edit, --prune) and serve's scheduled reconcile, through the CLI and a real serve."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import free_port, run_cli, wait_for
from tests.sync.conftest import audit_lines, cli, members, setup

TARGETS = {
    "audit": {"type": "jsonl", "path": "data/sync-log.jsonl"},
    "audit2": {"type": "jsonl", "path": "data/audit2.jsonl"},
}


def _lines(config: Path, name: str) -> list[dict[str, Any]]:
    path = config.parent / "data" / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _map(config: Path, *targets: str) -> None:
    mappings = [{"group": "enterprise", "to": [{"target": t} for t in targets]}]
    (config.parent / "mappings" / "groups.yaml").write_text(yaml.safe_dump({"mappings": mappings}))


def _delivered(tmp_path: Path, fake: Any, api_url: str, serve_factory: Any) -> tuple[Path, int, list[str]]:
    """Three members backfilled to ``audit`` and delivered; serve stopped again."""
    ent = fake.data.add_group("enterprise")
    ids = [fake.data.add_customer(f"C {i}", f"c{i}@example.com", groups=[ent]) for i in range(3)]
    port = free_port()
    config = setup(tmp_path, api_url, port=port, targets=TARGETS)
    serve = serve_factory(config, port)
    assert cli("backfill", "--config", str(config)).returncode == 0
    wait_for(lambda: len(audit_lines(config)) == 3)
    assert serve.stop() == 0
    return config, port, ids


def test_resync_after_a_mapping_edit_then_nothing_the_second_time(tmp_path, fake, api_url, serve_factory):
    config, port, ids = _delivered(tmp_path, fake, api_url, serve_factory)
    _map(config, "audit", "audit2")
    dry = cli("resync", "--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "CRM operations (3):",
        "  target  action  contact         group       destination",
        *(f"  audit2  add     c{i}@example.com  enterprise  -" for i in range(3)),
        "dry run: nothing was written",
    ]
    first = cli("resync", "--config", str(config))
    assert "3 operation(s) queued (3 add, 0 remove)" in first.stdout, first.stderr
    second = cli("resync", "--config", str(config))
    assert "nothing queued" in second.stdout
    serve_factory(config, port)
    wait_for(lambda: len(_lines(config, "audit2.jsonl")) == 3)
    assert {x["customer_id"] for x in _lines(config, "audit2.jsonl")} == set(ids)
    assert len(audit_lines(config)) == 3  # audit already had them: nothing sent again


def test_resync_target_and_group_filters(tmp_path, fake, api_url, serve_factory):
    config, _port, _ids = _delivered(tmp_path, fake, api_url, serve_factory)
    _map(config, "audit", "audit2")
    assert "nothing queued" in cli("resync", "--config", str(config), "--target", "audit").stdout
    unknown = cli("resync", "--config", str(config), "--group", "nope")
    assert unknown.returncode == 1 and "run `backfill --group nope` first" in unknown.stderr
    bad = cli("resync", "--config", str(config), "--target", "nope")
    assert bad.returncode == 1 and "no target 'nope'" in bad.stderr
    assert "3 operation(s)" in cli("resync", "--config", str(config), "--group", "enterprise").stdout


def test_prune_removes_only_what_no_mapping_names_any_more(tmp_path, fake, api_url, serve_factory):
    config, port, ids = _delivered(tmp_path, fake, api_url, serve_factory)
    _map(config, "audit2")
    plain = cli("resync", "--config", str(config))
    assert "3 operation(s) queued (3 add, 0 remove)" in plain.stdout  # audit2 gets them; audit keeps them
    dry = cli("resync", "--config", str(config), "--prune", "--dry-run", "--json")
    ops = [json.loads(line) for line in dry.stdout.splitlines()]
    assert {(o["target"], o["action"], o["customer_id"]) for o in ops} == {("audit", "remove", i) for i in ids}
    assert "3 operation(s) queued (0 add, 3 remove)" in cli("resync", "--config", str(config), "--prune").stdout
    assert "nothing queued" in cli("resync", "--config", str(config), "--prune").stdout
    serve_factory(config, port)
    wait_for(lambda: len(audit_lines(config)) == 6 and len(_lines(config, "audit2.jsonl")) == 3)
    assert [x["action"] for x in audit_lines(config)] == ["add"] * 3 + ["remove"] * 3


def test_serve_reconciles_on_schedule_and_status_shows_it(tmp_path, fake, api_url, serve_factory):
    ent = fake.data.add_group("enterprise")
    ids = [fake.data.add_customer(f"C {i}", f"c{i}@example.com", groups=[ent]) for i in range(3)]
    port = free_port()
    config = setup(tmp_path, api_url, port=port, reconcile={"every": "2s"})
    serve = serve_factory(config, port)
    wait_for(lambda: {x["customer_id"] for x in audit_lines(config)} == set(ids), timeout=20)
    fake.data.leave(ids[0], "enterprise")
    wait_for(lambda: len(audit_lines(config)) == 4, timeout=20)
    assert audit_lines(config)[-1]["action"] == "remove" and members(config, ent) == set(ids[1:])
    status = run_cli("status", "--config", str(config), "--json")
    run = json.loads(status.stdout)["runs"]["reconcile"]
    assert run["kind"] == "reconcile" and run["groups"] == 1 and run["next_at"] > run["started_at"]
    text = run_cli("status", "--config", str(config)).stdout
    assert "reconcile: last run #" in text and "next run" in text
    # The operator's views: the page's runs table, and the counters a dashboard graphs.
    page = httpx.get(serve.url + "/status", timeout=10).text
    runs_table = page[page.index('id="runs"') :]
    assert "reconcile" in runs_table and "1 group(s)" in runs_table
    metrics = httpx.get(serve.url + "/metrics", timeout=10).text
    done = re.search(r'^plain_crm_sync_backfill_runs_total\{kind="reconcile",outcome="done"\} (\S+)$', metrics, re.M)
    changes = re.search(r'^plain_crm_sync_backfill_changes_total\{kind="reconcile"\} (\S+)$', metrics, re.M)
    assert done and float(done.group(1)) >= 2  # the first read, and the one that found the removal
    assert changes and float(changes.group(1)) >= 4  # three joins, one leave


def test_reconcile_every_accepts_durations_and_refuses_nonsense(tmp_path, api_url):
    from connector.config import load_config

    for text, seconds in (("30m", 1800.0), ("24h", 86400.0), ("90s", 90.0), (600, 600.0)):
        assert load_config(setup(tmp_path, api_url, reconcile={"every": text})).reconcile.every == seconds
    assert load_config(setup(tmp_path, api_url)).reconcile.every is None  # off by default
    result = run_cli("check", "--config", str(setup(tmp_path, api_url, reconcile={"every": "soon"})))
    assert result.returncode == 1 and "reconcile.every" in result.stderr and "'soon' is not a duration" in result.stderr


def test_verify_puts_back_a_member_removed_by_hand_in_hubspot(tmp_path, fake, api_url, serve_factory):
    from connector.testing.fakes.hubspot import FakeHubSpot

    hub = FakeHubSpot("hs-token", unlimited=True)
    list_id = hub.seed_list("Enterprise")
    ent = fake.data.add_group("enterprise")
    for i in range(3):
        fake.data.add_customer(f"C {i}", f"c{i}@example.com", groups=[ent])
        hub.seed_contact(f"c{i}@example.com")
    with hub.serve() as hub_url:
        port = free_port()
        targets = {**TARGETS, "hubspot": {"type": "hubspot", "token": "hs-token", "base_url": hub_url}}
        config = setup(tmp_path, api_url, port=port, targets=targets,
                       mappings=[{"group": "enterprise", "to": [{"target": "hubspot", "list": list_id},
                                                               {"target": "audit"}]}])  # fmt: skip
        serve = serve_factory(config, port)
        assert cli("backfill", "--config", str(config)).returncode == 0
        wait_for(lambda: len(hub.member_emails(list_id)) == 3)
        assert serve.stop() == 0
        hub.lists[list_id]["members"].discard(hub.contact_id("c1@example.com"))  # someone, by hand
        hub.lists[list_id]["members"].add(hub.seed_contact("stranger@example.com"))
        dry = cli("resync", "--config", str(config), "--verify", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.splitlines()[:3] == [
            "CRM operations (1):",
            "  target   action  contact         group       destination",
            f"  hubspot  add     c1@example.com  enterprise  list={list_id}",
        ]
        assert "target audit (jsonl) cannot list what the CRM holds: not verified" in dry.stderr
        assert "1 member(s) are no Plain customer the store knows: left alone" in dry.stderr
        assert "1 operation(s) queued (1 add, 0 remove)" in cli("resync", "--config", str(config), "--verify").stdout
        assert "nothing queued" in cli("resync", "--config", str(config), "--verify").stdout
        serve_factory(config, port)
        wait_for(lambda: hub.member_emails(list_id) == {"c0@example.com", "c1@example.com", "c2@example.com",
                                                         "stranger@example.com"})  # fmt: skip
