"""Contract: every call the Klaviyo adapter makes, and every answer the fake gives, fits
Klaviyo's own OpenAPI description (revision 2026-07-15, lists and profiles slices in
../shared/specs/klaviyo). Without the folder these tests skip with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from connector.adapters.base import Change
from connector.adapters.klaviyo import DEFAULT_REVISION, KlaviyoAdapter, KlaviyoConfig
from connector.testing.fakes.klaviyo import FakeKlaviyo

from tests.adapters.spec_contract import SpecContract, load_spec

KEY = "pk_contract_0123456789abcdef"
LIST = "Y6nRLr"


class Klaviyo:
    """The two category slices as one API: a path belongs to the slice that describes it."""

    def __init__(self) -> None:
        self.slices = [SpecContract(load_spec(f"klaviyo/{n}.json"), f"klaviyo-{n}") for n in ("lists", "profiles")]

    def of(self, path: str) -> SpecContract:
        return next(s for s in self.slices if s.has(path))


@pytest.fixture(scope="module")
def contract() -> Klaviyo:
    return Klaviyo()


@pytest.fixture
def fake() -> Iterator[FakeKlaviyo]:
    server = FakeKlaviyo(KEY, lists={LIST})
    with server.serve():
        yield server


def _change(email: str, action: str) -> Change:
    return Change(key=email, action=action, customer_id="c", email=email, group_id="cg",  # type: ignore[arg-type]
                  group_key="g", event_id="pEv", options={"list": LIST})  # fmt: skip


def _exercise(fake: FakeKlaviyo) -> None:
    """Every call the adapter can make: key and list checks, lookups (one and many),
    add, remove, a bulk import and a read of its job."""
    fake.seed_profile("here@example.com")
    fake.seed_profile("also@example.com")
    fake.import_delay = 1

    async def main() -> None:
        raw = {"type": "klaviyo", "api_key": KEY, "base_url": fake.base_url, "create_missing_contacts": True}
        adapter = KlaviyoAdapter("klaviyo", KlaviyoConfig.model_validate(raw))
        adapter.import_polls = (0.0,)
        await adapter.start()
        try:
            assert await adapter.check_online([{"list": LIST}]) == []
            first = await adapter.apply([_change("here@example.com", "add")])
            batch = [_change("also@example.com", "add"), _change("new@example.com", "add"),
                     _change("here@example.com", "remove")]  # fmt: skip
            outcomes = first + await adapter.apply(batch)
            assert [o.kind for o in outcomes] == ["done"] * 4, outcomes
        finally:
            await adapter.close()

    asyncio.run(main())


def test_every_request_fits_the_description(contract: Klaviyo, fake: FakeKlaviyo) -> None:
    _exercise(fake)
    seen = {(r.method, r.path.replace(LIST, "{id}")) for r in fake.requests}
    job_reads = {p for m, p in seen if p.startswith("/api/profile-bulk-import-jobs/")}
    assert seen - {("GET", p) for p in job_reads} == {
        ("GET", "/api/profiles"),
        ("GET", "/api/lists/{id}"),
        ("POST", "/api/lists/{id}/relationships/profiles"),
        ("DELETE", "/api/lists/{id}/relationships/profiles"),
        ("POST", "/api/profile-bulk-import-jobs"),
    }, seen
    assert len(job_reads) == 1
    filters = {r.query.get("filter") for r in fake.requests if r.path == "/api/profiles"}
    assert 'equals(email,"here@example.com")' in filters
    assert 'any(email,["also@example.com","new@example.com"])' in filters
    for request in fake.requests:
        assert request.headers["revision"] == DEFAULT_REVISION
        contract.of(request.path).check_request(request)


def test_the_default_revision_is_the_one_the_spec_documents(contract: Klaviyo) -> None:
    for api in contract.slices:
        assert api.spec["info"]["version"] == DEFAULT_REVISION


def test_every_answer_of_the_fake_fits_the_description(contract: Klaviyo, fake: FakeKlaviyo) -> None:
    pid = fake.seed_profile("here@example.com")
    members = {"data": [{"type": "profile", "id": pid}]}
    job = {"data": {"type": "profile-bulk-import-job",
                    "attributes": {"profiles": {"data": [{"type": "profile", "attributes": {"email": "n@example.com"}}]}},
                    "relationships": {"lists": {"data": [{"type": "list", "id": LIST}]}}}}  # fmt: skip
    calls: list[tuple[str, str, dict[str, str] | None, Any]] = [
        ("GET", "/api/profiles", {"filter": 'equals(email,"here@example.com")'}, None),
        ("GET", "/api/profiles", {"filter": "equals(email,here)"}, None),
        ("GET", f"/api/lists/{LIST}", None, None),
        ("GET", "/api/lists/NoSuch", None, None),
        ("POST", f"/api/lists/{LIST}/relationships/profiles", None, members),
        ("POST", f"/api/lists/{LIST}/relationships/profiles", None, {"data": [{"type": "profile", "id": "nope"}]}),
        ("DELETE", f"/api/lists/{LIST}/relationships/profiles", None, members),
        ("POST", "/api/profile-bulk-import-jobs", None, job),
    ]
    headers = {"Authorization": f"Klaviyo-API-Key {KEY}", "revision": DEFAULT_REVISION,
               "Content-Type": "application/vnd.api+json", "Accept": "application/vnd.api+json"}  # fmt: skip
    statuses = []
    with httpx.Client(base_url=str(fake.base_url), headers=headers) as client:
        for method, path, params, body in calls:
            response = client.request(method, path, params=params, json=body)
            statuses.append(response.status_code)
            answer = response.json() if response.content else None
            contract.of(path).check_response(method, path, response.status_code, answer)
        job_id = fake.jobs and next(iter(fake.jobs))
        response = client.get(f"/api/profile-bulk-import-jobs/{job_id}")
        contract.of("/api/profile-bulk-import-jobs/x").check_response(
            "GET", "/api/profile-bulk-import-jobs/x", response.status_code, response.json()
        )
        unauthorised = client.get("/api/profiles", headers={"Authorization": "Klaviyo-API-Key wrong"})
        contract.of("/api/profiles").check_response("GET", "/api/profiles", 401, unauthorised.json())
    assert statuses == [200, 400, 200, 404, 204, 400, 204, 202] and unauthorised.status_code == 401
