"""A simulated Plain stream (redeliveries, reordering, join-then-leave bursts) through `serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from connector.testing.simulator import PlainSimulator

from tests.conftest import SECRET, free_port, post_stream, wait_for, write_setup

GROUPS = ["enterprise", "beta", "vip"]


def final_state(log: Path) -> tuple[set[tuple[str, str]], int]:
    """Members according to the jsonl target, and how often a pair got the same action twice in a row."""
    last: dict[tuple[str, str], str] = {}
    repeats = 0
    for line in log.read_bytes().splitlines() if log.exists() else []:
        row = orjson.loads(line)
        pair = (row["customer_id"], row["group_id"])
        repeats += last.get(pair) == row["action"]
        last[pair] = row["action"]
    return {pair for pair, action in last.items() if action == "add"}, repeats


def test_stream_converges_to_expected_membership(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    config = write_setup(tmp_path, port=port, mappings=[{"group": g, "to": [{"target": "audit"}]} for g in GROUPS])
    serve = serve_factory(config, port)
    sim = PlainSimulator(SECRET, customers=15, seed=7).plan(300)
    statuses = post_stream(serve.url + "/webhooks/plain", sim.deliveries()).statuses
    expected = sim.expected_members()
    log = tmp_path / "data" / "sync-log.jsonl"
    wait_for(lambda: final_state(log)[0] == expected, timeout=20)
    members, repeats = final_state(log)
    assert members == expected and repeats == 0
    assert statuses["duplicate"] > 0 and statuses["stored"] == 300
    assert serve.stop() == 0


def test_simulator_plans_bursts_redeliveries_and_reordering() -> None:
    sim = PlainSimulator("s", customers=5, seed=3, burst_share=0.5, redelivery_share=0.3).plan(100)
    deliveries = list(sim.deliveries())
    ids = [d.event_id for d in deliveries]
    assert len(set(ids)) == 100 and len(ids) > 100  # every event, some twice
    assert ids != sorted(ids)  # not in event order
    assert any(d.attempt == 2 for d in deliveries)
    bodies = {orjson.loads(d.body)["type"] for d in deliveries}
    assert bodies == {"customer.customer_group_memberships_changed", "customer.customer_groups_memberships_canged"}
    # Independently: each customer ends with the after-set of their latest event.
    latest: dict[str, tuple[str, set[str]]] = {}
    for d in deliveries:
        ev = orjson.loads(d.body)
        p = ev["payload"]
        after = p["customer"].get("customerGroupMemberships", p.get("customerGroupMemberships"))
        cid = p["customer"]["id"]
        if cid not in latest or ev["timestamp"] > latest[cid][0]:
            latest[cid] = (ev["timestamp"], {m["customerGroupId"] for m in after})
    assert sim.expected_members() == {(c, g) for c, (_, groups) in latest.items() for g in groups}
