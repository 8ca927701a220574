"""Contract: every call the adapter makes, and every answer FakeHubSpot gives, fits HubSpot's OpenAPI.

The specs are HubSpot's own files, kept outside the repository (../shared/specs/hubspot,
proprietary: read at test time, never copied). Without them these tests skip.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from connector.adapters.base import Change
from connector.adapters.hubspot import HubSpotAdapter, HubSpotConfig
from connector.testing.fakes.hubspot import FakeHubSpot
from jsonschema import Draft7Validator

SPECS = Path(__file__).resolve().parents[4] / "shared" / "specs" / "hubspot"
SPEC_FILES = ("contacts-v3.json", "lists-v3.json")
TOKEN = "pat-na1-contract-0123456789"


@dataclass
class Exchange:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    answer: Any


@dataclass
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]
    op: dict[str, Any]


@pytest.fixture(scope="module")
def operations() -> list[Operation]:
    missing = [name for name in SPEC_FILES if not (SPECS / name).is_file()]
    if missing:
        pytest.skip(f"../shared/specs not present: {SPECS} lacks {', '.join(missing)}")
    found = []
    for name in SPEC_FILES:
        spec = json.loads((SPECS / name).read_text())
        for template, item in spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, op in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    found.append(Operation(method.upper(), template, pattern, spec, op))
    return found


def operation_for(operations: list[Operation], exchange: Exchange) -> Operation:
    candidates = [o for o in operations if o.method == exchange.method and o.pattern.match(exchange.path)]
    assert candidates, f"{exchange.method} {exchange.path} is not an operation in HubSpot's spec"
    return min(candidates, key=lambda o: o.template.count("{"))  # literal segments beat parameters


def check(spec: dict[str, Any], schema: dict[str, Any], value: Any, what: str) -> None:
    # OpenAPI 3.0 schemas are JSON Schema with extra keywords; $refs point into the spec.
    validator = Draft7Validator({**schema, "components": spec["components"]})
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(value)]
    assert not problems, f"{what}: {problems[:5]}"


def response_schema(operation: Operation, status: int) -> dict[str, Any]:
    responses = operation.op["responses"]
    answer = responses.get(str(status)) or responses["default"]
    if "$ref" in answer:
        answer = operation.spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    content = answer["content"]
    return dict(next(iter(content.values()))["schema"])


# -- one scenario that makes every call the adapter knows ---------------------------------


def change(email: str, action: str, key: str, options: dict[str, str]) -> Change:
    return Change(key=key, action=action, customer_id=f"c_{key}", email=email,  # type: ignore[arg-type]
                  group_id="cg_1", group_key="ent", event_id=f"pEv_{key}", full_name="Ann Lee",
                  options=options)  # fmt: skip


async def scenario(fake: FakeHubSpot, base_url: str, list_id: str, exchanges: list[Exchange]) -> None:
    async def record(response: httpx.Response) -> None:
        await response.aread()
        request = response.request
        body = json.loads(request.content) if request.content else None
        exchanges.append(Exchange(request.method, request.url.raw_path.decode().split("?")[0],
                                  dict(request.url.params), body, response.status_code, response.json()))  # fmt: skip

    raw = {"type": "hubspot", "token": TOKEN, "base_url": base_url, "create_missing_contacts": True}
    adapter = HubSpotAdapter("hubspot", HubSpotConfig.model_validate(raw))
    await adapter.start()
    adapter.client.event_hooks["response"].append(record)
    try:
        by_id, by_name = {"list": list_id}, {"list_name": "Enterprise EU"}
        assert await adapter.check_online([by_id, by_name, {"list": "999"}])
        await adapter.apply([
            change("ann@example.com", "add", "1", by_id), change("new@example.com", "add", "2", by_name),
            change("bob@example.com", "remove", "3", by_id), change("bad@", "add", "4", by_id),
        ])  # fmt: skip
        fake.delete_contact("ann@example.com")  # its cached id now answers "missing"
        await adapter.apply([
            change("ann@example.com", "add", "5", by_id), change("x@example.com", "add", "6", {"list": "999"}),
        ])  # fmt: skip
    finally:
        await adapter.close()


@pytest.fixture(scope="module")
def exchanges(operations: list[Operation]) -> Iterator[list[Exchange]]:
    fake = FakeHubSpot(TOKEN, unlimited=True)
    list_id = fake.seed_list("Enterprise EU")
    fake.seed_contact("ann@example.com")
    fake.lists[list_id]["members"].add(fake.seed_contact("bob@example.com"))
    seen: list[Exchange] = []
    with fake.serve() as base_url:
        asyncio.run(scenario(fake, base_url, list_id, seen))
    yield seen


def test_the_scenario_covers_every_call_the_adapter_makes(
    operations: list[Operation], exchanges: list[Exchange]
) -> None:
    used = {(o.method, o.template) for o in (operation_for(operations, e) for e in exchanges)}
    assert used == {
        ("GET", "/crm/v3/objects/contacts"),
        ("POST", "/crm/v3/objects/contacts/batch/read"),
        ("POST", "/crm/v3/objects/contacts/batch/upsert"),
        ("GET", "/crm/v3/lists/{listId}"),
        ("GET", "/crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}"),
        ("PUT", "/crm/v3/lists/{listId}/memberships/add"),
        ("PUT", "/crm/v3/lists/{listId}/memberships/remove"),
    }
    assert {e.status for e in exchanges} >= {200, 207, 404}, "answers should include partial and not-found ones"


def test_requests_use_only_documented_parameters_and_valid_bodies(
    operations: list[Operation], exchanges: list[Exchange]
) -> None:
    for exchange in exchanges:
        operation = operation_for(operations, exchange)
        what = f"{exchange.method} {exchange.path}"
        documented = {p["name"] for p in operation.op.get("parameters", []) if p["in"] == "query"}
        assert set(exchange.query) <= documented, f"{what}: undocumented query {set(exchange.query) - documented}"
        body_spec = operation.op.get("requestBody")
        if body_spec is None:
            assert exchange.body is None, f"{what} takes no body"
            continue
        assert exchange.body is not None or not body_spec.get("required"), f"{what} needs a body"
        check(operation.spec, body_spec["content"]["application/json"]["schema"], exchange.body, f"{what} body")


def test_fake_answers_fit_the_documented_responses(operations: list[Operation], exchanges: list[Exchange]) -> None:
    for exchange in exchanges:
        operation = operation_for(operations, exchange)
        what = f"{exchange.method} {exchange.path} -> {exchange.status}"
        check(operation.spec, response_schema(operation, exchange.status), exchange.answer, what)
