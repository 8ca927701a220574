"""Mailchimp fixtures: FakeMailchimp on loopback, the adapter's config and its changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from connector.adapters.base import Change
from connector.adapters.mailchimp import MailchimpConfig
from connector.testing.fakes.mailchimp import FakeMailchimp

from tests.adapters.conftest import make_change

KEY = "0123456789abcdef0123456789abcdef-us21"
AUD = "d4e5f6a7b8"


@pytest.fixture
def fake() -> Iterator[FakeMailchimp]:
    server = FakeMailchimp(KEY, audiences={AUD})
    with server.serve():
        yield server


def config(**extra: Any) -> MailchimpConfig:
    """The adapter's config for KEY and AUD, with ``extra`` keys (``base_url``…)."""
    return MailchimpConfig.model_validate({"type": "mailchimp", "api_key": KEY, "audience_id": AUD, **extra})


def change(
    email: str | None = "ann@example.com",
    tag: str = "Enterprise",
    action: str = "add",
    at: str | None = "2026-03-01T10:00:00.000Z",
    key: str = "k",
) -> Change:
    return make_change(key=key, action=action, email=email, options={"tag": tag}, event_time=at)
