"""Crash test: SIGKILL `serve` at random moments, restart it, restart the CRM; nothing is lost.

Short variant in the suite; `pytest tests/test_crash.py --long` runs the long one
(numbers in docs/reliability.md).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import httpx
from connector.testing.fakes.webhook import FakeWebhookReceiver
from connector.testing.simulator import PlainSimulator

from tests.conftest import SECRET, ServeProcess, free_port, post_stream, wait_for, write_setup

HOOK_SECRET = "webhook-secret-for-tests"
GROUPS = {"cg_ent": "enterprise", "cg_beta": "beta", "cg_vip": "vip"}


class Killer(threading.Thread):
    """SIGKILLs the service at random moments and starts it again each time."""

    def __init__(self, serve: ServeProcess, kills: int, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.serve, self.kills, self.rng = serve, kills, rng
        self.done = threading.Event()
        self.restarts = 0

    def run(self) -> None:
        for _ in range(self.kills):
            time.sleep(self.rng.uniform(0.2, 1.0))
            assert self.serve.proc is not None
            self.serve.proc.send_signal(signal.SIGKILL)
            self.serve.proc.wait()
            self.serve.start()
            self.restarts += 1
        self.done.set()


def test_kills_and_crm_restart_lose_nothing(tmp_path: Path, long_run: bool) -> None:
    events, kills = (3000, 12) if long_run else (250, 3)
    rng = random.Random(42)
    fake = FakeWebhookReceiver(HOOK_SECRET)
    fake_port, port = free_port(), free_port()
    config = write_setup(
        tmp_path, port=port,
        targets={"hook": {"type": "webhook", "url": f"http://127.0.0.1:{fake_port}/hooks/crm", "secret": HOOK_SECRET}},
        mappings=[{"group": key, "to": [{"target": "hook"}]} for key in GROUPS.values()],
    )  # fmt: skip
    sim = PlainSimulator(SECRET, customers=40, seed=5).plan(events)
    serve = ServeProcess(config, port).start()
    killer = Killer(serve, kills, rng)
    url = serve.url + "/webhooks/plain"
    try:
        with fake.serve(port=fake_port):
            killer.start()
            deadline = time.monotonic() + (
                600 if long_run else 300
            )  # a liveness bound, generous for a loaded 2-core machine
            deliveries = list(sim.deliveries())
            half = events // 2 + 1
            post_stream(url, deliveries[:half], deadline=deadline)
        # The CRM is down for a moment while events keep coming; then it is back.
        time.sleep(0.5)
        with fake.serve(port=fake_port):
            post_stream(url, deliveries[half:], deadline=deadline)
            killer.join(timeout=60)
            expected = {(GROUPS[g], PlainSimulator.email(c)) for c, g in sim.expected_members()}

            def members() -> set[tuple[str, str]]:
                return {(g, e) for g, emails in fake.members.items() for e in emails}

            try:
                wait_for(lambda: members() == expected, timeout=180)
            except AssertionError:
                got = members()
                raise AssertionError(
                    f"missing {sorted(expected - got)[:5]}, extra {sorted(got - expected)[:5]}\n"
                    + httpx.get(serve.url + "/metrics").text[-3000:]
                    + serve.logs()[-3000:]
                ) from None
        assert killer.restarts == kills
        status = httpx.get(serve.url + "/readyz").json()
        assert status["store"] == "ok"
    finally:
        serve.stop(signal.SIGTERM)
    assert fake.bad_signatures == 0
