"""Contract: every call the adapter makes, and every answer FakeHubSpot gives, fits HubSpot's OpenAPI.

The specs are HubSpot's own files, kept outside the repository (../shared/specs/hubspot,
proprietary: read at test time, never copied). Without them these tests skip.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from connector.testing.fakes.hubspot import FakeHubSpot
from connector.testing.fakes.log import RecordedRequest

from tests.adapters.contract import Contract, Operation
from tests.adapters.hubspot.conftest import TOKEN, change
from tests.adapters.hubspot.conftest import adapter as hubspot_adapter

SPEC_FILES = ("contacts-v3.json", "lists-v3.json")


@dataclass
class Exchange:
    request: RecordedRequest
    answer: Any


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load("hubspot", *SPEC_FILES)


def operation_for(contract: Contract, exchange: Exchange) -> Operation:
    request = exchange.request
    operation = contract.operation(request.method, request.path)
    assert operation, f"{request.method} {request.path} is not an operation in HubSpot's spec"
    return operation


# -- one scenario that makes every call the adapter knows ---------------------------------


async def scenario(fake: FakeHubSpot, base_url: str, list_id: str, exchanges: list[Exchange]) -> None:
    async def record(response: httpx.Response) -> None:
        await response.aread()
        request = response.request
        recorded = RecordedRequest(
            request.method, request.url.raw_path.decode().split("?")[0], dict(request.url.params),
            {k.lower(): v for k, v in request.headers.items()}, request.content,
            json.loads(request.content) if request.content else None, 0.0, response.status_code,
        )  # fmt: skip
        exchanges.append(Exchange(recorded, response.json()))

    adapter = hubspot_adapter(fake, create_missing_contacts=True)
    await adapter.start()
    adapter.client.event_hooks["response"].append(record)
    try:
        by_id, by_name = {"list": list_id}, {"list_name": "Enterprise EU"}
        assert await adapter.check_online([by_id, by_name, {"list": "999"}])
        await adapter.apply([
            change("ann@example.com", "add", "1", **by_id), change("new@example.com", "add", "2", **by_name),
            change("bob@example.com", "remove", "3", **by_id), change("bad@", "add", "4", **by_id),
        ])  # fmt: skip
        fake.delete_contact("ann@example.com")  # its cached id now answers "missing"
        await adapter.apply([
            change("ann@example.com", "add", "5", **by_id), change("x@example.com", "add", "6", list="999"),
        ])  # fmt: skip
    finally:
        await adapter.close()


@pytest.fixture(scope="module")
def exchanges(contract: Contract) -> Iterator[list[Exchange]]:
    fake = FakeHubSpot(TOKEN, unlimited=True)
    list_id = fake.seed_list("Enterprise EU")
    fake.seed_contact("ann@example.com")
    fake.lists[list_id]["members"].add(fake.seed_contact("bob@example.com"))
    seen: list[Exchange] = []
    with fake.serve() as base_url:
        asyncio.run(scenario(fake, base_url, list_id, seen))
    yield seen


def test_the_scenario_covers_every_call_the_adapter_makes(contract: Contract, exchanges: list[Exchange]) -> None:
    used = {(o.method, o.template) for o in (operation_for(contract, e) for e in exchanges)}
    assert used == {
        ("GET", "/crm/v3/objects/contacts"),
        ("POST", "/crm/v3/objects/contacts/batch/read"),
        ("POST", "/crm/v3/objects/contacts/batch/upsert"),
        ("GET", "/crm/v3/lists/{listId}"),
        ("GET", "/crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}"),
        ("PUT", "/crm/v3/lists/{listId}/memberships/add"),
        ("PUT", "/crm/v3/lists/{listId}/memberships/remove"),
    }
    statuses = {e.request.status for e in exchanges}
    assert statuses >= {200, 207, 404}, "answers should include partial and not-found ones"


def test_requests_use_only_documented_parameters_and_valid_bodies(
    contract: Contract, exchanges: list[Exchange]
) -> None:
    problems = {f"{e.request.method} {e.request.path}": contract.request_problems(e.request) for e in exchanges}
    assert {call: found for call, found in problems.items() if found} == {}


def test_fake_answers_fit_the_documented_responses(contract: Contract, exchanges: list[Exchange]) -> None:
    problems = [
        contract.response_problems(e.request.method, e.request.path, e.request.status or 0, e.answer) for e in exchanges
    ]
    assert [found for found in problems if found] == []
