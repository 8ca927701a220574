"""Every request the Brevo adapter sends is one Brevo's published spec describes.

The spec (Swagger 2.0, from Brevo's Go SDK) lives outside the repository in
``../shared/specs/brevo`` (see SOURCES.md there); without it these tests skip, so a fresh
clone still passes. The requests are the ones FakeBrevo recorded while the real adapter
ran, checked by :class:`tests.adapters.contract.Contract`: method, path under
``basePath``, path and query parameters, the ``api-key`` header, and the JSON body against
the operation's body schema, with no property the schema does not name.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from connector.adapters.base import Change
from connector.adapters.brevo import BrevoAdapter, BrevoConfig
from connector.testing.fakes.brevo import FakeBrevo
from connector.testing.fakes.log import RecordedRequest

from tests.adapters.contract import Contract

KEY = "xkeysib-contract-0123456789abcdef-AbCd"
USED = {"getAccount", "getList", "addContactToList", "removeContactFromList", "getContactInfo", "createContact"}


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load("brevo")


@pytest.fixture(scope="module")
def recorded() -> list[RecordedRequest]:
    """A realistic run: check, add (one already in, one unknown), remove, then with creation."""
    fake = FakeBrevo(KEY, lists={12: "Enterprise"})
    fake.seed_contact("ann@example.com")
    fake.seed_contact("bea@example.com", lists=(12,))

    def change(email: str, action: str = "add") -> Change:
        return Change(key=email + action, action=action, customer_id="c", email=email,  # type: ignore[arg-type]
                      group_id="cg", group_key="g", event_id="pEv", options={"list": 12})  # fmt: skip

    async def run(base_url: str, **extra: Any) -> None:
        config = BrevoConfig.model_validate({"type": "brevo", "api_key": KEY, "base_url": base_url, **extra})
        adapter = BrevoAdapter("brevo", config)
        await adapter.start()
        try:
            assert await adapter.check_online([{"list": 12}]) == []
            batch = [change("Ann@example.com"), change("bea@example.com"), change("new@example.com")]
            outcomes = await adapter.apply(batch)
            assert [o.kind for o in outcomes] == ["done", "done", "done" if extra else "skipped"]
            assert [o.kind for o in await adapter.apply([change("ann@example.com", "remove")])] == ["done"]
        finally:
            await adapter.close()

    with fake.serve() as base_url:
        asyncio.run(run(base_url))
        asyncio.run(run(base_url, create_missing_contacts=True))
    return fake.requests


def test_every_recorded_request_is_described_by_the_spec(contract: Contract, recorded: list[RecordedRequest]) -> None:
    problems = {f"{r.method} {r.path}": contract.request_problems(r, closed=True) for r in recorded}
    assert {call: found for call, found in problems.items() if found} == {}
    used = {found.operation_id for r in recorded if (found := contract.operation(r.method, r.path))}
    assert used == USED, "the run should exercise every operation the adapter uses"


def test_the_checker_catches_what_the_spec_forbids(contract: Contract, recorded: list[RecordedRequest]) -> None:
    add = next(r for r in recorded if r.path.endswith("/contacts/add"))
    too_many = {"emails": [f"p{i}@example.com" for i in range(151)]}
    bad = [
        RecordedRequest(**{**vars(add), "json": too_many}),
        RecordedRequest(**{**vars(add), "json": {"emails": ["a@b.c"], "email": "typo"}}),
        RecordedRequest(**{**vars(add), "path": add.path.replace("/add", "/append")}),
        RecordedRequest(**{**vars(add), "path": add.path.replace("/12/", "/twelve/")}),
        RecordedRequest(**{**vars(add), "headers": {k: v for k, v in add.headers.items() if k != "api-key"}}),
    ]
    found = [contract.request_problems(r, closed=True) for r in bad]
    assert all(found), found


def test_the_fakes_answers_have_the_specs_shapes(contract: Contract) -> None:
    def check(name: str, body: Any) -> None:
        assert contract.schema_problems(contract.component(name), body, name) == []

    fake = FakeBrevo(KEY, lists={12: "Enterprise"}, unlimited=True)
    fake.seed_contact("ann@example.com")
    headers = {"api-key": KEY}
    with fake.serve() as base_url:
        added = httpx.post(
            f"{base_url}/v3/contacts/lists/12/contacts/add",
            headers=headers,
            json={"emails": ["ann@example.com", "x@example.com"]},
        )
        errors = [
            httpx.get(f"{base_url}/v3/account"),
            httpx.get(f"{base_url}/v3/contacts/lists/99", headers=headers),
            httpx.post(
                f"{base_url}/v3/contacts/lists/12/contacts/add", headers=headers, json={"emails": ["ann@example.com"]}
            ),
        ]
    assert added.status_code == 201
    check("postContactInfo", added.json())
    assert [e.status_code for e in errors] == [401, 404, 400]
    for answer in errors:
        check("errorModel", answer.json())
