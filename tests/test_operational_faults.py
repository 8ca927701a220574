"""Operational faults on the real `serve`: a disk that refuses writes, garbage mappings, SIGTERM under load."""

from __future__ import annotations

import resource
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from connector.testing.plain import membership_event, signed_request
from connector.testing.simulator import PlainSimulator

from tests.conftest import SECRET, ServeProcess, free_port, post_stream, run_cli, wait_for, write_setup

ENT = ("cg_ent", "enterprise", "Enterprise")
GROUPS = ["enterprise", "beta", "vip"]


def join(i: int) -> tuple[bytes, dict[str, str]]:
    ev = membership_event(event_id=f"pEv_{i:06d}", customer_id=f"c_{i}", email=f"u{i}@example.com",
                          groups_before=[], groups_after=[ENT], timestamp="2026-01-01T00:00:01Z",
                          generation="versioned")  # fmt: skip
    return signed_request(ev, SECRET)


def status(config: Path) -> dict[str, Any]:
    result = run_cli("status", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)


def test_disk_refusing_writes_answers_503_and_keeps_what_it_acknowledged(tmp_path: Path) -> None:
    port = free_port()
    config = write_setup(tmp_path, port=port)

    def small_disk() -> None:  # every file this process writes stops growing at 400 KiB
        resource.setrlimit(resource.RLIMIT_FSIZE, (400 * 1024, 400 * 1024))

    serve = ServeProcess(config, port, preexec_fn=small_disk).start()
    acknowledged: list[int] = []
    answers: set[int] = set()
    try:
        with httpx.Client(base_url=serve.url, timeout=10) as client:
            for i in range(3000):
                body, headers = join(i)
                code = client.post("/webhooks/plain", content=body, headers=headers).status_code
                answers.add(code)
                if code == 200:
                    acknowledged.append(i)
                if code == 503 and len(answers) > 1:
                    break
    finally:
        serve.stop(signal.SIGKILL)
    assert answers == {200, 503}, answers  # refused, never acknowledged-then-lost, never a 500
    # Back on a healthy disk: every acknowledged event is there, the refused one can come again.
    serve = ServeProcess(config, port).start()
    try:
        report = status(config)
        assert report["inbox"]["processed"] == len(acknowledged)
        body, headers = join(i)
        assert httpx.post(serve.url + "/webhooks/plain", content=body, headers=headers).json()["status"] == "stored"
    finally:
        assert serve.stop() == 0


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_garbage_mapping_while_events_flow_changes_nothing(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_setup(tmp_path, port=port)
    serve = serve_factory(config, port)
    mapping = tmp_path / "mappings" / "groups.yaml"
    good = mapping.read_text()
    garbage = [
        (b"\x00\xff garbage: [unclosed\n", "groups.yaml"),
        (b"mappings:\n  - group: enterprise\n    to: [{target: not-a-target}]\n", "not-a-target"),
    ]
    with httpx.Client(base_url=serve.url) as client:
        for i in range(200):
            if i in (50, 120):
                content, words = garbage[i // 100]
                mapping.write_bytes(content)
                wait_for(lambda words=words: words in (client.get("/readyz").json()["mapping_error"] or ""))
            body, headers = join(i)
            assert client.post("/webhooks/plain", content=body, headers=headers).status_code == 200
    log = tmp_path / "data" / "sync-log.jsonl"
    wait_for(lambda: len(jsonl_rows(log)) == 200, timeout=20)
    assert {r["customer_id"] for r in jsonl_rows(log)} == {f"c_{i}" for i in range(200)}
    assert "mapping reload refused" in serve.logs()
    mapping.write_text(good)
    wait_for(lambda: httpx.get(serve.url + "/readyz").json()["mapping_error"] is None)
    assert serve.stop() == 0


def test_sigterm_under_load_loses_nothing(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_setup(tmp_path, port=port, mappings=[{"group": g, "to": [{"target": "audit"}]} for g in GROUPS])
    sim = PlainSimulator(SECRET, customers=30, seed=9).plan(600)
    deliveries = list(sim.deliveries())
    serve = serve_factory(config, port)
    stopped = threading.Event()

    def stop_soon() -> None:
        time.sleep(0.4)
        assert serve.stop(signal.SIGTERM) == 0
        stopped.set()

    stopper = threading.Thread(target=stop_soon)
    stopper.start()
    pending = post_stream(serve.url + "/webhooks/plain", deliveries, stop=stopped).pending
    stopper.join()
    assert pending, "the load should still be running when SIGTERM arrives"
    serve = serve_factory(config, port)
    post_stream(serve.url + "/webhooks/plain", pending)  # Plain's redeliveries of what was not acknowledged

    def members() -> set[tuple[str, str]]:
        last: dict[tuple[str, str], str] = {}
        for row in jsonl_rows(tmp_path / "data" / "sync-log.jsonl"):
            last[(row["customer_id"], row["group_id"])] = row["action"]
        return {pair for pair, action in last.items() if action == "add"}

    wait_for(lambda: members() == sim.expected_members(), timeout=30)
    assert serve.stop() == 0
