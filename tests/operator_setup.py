"""A `serve` with an admin token, a jsonl audit target and a fake webhook CRM: what the
operator-view tests (HTTP and browser) drive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from connector.testing.plain import membership_event, signed_request

from tests.conftest import SECRET, free_port, write_setup

ADMIN_TOKEN = "adm-Token-for-tests-8f2c"
HOOK_SECRET = "hook-secret-for-tests"
ENT = ("cg_ent", "enterprise", "Enterprise")


def operator_setup(folder: Path, crm_url: str, **extra: Any) -> tuple[Path, int]:
    port = free_port()
    config = write_setup(
        folder, port=port,
        targets={"audit": {"type": "jsonl", "path": "data/sync-log.jsonl"},
                 "crm": {"type": "webhook", "url": crm_url, "secret": HOOK_SECRET}},
        mappings=[{"group": "enterprise", "to": [{"target": "crm"}]}],
        server={"host": "127.0.0.1", "port": port, "admin_token": ADMIN_TOKEN},
        delivery={"poll_interval_seconds": 0.1, "backoff_base_seconds": 0.05, "backoff_max_seconds": 0.2,
                  "max_attempts": 3},
        **extra,
    )  # fmt: skip
    return config, port


def join(event_id: str, customer: str, ts: str = "2026-01-01T00:00:01Z") -> dict[str, Any]:
    return membership_event(
        event_id=event_id, customer_id=customer, email=f"{customer}@example.com", groups_before=[],
        groups_after=[ENT], timestamp=ts, generation="versioned",  # type: ignore[arg-type]
    )  # fmt: skip


def post(url: str, ev: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    body, headers = signed_request(ev, secret)
    return httpx.post(url + "/webhooks/plain", content=body, headers=headers, timeout=10)


def admin(url: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10, **kwargs)
