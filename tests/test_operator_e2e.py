"""The operator view through a real `serve`: access, the page, history, metrics and log lines."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import httpx
from connector.metrics import Metrics
from connector.testing.fakes.webhook import FakeWebhookReceiver
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SECRET, run_cli, wait_for
from tests.operator_setup import ADMIN_TOKEN, HOOK_SECRET, admin, join, operator_setup, post


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_a_failed_run_is_visible_to_the_operator_everywhere(tmp_path: Path, serve_factory: Any) -> None:
    fake = FakeWebhookReceiver(HOOK_SECRET)
    with fake.serve() as _base:
        config, port = operator_setup(tmp_path, fake.url, logging={"json": True})
        serve = serve_factory(config, port)
        # A 429 and 503s the adapter retries itself, a round the runner retries, then a permanent 400.
        fake.throttle_next(1)
        fake.fail_next(503, times=4)
        fake.fail_next(400, "invalid contact c_bad@example.com", times=1000)
        assert post(serve.url, join("pEv_bad", "c_bad")).json()["status"] == "stored"
        assert post(serve.url, join("pEv_bad", "c_bad")).json()["status"] == "duplicate"
        assert post(serve.url, join("pEv_sig", "c_x"), secret="wrong").status_code == 401
        wait_for(lambda: "data-letter=" in admin(serve.url, "/status").text)

        # Access: the token as bearer or basic password; nothing without it; webhooks never need it.
        refused = httpx.get(serve.url + "/status")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
        assert httpx.get(serve.url + "/metrics").status_code == 401
        assert httpx.get(serve.url + "/status", auth=("anyone", ADMIN_TOKEN)).status_code == 200
        assert httpx.get(serve.url + "/status", auth=("anyone", "wrong")).status_code == 401
        assert httpx.get(serve.url + "/healthz").status_code == 200

        page = admin(serve.url, "/status").text
        assert "c***@e***.com" in page and "c_bad@example.com" not in page
        assert "invalid contact c***@e***.com" in page and "Replay all for crm" in page
        assert "groups.yaml:" in page  # mappings with file:line

        # The form needs its token: a forged post is refused and changes nothing.
        letter = re.search(r'data-letter="(\d+)"', page).group(1)  # type: ignore[union-attr]
        forged = httpx.post(serve.url + "/status/dead-letters/replay", data={"id": letter, "csrf": "x"},
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
        assert forged.status_code == 403
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
        fake.reset()  # the CRM is fixed
        done = httpx.post(serve.url + "/status/dead-letters/replay", data={"id": letter, "csrf": csrf},
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
        assert done.status_code == 303 and "Replayed" in done.headers["location"]
        wait_for(lambda: fake.is_member("enterprise", "c_bad@example.com"))

        history = run_cli("history", "--config", str(config), "--email", "C_BAD@example.com", "--json")
        assert history.returncode == 0, history.stderr
        [customer] = json.loads(history.stdout)
        attempts = customer["pairs"][0]["attempts"]
        assert [(a["kind"], a["attempt"]) for a in attempts] == [
            ("done", 1),
            ("replayed", 0),
            ("dead", 2),
            ("retry", 1),
        ]
        assert "invalid contact" in attempts[2]["reason"] and customer["pairs"][0]["applied_note"] == "confirmed"
        text = run_cli("history", "--config", str(config), "--customer", "c_bad").stdout
        assert "invalid contact c***@e***.com" in text and "c_bad@example.com" not in text
        missing = run_cli("history", "--config", str(config), "--email", "nobody@example.com")
        assert missing.returncode == 1 and "no customer" in missing.stdout

        metrics = samples(admin(serve.url, "/metrics").text)

        # A refused mapping edit is counted.
        (tmp_path / "mappings" / "groups.yaml").write_text("mappings: [ {group: x, to: [{target: nowhere}]} ]\n")
        wait_for(lambda: samples(admin(serve.url, "/metrics").text).get(
            ("plain_crm_sync_mapping_reload_failures_total", ())) == 1)  # fmt: skip
        assert serve.stop(signal.SIGTERM) == 0

    def value(name: str, **labels: str) -> float:
        return metrics.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("plain_crm_sync_webhooks_total", outcome="stored") == 1
    assert value("plain_crm_sync_webhooks_total", outcome="duplicate") == 1
    assert value("plain_crm_sync_signature_failures_total") == 1
    assert sum(v for (n, _), v in metrics.items() if n == "plain_crm_sync_events_total") == 2
    calls = {dict(labels)["status"]: v for (n, labels), v in metrics.items() if n == "plain_crm_sync_crm_calls_total"}
    assert calls == {"429": 1, "503": 4, "400": 1, "200": 1}
    assert value("plain_crm_sync_rate_limited_total", target="crm") == 1
    assert ("plain_crm_sync_rate_limit_wait_seconds_total", (("target", "crm"),)) in metrics
    assert value("plain_crm_sync_retries_total", target="crm") == 1
    assert value("plain_crm_sync_changes_total", target="crm", outcome="failed") == 1
    assert value("plain_crm_sync_changes_total", target="crm", outcome="done") == 1
    assert value("plain_crm_sync_store_commit_seconds_count", operation="accept") == 2
    assert value("plain_crm_sync_store_commit_seconds_count", operation="finish") == 3  # retry, dead, done
    assert ("plain_crm_sync_backlog", (("target", "crm"),)) in metrics
    assert ("plain_crm_sync_oldest_pending_seconds", (("target", "crm"),)) in metrics
    assert value("plain_crm_sync_dead_letters", target="crm") == 0  # replayed and delivered
    assert value("plain_crm_sync_store_size_bytes") > 0
    assert {name for name, _ in metrics} <= Metrics().names()

    # Every line of the event's journey names it; delivery lines name the target too.
    lines = [json.loads(line) for line in serve.logs().splitlines() if line.startswith("{")]
    journey = [line for line in lines if "pEv_bad" in line.get("event_id", "")]
    assert any(line["logger"] == "connector.delivery" and line.get("target") == "crm" for line in journey)
    assert all(line.get("target") == "crm" for line in journey if line["logger"] == "connector.delivery")
    logs = serve.logs()
    assert "c_bad@example.com" not in logs and SECRET not in logs and ADMIN_TOKEN not in logs


def test_without_a_token_only_loopback_clients_see_the_page(tmp_path: Path) -> None:
    import asyncio

    from connector.app import create_app
    from connector.config import load_config
    from connector.mappings import MappingWatcher, load_mappings
    from connector.store import open_store

    from tests.conftest import write_setup

    config = load_config(write_setup(tmp_path))
    store = open_store(config.store_url, config.base_dir)
    app = create_app(config.plain, store, MappingWatcher(config, load_mappings(config)), Metrics(), lambda t: None)

    async def get(client_host: str, path: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(client_host, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get(path)).status_code

    async def scenario() -> list[int]:
        await store.open()
        try:
            return [await get(h, p) for h in ("10.1.2.3", "127.0.0.1") for p in ("/status", "/metrics", "/healthz")]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [403, 403, 200, 200, 200, 200]
