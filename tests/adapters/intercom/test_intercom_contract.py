"""Contract: every call the adapter makes, and every answer the fake gives, fits Intercom's
own OpenAPI description (2.14). The description is reference material outside the repo
(../shared/specs); without it these tests skip, so a fresh clone still passes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from connector.adapters.base import Change
from connector.adapters.intercom import IntercomAdapter
from connector.adapters.intercom_shapes import SEARCH_EMAILS, email_query
from connector.testing.fakes.intercom import FakeIntercom

from tests.adapters.conftest import run_started
from tests.adapters.contract import Contract, resolve
from tests.adapters.intercom.conftest import HEADERS, change, intercom_adapter


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load("intercom", "api.intercom.io-2.14.yaml")


def check_response(contract: Contract, method: str, path: str, response: httpx.Response) -> list[str]:
    # Statuses the description omits (409, 429…) answer in Intercom's one error shape.
    return contract.response_problems(
        method, path, response.status_code, response.json(), undescribed=contract.component("error")
    )


def _exercise(fake: FakeIntercom, role: str) -> None:
    """Every call the adapter can make: search, tag lookup, attach, detach (attached and
    not), create (and its 409), /me."""
    fake.seed_contact("here@example.com")
    fake.seed_contact("also@example.com")
    fake.seed_contact("lagging@example.com", search_misses=1)

    async def main(adapter: IntercomAdapter) -> None:
        assert await adapter.check_online([{"tag": "Enterprise"}]) == []
        batch = [
            _change("here@example.com", "add", "Enterprise"),
            _change("also@example.com", "add", "Enterprise"),
            _change("new@example.com", "add", "Beta", "u-1"),
            _change("lagging@example.com", "add", "Beta"),
            _change("here@example.com", "remove", "Beta"),
        ]
        outcomes = await adapter.apply(batch)
        outcomes += await adapter.apply([_change("here@example.com", "remove", "Enterprise")])
        assert [o.kind for o in outcomes] == ["done"] * 6, outcomes

    run_started(intercom_adapter(fake, create_missing_contacts=True, contact_role=role), main)


def _change(email: str, action: str, tag: str, external_id: str | None = None) -> Change:
    return change(email, action, tag, external_id, key=email, full_name="Grace Hopper")


@pytest.mark.parametrize("role", ["user", "lead"])
def test_every_request_fits_the_description(contract: Contract, fake: FakeIntercom, role: str) -> None:
    _exercise(fake, role)
    seen = {(r.method, re.sub(r"/[0-9a-f]{24}|/\d+$", "/{id}", r.path)) for r in fake.requests}
    assert seen == {
        ("GET", "/me"),
        ("POST", "/contacts/search"),
        ("POST", "/tags"),
        ("POST", "/contacts"),
        ("POST", "/contacts/{id}/tags"),
        ("DELETE", "/contacts/{id}/tags/{id}"),
    }, seen
    assert 409 in {r.status for r in fake.requests} and 404 in {r.status for r in fake.requests}
    # The bulk calls are among them: an OR search for many emails, a tag call naming many contacts.
    searches = [r.json["query"] for r in fake.log.matching("POST", "/contacts/search")]
    assert any(q.get("operator") == "OR" and len(q["value"]) >= 2 for q in searches), searches
    assert any(len((r.json or {}).get("users", [])) == 2 for r in fake.log.matching("POST", "/tags"))
    assert {f"{r.method} {r.path}": contract.request_problems(r) for r in fake.requests} == {
        f"{r.method} {r.path}": [] for r in fake.requests
    }


def test_the_bulk_calls_stay_within_the_documented_limits(contract: Contract) -> None:
    """15 filters per OR group (the search description) and tagging users by ``id``."""
    search = contract.operation("POST", "/contacts/search")
    assert search is not None
    assert f"max {SEARCH_EMAILS} filters for each AND or OR group" in search.op["description"]
    query = {"query": email_query([f"p{i}@example.com" for i in range(SEARCH_EMAILS)])}
    schema = search.body_schema("application/json")
    assert schema is not None and contract.schema_problems(schema, query, "OR search", search.document) == []
    document = contract.documents[0]
    users = resolve(document.spec, contract.component("tag_multiple_users_request"))
    assert set(users["required"]) == {"name", "users"} and "id" in users["properties"]["users"]["items"]["properties"]


def test_every_answer_of_the_fake_fits_the_description(contract: Contract, fake: FakeIntercom) -> None:
    contact = fake.seed_contact("here@example.com", external_id="u-9")
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/me", None),
        ("POST", "/tags", {"name": "Enterprise"}),
        ("POST", "/tags", {"wrong": "field"}),
        ("POST", "/contacts/search", {"query": {"field": "email", "operator": "=", "value": "here@example.com"}}),
        ("POST", "/contacts/search", {"query": {"field": "email", "operator": "=", "value": "nobody@example.com"}}),
        ("POST", "/contacts", {"role": "user", "email": "new@example.com", "name": "N", "external_id": "u-1"}),
        ("POST", "/contacts", {"role": "user", "email": "here@example.com"}),
        ("POST", f"/contacts/{contact}/tags", {"id": fake.tag_id("Enterprise")}),
        ("POST", f"/contacts/{contact}/tags", {"id": "999999"}),
        ("POST", "/contacts/0000000000000000000000ff/tags", {"id": fake.tag_id("Enterprise")}),
        ("DELETE", f"/contacts/{contact}/tags/{fake.tag_id('Enterprise')}", None),
        ("DELETE", f"/contacts/{contact}/tags/{fake.tag_id('Enterprise')}", None),
    ]
    statuses = []
    with httpx.Client(base_url=str(fake.base_url), headers=HEADERS) as client:
        for method, path, body in calls:
            response = client.request(method, path, json=body)
            statuses.append(response.status_code)
            assert check_response(contract, method, path, response) == []
        unauthorised = client.get("/me", headers={"Authorization": "Bearer nope-nope-nope"})
        assert check_response(contract, "GET", "/me", unauthorised) == []
    assert statuses == [200, 200, 400, 200, 200, 200, 409, 200, 404, 404, 200, 404]
    assert unauthorised.status_code == 401
