"""Contract: every call the Customer.io adapter makes, and every answer the fake gives,
fits the Track API description (../shared/specs/customerio). Without the folder these
tests skip with the reason."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest
from connector.adapters.base import Change
from connector.adapters.customerio import CustomerIoAdapter, CustomerIoConfig
from connector.testing.fakes.customerio import FakeCustomerIo

from tests.adapters.contract import Contract
from tests.adapters.customerio.conftest import KEY, SEGMENT, SITE


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load("customerio", "journeys-track-api.mirror.json")


def _change(email: str, action: str, external_id: str | None) -> Change:
    return Change(key=email, action=action, customer_id="c", email=email, group_id="cg",  # type: ignore[arg-type]
                  group_key="g", event_id="pEv", options={"segment": str(SEGMENT)}, external_id=external_id)  # fmt: skip


def test_every_request_fits_the_description(contract: Contract, fake: FakeCustomerIo) -> None:
    fake.seed_person(id="u-1", email="one@example.com")
    fake.seed_person(id="u-2", email="two@example.com")

    async def main() -> None:
        for identify_by in ("email", "external_id"):
            raw = {"type": "customerio", "site_id": SITE, "api_key": KEY, "base_url": fake.base_url,
                   "identify_by": identify_by}  # fmt: skip
            adapter = CustomerIoAdapter("cio", CustomerIoConfig.model_validate(raw))
            await adapter.start()
            try:
                assert await adapter.check_online([{"segment": str(SEGMENT)}]) == []
                batch = [_change("one@example.com", "add", "u-1"), _change("two@example.com", "remove", "u-2")]
                assert [o.kind for o in await adapter.apply(batch)] == ["done", "done"]
            finally:
                await adapter.close()

    asyncio.run(main())
    calls = [(r.method, r.path, r.query.get("id_type"), r.json) for r in fake.requests]
    assert calls == [
        ("GET", "/api/v1/accounts/region", None, None),
        ("POST", f"/api/v1/segments/{SEGMENT}/add_customers", "email", {"ids": ["one@example.com"]}),
        ("POST", f"/api/v1/segments/{SEGMENT}/remove_customers", "id", {"ids": ["u-2"]}),
        ("GET", "/api/v1/accounts/region", None, None),
        ("POST", f"/api/v1/segments/{SEGMENT}/add_customers", "id", {"ids": ["u-1"]}),
        ("POST", f"/api/v1/segments/{SEGMENT}/remove_customers", "id", {"ids": ["u-2"]}),
    ]
    assert all(r.headers["authorization"].startswith("Basic ") for r in fake.requests)
    problems = [contract.request_problems(r) for r in fake.requests]
    assert problems == [[]] * len(fake.requests)


def test_removal_by_id_is_what_the_description_allows(contract: Contract) -> None:
    """The reason the adapter removes by ``id``: the spec says so in the operation's words."""
    remove = contract.operation("POST", "/api/v1/segments/1/remove_customers")
    add = contract.operation("POST", "/api/v1/segments/1/add_customers")
    assert remove is not None and add is not None
    assert "requires people to have `id` attributes" in remove.op["description"]
    id_type = next(p for p in remove.parameters("query") if p["name"] == "id_type")
    assert id_type["schema"]["default"] == "id"
    assert "`id`, `email`, or `cio_id`" in add.op["description"]
    body = remove.body_schema("application/json")
    assert body is not None and body["properties"]["ids"]["maxItems"] == 1000


def test_every_answer_of_the_fake_fits_the_description(contract: Contract, fake: FakeCustomerIo) -> None:
    fake.seed_person(id="u-1", email="one@example.com")
    auth = base64.b64encode(f"{SITE}:{KEY}".encode()).decode()
    add = f"/api/v1/segments/{SEGMENT}/add_customers"
    calls = [
        ("GET", "/api/v1/accounts/region", None, None),
        ("POST", add, {"id_type": "email"}, {"ids": ["one@example.com"]}),
        ("POST", add, None, {"ids": []}),
        ("POST", f"/api/v1/segments/{SEGMENT}/remove_customers", {"id_type": "id"}, {"ids": ["u-1"]}),
    ]
    statuses = []
    with httpx.Client(base_url=str(fake.base_url), headers={"Authorization": f"Basic {auth}"}) as client:
        for method, path, params, body in calls:
            response = client.request(method, path, params=params, json=body)
            statuses.append(response.status_code)
            assert contract.response_problems(method, path, response.status_code, response.json()) == []
        refused = client.get("/api/v1/accounts/region", headers={"Authorization": "Basic d3Jvbmc6d3Jvbmc="})
        region = "/api/v1/accounts/region"
        assert contract.response_problems("GET", region, refused.status_code, refused.json()) == []
    assert statuses == [200, 200, 400, 200] and refused.status_code == 401
