"""Issue 10, items 4 and 5 through the real `serve`: odd text is synced, stale bodies refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from connector.plain.signature import sign
from connector.testing.fakes.webhook import FakeWebhookReceiver
from connector.testing.plain import membership_event, plain_time, signed_request

from tests.conftest import SECRET, free_port, run_cli, wait_for, write_setup
from tests.odd_text import SURROGATE_NUL

HOOK_SECRET = "odd-text-hook-secret"
CRM_FORM = "\ufffd xy"  # SURROGATE_NUL as CRMs get it: the lone surrogate replaced, NUL removed


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_a_customer_named_with_a_lone_surrogate_and_nul_is_synced(tmp_path: Path, serve_factory: Any) -> None:
    receiver = FakeWebhookReceiver(HOOK_SECRET)
    with receiver.serve() as base_url:
        port = free_port()
        config = write_setup(
            tmp_path, port=port,
            targets={"audit": {"type": "jsonl", "path": "data/sync-log.jsonl"},
                     "hook": {"type": "webhook", "url": "https://hooks.example.com/hooks/crm",
                              "secret": HOOK_SECRET, "base_url": base_url}},
            mappings=[{"group": "enterprise", "to": [{"target": "audit"}, {"target": "hook"}]}],
        )  # fmt: skip
        serve = serve_factory(config, port)
        event = membership_event(
            event_id="pEv_odd", customer_id="c_odd", email=f"{SURROGATE_NUL}@example.com", groups_before=[],
            groups_after=[("cg_ent", "enterprise", SURROGATE_NUL)], timestamp="2026-01-01T00:00:00Z",
            generation="versioned", full_name=SURROGATE_NUL, external_id=SURROGATE_NUL,
        )  # fmt: skip
        body, headers = signed_request(event, SECRET)
        assert b'"fullName":"\\ud83d x\\u0000y"' in body  # the escapes Plain would send
        answer = httpx.post(serve.url + "/webhooks/plain", content=body, headers=headers, timeout=10)
        assert answer.status_code == 200 and answer.json() == {"status": "stored", "event_id": "pEv_odd", "changes": 1}

        log = tmp_path / "data" / "sync-log.jsonl"
        (line,) = wait_for(lambda: _jsonl(log), timeout=20)
        assert (line["customer_id"], line["action"], line["group_key"]) == ("c_odd", "add", "enterprise")
        assert line["email"] == f"{CRM_FORM}@example.com"
        wait_for(lambda: receiver.is_member("enterprise", f"{CRM_FORM}@example.com"), timeout=20)
        status = run_cli("status", "--config", str(config), "--json")
        assert serve.stop() == 0
    (delivery,) = receiver.deliveries
    assert delivery["full_name"] == delivery["external_id"] == delivery["group_name"] == CRM_FORM
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["inbox"] == {"processed": 1} and report["unprocessable"] == []
    assert report["targets"]["audit"]["backlog"] == report["targets"]["hook"]["backlog"] == 0


def test_a_stale_unparseable_signed_body_is_refused(tmp_path: Path, serve_factory: Any) -> None:
    port = free_port()
    serve = serve_factory(write_setup(tmp_path, port=port), port)
    body = b'{"id": "pEv_garbled", "type": "customer.customer_group_memberships_changed", "payl'

    def post(attempt: datetime | None) -> httpx.Response:
        headers = {"Content-Type": "application/json", "Plain-Request-Signature": sign(body, SECRET)}
        if attempt is not None:
            headers["Plain-Webhook-Delivery-Attempt-Timestamp"] = plain_time(attempt)
        return httpx.post(serve.url + "/webhooks/plain", content=body, headers=headers, timeout=10)

    now = datetime.now(UTC)
    stale, future, missing = post(now - timedelta(hours=1)), post(now + timedelta(hours=1)), post(None)
    assert (stale.status_code, future.status_code, missing.status_code) == (401, 401, 401)
    assert httpx.get(serve.url + "/metrics").text.count('plain_crm_sync_webhooks_total{outcome="stale"} 3.0') == 1
    fresh = post(now)
    assert fresh.status_code == 200 and fresh.json()["status"] == "unprocessable"
    assert serve.stop() == 0
