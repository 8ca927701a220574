"""Klaviyo fixtures: FakeKlaviyo on loopback, the adapter, its changes, and respx answers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from connector.adapters.base import Change, Outcome
from connector.adapters.klaviyo import KlaviyoAdapter, KlaviyoConfig
from connector.testing.fakes.klaviyo import FakeKlaviyo

from tests.adapters.conftest import make_change, run_started

KEY = "pk_respx_0123456789abcdef"
API = "https://a.klaviyo.com"
LIST = "Y6nRLr"
MEMBERS = f"{API}/api/lists/{LIST}/relationships/profiles"


def profiles(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"data": [{"type": "profile", "id": pid, "attributes": {"email": e}} for e, pid in pairs], "links": {}}


def make(**config: Any) -> KlaviyoAdapter:
    return KlaviyoAdapter("klaviyo", KlaviyoConfig.model_validate({"type": "klaviyo", "api_key": KEY, **config}))


def apply(batches: Sequence[Sequence[Change]], **config: Any) -> list[list[Outcome]]:
    """Each batch through one adapter, on a virtual clock (respx tests' waits cost nothing)."""

    async def body(adapter: KlaviyoAdapter) -> list[list[Outcome]]:
        return [await adapter.apply(batch) for batch in batches]

    return run_started(make(**config), body, virtual=True)


def change(email: str | None, action: str = "add", list_id: str = LIST) -> Change:
    return make_change(key=str(email), action=action, customer_id="c", email=email, group_id="cg",
                       group_key="g", event_id="pEv", options={"list": list_id})  # fmt: skip


@pytest.fixture
def fake() -> Iterator[FakeKlaviyo]:
    server = FakeKlaviyo(KEY, lists={LIST})
    with server.serve():
        yield server
