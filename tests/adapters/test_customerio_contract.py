"""Contract: every call the Customer.io adapter makes, and every answer the fake gives,
fits the Track API description (../shared/specs/customerio). Without the folder these
tests skip with the reason."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import httpx
import pytest
from connector.adapters.base import Change
from connector.adapters.customerio import CustomerIoAdapter, CustomerIoConfig
from connector.testing.fakes.customerio import FakeCustomerIo

from tests.adapters.spec_contract import SpecContract, load_spec

SITE, KEY, SEGMENT = "site-contract", "cio-track-key-contract-01", 7


@pytest.fixture(scope="module")
def contract() -> SpecContract:
    return SpecContract(load_spec("customerio/journeys-track-api.mirror.json"), "customerio-track")


@pytest.fixture
def fake() -> Iterator[FakeCustomerIo]:
    server = FakeCustomerIo(SITE, KEY, segments={SEGMENT})
    with server.serve():
        yield server


def _change(email: str, action: str, external_id: str | None) -> Change:
    return Change(key=email, action=action, customer_id="c", email=email, group_id="cg",  # type: ignore[arg-type]
                  group_key="g", event_id="pEv", options={"segment": str(SEGMENT)}, external_id=external_id)  # fmt: skip


def test_every_request_fits_the_description(contract: SpecContract, fake: FakeCustomerIo) -> None:
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
    for request in fake.requests:
        assert request.headers["authorization"].startswith("Basic ")
        contract.check_request(request)


def test_removal_by_id_is_what_the_description_allows(contract: SpecContract) -> None:
    """The reason the adapter removes by ``id``: the spec says so in the operation's words."""
    op, params = contract.operation("POST", "/api/v1/segments/1/remove_customers")
    assert "requires people to have `id` attributes" in op["description"]
    id_type = next(p for p in params if p["name"] == "id_type")
    assert id_type["schema"]["default"] == "id"
    add, _ = contract.operation("POST", "/api/v1/segments/1/add_customers")
    assert "`id`, `email`, or `cio_id`" in add["description"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["properties"]["ids"]["maxItems"] == 1000


def test_every_answer_of_the_fake_fits_the_description(contract: SpecContract, fake: FakeCustomerIo) -> None:
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
            contract.check_response(method, path, response.status_code, response.json())
        refused = client.get("/api/v1/accounts/region", headers={"Authorization": "Basic d3Jvbmc6d3Jvbmc="})
        contract.check_response("GET", "/api/v1/accounts/region", refused.status_code, refused.json())
    assert statuses == [200, 200, 400, 200] and refused.status_code == 401
