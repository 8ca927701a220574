"""The command line, run as a subprocess the way an operator runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from connector.testing.plain import membership_event, seed_event, signed_request

from tests.conftest import free_port, run_cli, wait_for, write_setup

REPO = Path(__file__).resolve().parents[2]
ENT = ("cg_ent", "enterprise", "Enterprise")


def test_check_accepts_the_example_config() -> None:
    result = run_cli("check", "--config", str(REPO / "config.example.yaml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: 1 target(s), 2 group(s)")


def test_check_rejects_a_bad_mapping_with_file_and_line(tmp_path: Path) -> None:
    config = write_setup(tmp_path)
    (tmp_path / "mappings" / "groups.yaml").write_text("mappings:\n  - group: x\n    to:\n      - target: nope\n")
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 1
    assert f"{tmp_path / 'mappings' / 'groups.yaml'}:4: unknown target 'nope'" in result.stderr


def test_check_online_reports_problems(tmp_path: Path) -> None:
    config = write_setup(tmp_path, targets={"audit": {"type": "jsonl", "path": "blocker/log.jsonl"}})
    (tmp_path / "blocker").write_text("a file where a folder should be")
    result = run_cli("check", "--online", "--config", str(config))
    assert result.returncode == 1
    assert f"{config}: target 'audit': cannot start:" in result.stderr and "blocker" in result.stderr
    fine = write_setup(tmp_path / "ok")
    assert run_cli("check", "--online", "--config", str(fine)).returncode == 0


def test_plan_prints_operations_and_calls_nothing(tmp_path: Path) -> None:
    config = write_setup(tmp_path, mappings=[{"group": "enterprise", "to": [{"target": "audit", "label": "x"}]}])
    event_file = tmp_path / "seed.json"
    event_file.write_text(json.dumps(seed_event()))  # 2023 timestamp: plan skips the replay window
    result = run_cli("plan", "--config", str(config), str(event_file))
    assert result.returncode == 0, result.stderr
    assert "audit: add colby45@example.com (label=x) for group enterprise" in result.stdout
    assert result.stdout.rstrip().endswith("1 operation(s); nothing was called")
    assert not (tmp_path / "data").exists()


def test_plan_refuses_a_file_that_is_not_an_event(tmp_path: Path) -> None:
    config = write_setup(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": "world"}')
    result = run_cli("plan", "--config", str(config), str(bad))
    assert result.returncode == 1 and "not an event we understand" in result.stderr


def test_dead_letters_list_and_replay(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    (tmp_path / "data" / "is-a-folder").mkdir(parents=True)
    config = write_setup(
        tmp_path, port=port, targets={"audit": {"type": "jsonl", "path": "data/is-a-folder"}},
        delivery={"max_attempts": 1, "poll_interval_seconds": 0.1},
    )  # fmt: skip
    serve = serve_factory(config, port)
    ev = membership_event(event_id="pEv_1", customer_id="c_1", email="ann@example.com", groups_before=[],
                          groups_after=[ENT], timestamp="2026-01-01T00:00:00Z", generation="versioned")  # fmt: skip
    body, headers = signed_request(ev, "test-signing-secret")
    import httpx

    assert httpx.post(serve.url + "/webhooks/plain", content=body, headers=headers).status_code == 200

    def letters() -> list[dict[str, Any]]:
        out = run_cli("dead-letters", "list", "--json", "--config", str(config))
        return json.loads(out.stdout) if out.returncode == 0 else []

    found = wait_for(letters)
    assert serve.stop() == 0
    assert [(d["customer_id"], d["action"], d["target"]) for d in found] == [("c_1", "add", "audit")]
    assert "gave up after 1 attempts" in found[0]["reason"] and "is-a-folder" in found[0]["reason"]
    text = run_cli("dead-letters", "list", "--config", str(config)).stdout
    assert "a***@e***.com" in text and "ann@example.com" not in text

    assert run_cli("dead-letters", "replay", "--config", str(config)).returncode == 2
    replay = run_cli("dead-letters", "replay", "--all", "--config", str(config))
    assert replay.stdout.strip() == "re-queued 1 change(s)"
    status = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)
    assert status["targets"]["audit"]["backlog"] == 1 and status["targets"]["audit"]["dead_letters"] == 0

    # Fix the target, restart: the replayed change is delivered.
    cfg = yaml.safe_load(config.read_text())
    cfg["targets"]["audit"]["path"] = "data/sync-log.jsonl"
    config.write_text(yaml.safe_dump(cfg))
    serve = serve_factory(config, port)
    wait_for(lambda: (tmp_path / "data" / "sync-log.jsonl").exists())
    assert json.loads((tmp_path / "data" / "sync-log.jsonl").read_text())["customer_id"] == "c_1"
    assert serve.stop() == 0


def test_send_signs_and_posts_an_event_file(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_setup(tmp_path, port=port)
    serve = serve_factory(config, port)
    event_file = tmp_path / "seed.json"
    event_file.write_text(json.dumps(seed_event()))
    result = run_cli("send", "--config", str(config), str(event_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("200 ") and '"stored"' in result.stdout
    assert serve.stop() == 0


def test_unknown_config_path_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("status", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 1 and "missing.yaml: cannot read" in result.stderr


def test_reprocess_applies_bodies_an_older_version_could_not_read(tmp_path: Path) -> None:
    import asyncio

    from connector.store import open_store

    config = write_setup(tmp_path)
    ev = membership_event(event_id="pEv_later", customer_id="c_1", email="ann@example.com", groups_before=[],
                          groups_after=[ENT], timestamp="2026-01-01T00:00:00Z", generation="versioned")  # fmt: skip
    body, _ = signed_request(ev, "unused")

    async def keep() -> None:
        store = open_store("sqlite:///data/connector.db", tmp_path)
        await store.open()
        # As an older release would have: kept raw because it did not understand it.
        await store.accept_unprocessable(body, "unknown event type", "pEv_later", ev["type"])
        await store.accept_unprocessable(b"still garbage", "not JSON", None, None)
        await store.close()

    asyncio.run(keep())
    result = run_cli("reprocess", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "pEv_later: stored as pEv_later (1 change(s))" in result.stdout
    assert result.stdout.rstrip().endswith("reprocessed 1, still unprocessable 1")
    status = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)
    assert status["inbox"] == {"processed": 1, "unprocessable": 1}
    assert status["targets"]["audit"]["backlog"] == 1
