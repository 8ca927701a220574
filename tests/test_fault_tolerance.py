"""Fault test: every target's CRM answers 20 % 5xx, 10 % 429, drops some connections and is slow.

The run must converge to exactly the expected membership, with no dead letters: none of
these faults is permanent. `--long` runs a bigger stream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from connector.testing.fakes import Faults
from connector.testing.fakes.webhook import FakeWebhookReceiver
from connector.testing.simulator import PlainSimulator
from tests.conftest import SECRET, free_port, run_cli, wait_for, write_setup

GROUPS = {"cg_ent": "enterprise", "cg_beta": "beta", "cg_vip": "vip"}
HOOK_SECRET = "webhook-secret-for-tests"
FAULTS = Faults(error_rate=0.2, throttle_rate=0.1, throttle_seconds=0.5, drop_rate=0.02, latency=0.01)


def test_webhook_target_converges_under_faults(tmp_path: Path, serve_factory: Any, long_run: bool) -> None:
    events = 1500 if long_run else 150
    fake = FakeWebhookReceiver(HOOK_SECRET, faults=FAULTS, seed=3)
    sim = PlainSimulator(SECRET, customers=25, seed=21).plan(events)
    with fake.serve() as base:
        port = free_port()
        config = write_setup(
            tmp_path, port=port,
            targets={"hook": {"type": "webhook", "url": base + "/hooks/crm", "secret": HOOK_SECRET}},
            mappings=[{"group": key, "to": [{"target": "hook"}]} for key in GROUPS.values()],
        )  # fmt: skip
        serve = serve_factory(config, port)
        with httpx.Client(base_url=serve.url) as client:
            for delivery in sim.deliveries():
                assert client.post("/webhooks/plain", content=delivery.body, headers=delivery.headers).status_code == 200
        expected = {(GROUPS[g], PlainSimulator.email(c)) for c, g in sim.expected_members()}

        seen: dict[str, Any] = {}

        def converged() -> bool:
            got = {(g, e) for g, emails in fake.members.items() for e in emails}
            seen["status"] = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)["targets"]["hook"]
            seen["diff"] = (sorted(expected - got)[:3], sorted(got - expected)[:3])
            return got == expected and seen["status"]["backlog"] == 0

        try:
            wait_for(converged, timeout=120 if long_run else 60, interval=0.5)
        except AssertionError:
            raise AssertionError(f"not converged: {seen}\n{serve.logs()[-4000:]}") from None
        report = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)
        assert report["targets"]["hook"]["dead_letters"] == 0
        counters = fake.log.counters
        assert counters.get("fault", 0) > 0 and counters.get("throttled", 0) > 0  # the faults did happen
        assert serve.stop() == 0
