"""The webhook target passes the shared adapter conformance suite."""

from __future__ import annotations

from typing import Any

from connector.adapters.webhook import WebhookAdapter
from connector.testing.conformance import AdapterConformance
from connector.testing.fakes.webhook import FakeWebhookReceiver

SECRET = "conformance-secret-1"
RECEIVER_TOKEN = "receiver-token-42"


class TestWebhookConformance(AdapterConformance):
    adapter_class = WebhookAdapter
    contacts_can_be_missing = False

    def make_fake(self) -> FakeWebhookReceiver:
        return FakeWebhookReceiver(SECRET)

    def target_config(self, base_url: str, *, create_missing: bool = False) -> dict[str, Any]:
        return {
            "type": "webhook",
            "url": "https://hooks.example.com/hooks/crm",
            "secret": SECRET,
            "headers": {"Authorization": f"Bearer {RECEIVER_TOKEN}"},
            "base_url": base_url,
        }

    def mapping_options(self) -> dict[str, Any]:
        return {"label": "conformance"}

    def is_member(self, fake: FakeWebhookReceiver, email: str) -> bool:  # type: ignore[override]
        return fake.is_member(self.group_key, email)

    def arrange_rejection(self, fake: FakeWebhookReceiver, email: str) -> bool:  # type: ignore[override]
        fake.reject.add(email)
        return True
