"""The real `serve` process on loopback, driven the way Plain and an operator drive it."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from connector.testing.plain import membership_event, seed_event, signed_request, with_fresh_attempt

from tests.conftest import SECRET, free_port, run_cli, wait_for, write_setup

ENT = ("cg_01GST0W9Z0WVHBSAPA9HQR7Q2E", "enterprise", "Enterprise")
BETA = ("cg_beta", "beta", "Beta")


def post(url: str, ev: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    body, headers = signed_request(ev, secret)
    return httpx.post(url + "/webhooks/plain", content=body, headers=headers, timeout=10)


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def member_event(
    event_id: str, customer: str, before: list[Any], after: list[Any], ts: str, gen: str
) -> dict[str, Any]:
    return membership_event(
        event_id=event_id, customer_id=customer, email=f"{customer}@example.com", groups_before=before,
        groups_after=after, timestamp=ts, generation=gen,  # type: ignore[arg-type]
    )  # fmt: skip


def test_webhooks_flow_to_jsonl_and_status(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_setup(
        tmp_path, port=port,
        mappings=[{"group": "enterprise", "to": [{"target": "audit"}]},
                  {"group": "cg_beta", "to": [{"target": "audit", "label": "beta"}]}],
    )  # fmt: skip
    serve = serve_factory(config, port)
    log = tmp_path / "data" / "sync-log.jsonl"

    # 1. the seed example, legacy generation, typo and all
    assert post(serve.url, with_fresh_attempt(seed_event())).json()["status"] == "stored"
    # 2. the versioned generation: another customer joins beta
    assert (
        post(serve.url, member_event("pEv_v1", "c_v", [], [BETA], "2026-01-01T00:00:01Z", "versioned")).status_code
        == 200
    )
    # 3. a redelivery of the seed: acknowledged, nothing new
    assert post(serve.url, with_fresh_attempt(seed_event())).json()["status"] == "duplicate"
    # 4. an out-of-order pair: the leave (t=3) arrives before the join (t=2)
    assert (
        post(serve.url, member_event("pEv_leave", "c_o", [ENT], [], "2026-01-01T00:00:03Z", "versioned")).status_code
        == 200
    )
    assert (
        post(serve.url, member_event("pEv_join", "c_o", [], [ENT], "2026-01-01T00:00:02Z", "legacy")).status_code == 200
    )
    # 5. a bad signature: refused
    bad = post(
        serve.url, member_event("pEv_bad", "c_x", [], [ENT], "2026-01-01T00:00:04Z", "versioned"), secret="wrong"
    )
    assert bad.status_code == 401

    lines = wait_for(lambda: (rows := jsonl(log)) and len(rows) >= 3 and rows)
    time.sleep(0.5)  # anything extra (a duplicate, the stale join) would land by now
    lines = jsonl(log)
    got = sorted((r["customer_id"], r["action"], r["group_key"], r.get("label")) for r in lines)
    assert got == [
        ("c_01GST0WAGQ7RSMMEXZGA360MFY", "add", "enterprise", None),
        ("c_o", "remove", "enterprise", None),
        ("c_v", "add", "beta", "beta"),
    ]
    seed_line = next(r for r in lines if r["customer_id"].startswith("c_01GST"))
    assert seed_line["email"] == "colby45@example.com" and seed_line["event_id"] == "pEv_01GST0WAZ0W31PN3BH76M9E2SP"
    assert seed_line["target"] == "audit" and seed_line["group_id"] == ENT[0] and seed_line["ts"].endswith("Z")

    status = run_cli("status", "--config", str(config), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["inbox"] == {"processed": 4}  # the duplicate and the refused one are not
    assert report["targets"]["audit"]["applied"] == 3 and report["targets"]["audit"]["backlog"] == 0
    text = run_cli("status", "--config", str(config))
    assert "target audit: ok" in text.stdout

    assert serve.stop(signal.SIGTERM) == 0
    assert "colby45@example.com" not in serve.logs() and SECRET not in serve.logs()


def test_sigterm_exits_zero_quickly_and_restart_resumes(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_setup(tmp_path, port=port)
    serve = serve_factory(config, port)
    for i in range(20):
        ev = member_event(f"pEv_{i}", f"c_{i}", [], [ENT], "2026-01-01T00:00:01Z", "versioned")
        assert post(serve.url, ev).status_code == 200
    started = time.monotonic()
    assert serve.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    serve = serve_factory(config, port)
    rows = wait_for(
        lambda: len(jsonl(tmp_path / "data" / "sync-log.jsonl")) >= 20 and jsonl(tmp_path / "data" / "sync-log.jsonl")
    )
    assert sorted(r["customer_id"] for r in rows) == sorted({f"c_{i}" for i in range(20)})
    assert serve.stop() == 0


def test_mapping_edits_reload_and_invalid_edit_keeps_old(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_setup(tmp_path, port=port, mappings=[{"group": "enterprise", "to": [{"target": "audit"}]}])
    serve = serve_factory(config, port)
    mapping_file = tmp_path / "mappings" / "groups.yaml"
    log = tmp_path / "data" / "sync-log.jsonl"

    # Garbage while running: refused with file:line, enterprise keeps flowing.
    mapping_file.write_text("mappings:\n  - group: enterprise\n    to:\n      - {target: nowhere}\n")
    wait_for(lambda: "refused" in serve.logs() and "groups.yaml:4" in serve.logs())
    assert (
        post(serve.url, member_event("pEv_1", "c_1", [], [ENT], "2026-01-01T00:00:01Z", "versioned")).status_code == 200
    )
    wait_for(lambda: len(jsonl(log)) == 1)
    ready = httpx.get(serve.url + "/readyz").json()
    assert "groups.yaml:4" in ready["mapping_error"]

    # A valid edit, applied on SIGHUP (and on its own by the file watcher).
    mapping_file.write_text(
        yaml.safe_dump({"mappings": [{"group": "beta", "to": [{"target": "audit", "label": "b"}]}]})
    )
    serve.send_signal(signal.SIGHUP)
    wait_for(lambda: httpx.get(serve.url + "/readyz").json()["mapping_error"] is None)
    assert (
        post(serve.url, member_event("pEv_2", "c_2", [], [BETA], "2026-01-01T00:00:02Z", "versioned")).status_code
        == 200
    )
    assert (
        post(serve.url, member_event("pEv_3", "c_3", [], [ENT], "2026-01-01T00:00:03Z", "versioned")).status_code == 200
    )
    wait_for(lambda: len(jsonl(log)) == 2)
    time.sleep(0.3)
    assert [(r["customer_id"], r.get("label")) for r in jsonl(log)] == [("c_1", None), ("c_2", "b")]
    assert serve.stop() == 0


PLUGIN = """
import json
from connector.adapters.base import Adapter, Outcome, TargetConfig

class RecorderConfig(TargetConfig):
    out: str

class Recorder(Adapter):
    type_name = "recorder"
    config_model = RecorderConfig

    async def apply(self, changes):
        with open(self.config.out, "a") as fh:
            for c in changes:
                fh.write(json.dumps([c.action, c.customer_id, c.group_key]) + "\\n")
        return [Outcome.done() for _ in changes]
"""


def test_third_party_adapter_is_found_by_entry_point(tmp_path: Path, serve_factory: Any) -> None:
    plugin_dir = tmp_path / "site"
    (plugin_dir / "recorder_plugin-1.0.dist-info").mkdir(parents=True)
    (plugin_dir / "recorder_plugin.py").write_text(PLUGIN)
    (plugin_dir / "recorder_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: recorder-plugin\nVersion: 1.0\n"
    )
    (plugin_dir / "recorder_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[plain_crm_sync.adapters]\nrecorder = recorder_plugin:Recorder\n"
    )
    port = free_port()
    out = tmp_path / "recorded.txt"
    config = write_setup(
        tmp_path, port=port, targets={"rec": {"type": "recorder", "out": str(out)}},
        mappings=[{"group": "enterprise", "to": [{"target": "rec"}]}],
    )  # fmt: skip
    env = {"PYTHONPATH": str(plugin_dir)}
    assert run_cli("check", "--config", str(config), env=env).returncode == 0
    serve = serve_factory(config, port, env)
    assert (
        post(serve.url, member_event("pEv_1", "c_1", [], [ENT], "2026-01-01T00:00:01Z", "versioned")).status_code == 200
    )
    wait_for(lambda: out.exists() and out.read_text())
    assert json.loads(out.read_text().splitlines()[0]) == ["add", "c_1", "enterprise"]
    assert serve.stop() == 0


def test_second_serve_on_the_same_sqlite_store_is_refused(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_setup(tmp_path, port=port)
    first = serve_factory(config, port)
    second = run_cli("serve", "--config", str(config), timeout=20)
    assert second.returncode == 1
    assert "another `serve` is already running on" in second.stderr
    assert httpx.get(first.url + "/healthz").status_code == 200
    assert first.stop() == 0
