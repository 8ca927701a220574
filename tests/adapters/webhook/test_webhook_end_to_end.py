"""The webhook target inside the real service: Plain event in, signed POST out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from connector.testing.fakes.webhook import FakeWebhookReceiver
from connector.testing.plain import membership_event, signed_request

from tests.conftest import SECRET as PLAIN_SECRET
from tests.conftest import free_port, wait_for, write_setup

HOOK_SECRET = "end-to-end-hook-secret"
ENT = ("cg_ent", "enterprise", "Enterprise")


def test_serve_delivers_a_membership_change_to_the_webhook_through_trouble(tmp_path: Path, serve_factory: Any) -> None:
    receiver = FakeWebhookReceiver(HOOK_SECRET)
    receiver.fail_next(503)  # retried inside the adapter
    receiver.throttle_next(1.0)  # honoured, then delivered
    with receiver.serve() as base_url:
        port = free_port()
        config = write_setup(
            tmp_path, port=port,
            targets={"hook": {"type": "webhook", "url": "https://hooks.example.com/hooks/crm",
                              "secret": HOOK_SECRET, "base_url": base_url}},
            mappings=[{"group": "enterprise", "to": [{"target": "hook", "label": "vip"}]}],
        )  # fmt: skip
        serve = serve_factory(config, port)
        event = membership_event(
            event_id="pEv_e2e", customer_id="c_e2e", email="ann@example.com", groups_before=[],
            groups_after=[ENT], timestamp="2026-01-01T00:00:00Z", generation="versioned",
        )  # fmt: skip
        body, headers = signed_request(event, PLAIN_SECRET)
        assert httpx.post(serve.url + "/webhooks/plain", content=body, headers=headers).status_code == 200
        wait_for(lambda: receiver.is_member("enterprise", "ann@example.com"), timeout=20)
        assert serve.stop() == 0
    [delivery] = receiver.deliveries
    assert delivery["action"] == "add" and delivery["event_id"] == "pEv_e2e"
    assert delivery["target"] == "hook" and delivery["options"] == {"label": "vip"}
    assert receiver.bad_signatures == 0
    causes = [r.cause for r in receiver.requests]
    assert causes == ["fault", "throttled", "route"]
    throttled, delivered = receiver.requests[1], receiver.requests[2]
    assert delivered.at >= receiver.retry_not_before - 0.05 and delivered.at - throttled.at >= 0.95
