"""Webhook-target fixtures: its changes, and the adapter for one URL and secret."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector.adapters.base import Change, Outcome
from connector.adapters.webhook import WebhookAdapter, WebhookConfig

from tests.adapters.conftest import make_change, run_started

SECRET = "whsec-0123456789"
URL = "https://hooks.example.com/crm/in?tenant=acme-77"


def change(email: str = "ann@example.com", action: str = "add", **extra: Any) -> Change:
    return make_change(key=email, action=action, customer_id="c_01H", email=email, group_id="cg_01H",
                       event_id="pEv_01H", external_id="ext-9", full_name="Ann Lee", group_name="Enterprise",
                       event_time="2026-03-01T10:00:00.000Z", options={"label": "vip", "tier": 2}, **extra)  # fmt: skip


def apply(changes: Sequence[Change], **config: Any) -> list[Outcome]:
    """``changes`` through a webhook adapter for URL, on a virtual clock (for respx tests)."""
    raw = {"type": "webhook", "url": URL, "secret": SECRET, **config}
    adapter = WebhookAdapter("hook", WebhookConfig.model_validate(raw))
    return run_started(adapter, lambda a: a.apply(changes), virtual=True)
