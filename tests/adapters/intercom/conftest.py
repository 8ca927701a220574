"""Intercom fixtures: FakeIntercom on loopback, the adapter's config and its changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from connector.adapters.base import Change
from connector.adapters.intercom import IntercomAdapter, IntercomConfig
from connector.testing.fakes.intercom import FakeIntercom

from tests.adapters.conftest import make_change

TOKEN = "dG9rOmZha2VfaW50ZXJjb21fdG9rZW4xMjM0NQ=="
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14", "Accept": "application/json"}


@pytest.fixture
def fake_options() -> dict[str, Any]:
    """FakeIntercom's keyword arguments; a module overrides this fixture for other limits."""
    return {}


@pytest.fixture
def fake(fake_options: dict[str, Any]) -> Iterator[FakeIntercom]:
    server = FakeIntercom(TOKEN, **fake_options)
    with server.serve():
        yield server


def intercom_adapter(fake: FakeIntercom | None = None, **config: Any) -> IntercomAdapter:
    """An adapter with TOKEN, talking to ``fake`` where given."""
    raw: dict[str, Any] = {"type": "intercom", "token": TOKEN, **config}
    if fake is not None:
        raw["base_url"] = fake.base_url
    return IntercomAdapter("intercom", IntercomConfig.model_validate(raw))


def change(
    email: str | None,
    action: str = "add",
    tag: str = "Conformance Tag",
    external_id: str | None = None,
    *,
    key: str = "k",
    full_name: str | None = "Ada Lovelace",
) -> Change:
    return make_change(key=key, action=action, email=email, group_key="ent", options={"tag": tag},
                       external_id=external_id, full_name=full_name)  # fmt: skip
