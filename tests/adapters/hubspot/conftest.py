"""HubSpot fixtures: FakeHubSpot on loopback, the adapter, its changes, and respx answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import httpx
import pytest
from connector.adapters.base import Change, Outcome
from connector.adapters.hubspot import HubSpotAdapter, HubSpotConfig
from connector.testing.fakes.hubspot import FakeHubSpot

from tests.adapters.conftest import make_change, run_started

T = TypeVar("T")
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
BASE = "https://api.hubapi.com"
READ = "/crm/v3/objects/contacts/batch/read"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def change(email: str | None = "ann@example.com", action: str = "add", key: str = "k", **options: Any) -> Change:
    return make_change(key=key, action=action, customer_id=f"c_{key}", email=email, group_id="cg_ent",
                       event_id=f"pEv_{key}", full_name="Ann Mary Lee", group_name="Enterprise",
                       options=options or {"list": "123"})  # fmt: skip


def adapter(fake: FakeHubSpot | None = None, **config: Any) -> HubSpotAdapter:
    """An adapter with TOKEN, talking to ``fake`` where given (else HubSpot's host, for respx)."""
    raw = {"type": "hubspot", "token": TOKEN, **config}
    if fake is not None:
        assert fake.base_url
        raw["base_url"] = fake.base_url
    return HubSpotAdapter("hubspot", HubSpotConfig.model_validate(raw))


def run(target: HubSpotAdapter, body: Callable[[HubSpotAdapter], Awaitable[T]]) -> T:
    """``body(target)`` on a virtual clock: for respx tests, whose retry waits cost nothing."""
    return run_started(target, body, virtual=True)


def apply(changes: Sequence[Change], target: HubSpotAdapter | None = None) -> list[Outcome]:
    return run(target or adapter(), lambda a: a.apply(changes))  # type: ignore[no-any-return]


def contacts(known: dict[str, str]) -> Callable[[httpx.Request], httpx.Response]:
    """A batch/read that knows ``known`` (email -> id) and answers 207 for the rest, like HubSpot."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked = [i["id"] for i in json.loads(request.content)["inputs"]]
        results = [{"id": known[e], "properties": {"email": e}} for e in asked if e in known]
        missing = [e for e in asked if e not in known]
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if not missing:
            return httpx.Response(200, json=body)
        body["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "not found",
                           "context": {"ids": missing}}]  # fmt: skip
        return httpx.Response(207, json=body)

    return answer


def members(missing: Sequence[str] = ()) -> httpx.Response:
    return httpx.Response(200, json={"recordsIdsAdded": [], "recordIdsRemoved": [], "recordIdsMissing": list(missing)})


def pinned(request: httpx.Request, method: str, path: str) -> Any:
    """Method, URL, auth and content type as HubSpot wants them; returns the JSON body."""
    assert request.method == method
    assert str(request.url) == BASE + path
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    if request.content:
        assert request.headers["Content-Type"] == "application/json"
    return json.loads(request.content) if request.content else None


@pytest.fixture
def fake_options() -> dict[str, Any]:
    """FakeHubSpot's keyword arguments; a module overrides this fixture for other limits."""
    return {}


@pytest.fixture
def fake(fake_options: dict[str, Any]) -> Iterator[FakeHubSpot]:
    server = FakeHubSpot(TOKEN, **fake_options)
    with server.serve():
        yield server
