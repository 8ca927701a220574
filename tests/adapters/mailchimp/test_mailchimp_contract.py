"""Every request the adapter sends is one Mailchimp's OpenAPI spec describes.

The spec lives outside the repository (``../shared/specs/mailchimp``, see SOURCES.md
there); without it these tests skip, so a fresh clone still passes. The requests are the
ones FakeMailchimp recorded while the real adapter ran, so what is checked is what the
adapter actually put on the wire: method, path, query, auth scheme, content type, and
the JSON body against the operation's schema. Request bodies may not carry properties
the schema does not name (the spec itself allows extras; a typo would slip through).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from connector.adapters.base import Change
from connector.adapters.mailchimp import MailchimpAdapter
from connector.testing.fakes.log import RecordedRequest
from connector.testing.fakes.mailchimp import FakeMailchimp

from tests.adapters.contract import Contract, resolve
from tests.adapters.mailchimp.conftest import AUD, KEY, config
from tests.adapters.mailchimp.conftest import change as mailchimp_change

USED = {
    "getPing",
    "getListsId",
    "putListsIdMembersId",
    "postListMemberTags",
    "previewASegment",  # the spec's (odd) id for GET /lists/{list_id}/segments
    "postListsIdSegments",
    "postListsIdSegmentsId",
}


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load("mailchimp")


@pytest.fixture(scope="module")
def recorded() -> list[RecordedRequest]:
    """Requests of a realistic run: check, segment lookup and creation, tag and untag in
    bulk, a non-member skipped and one created."""
    fake = FakeMailchimp(KEY, audiences={AUD})
    fake.seed_member(AUD, "ann@example.com", tags={"Beta"})

    def change(email: str, tag: str, action: str = "add") -> Change:
        return mailchimp_change(email, tag, action, at=None, key=email + tag)

    async def run(base_url: str, **extra: Any) -> None:
        adapter = MailchimpAdapter("mc", config(base_url=base_url, **extra))
        await adapter.start()
        try:
            assert await adapter.check_online([{"tag": "Enterprise"}]) == []
            outcomes = await adapter.apply(
                [
                    change("Ann@example.com", "Enterprise"),
                    change("ann@example.com", "Beta", "remove"),
                    change("new@example.com", "Enterprise"),
                ]
            )
            assert [o.kind for o in outcomes] == ["done", "done", "done" if extra else "skipped"]
        finally:
            await adapter.close()

    with fake.serve() as base_url:
        asyncio.run(run(base_url))
        asyncio.run(run(base_url, create_missing_contacts=True, status_if_new="transactional"))
    return fake.requests


def _problems(contract: Contract, request: RecordedRequest) -> list[str]:
    problems = contract.request_problems(request, closed=True)
    operation = contract.operation(request.method, request.path)
    path_params = operation.path_params if operation else {}
    if "subscriber_hash" in path_params and not re.fullmatch(r"[0-9a-f]{32}", path_params["subscriber_hash"]):
        problems.append("subscriber_hash is not an MD5 hex digest")
    return problems


def test_every_recorded_request_is_described_by_the_spec(contract: Contract, recorded: list[RecordedRequest]) -> None:
    problems = {f"{r.method} {r.path}": _problems(contract, r) for r in recorded}
    assert {call: found for call, found in problems.items() if found} == {}
    operations = [contract.operation(r.method, r.path) for r in recorded]
    used = {found.operation_id for found in operations if found}
    assert used == USED, "the run should exercise every operation the adapter uses"


def test_the_checker_catches_what_the_spec_forbids(contract: Contract, recorded: list[RecordedRequest]) -> None:
    """The checks above can fail: a bad status, a misspelt key, a wrong path are found."""
    tags = next(r for r in recorded if r.path.endswith("/tags"))
    put = next(r for r in recorded if r.method == "PUT")
    bad = [
        RecordedRequest(**{**vars(tags), "json": {"tags": [{"name": "A", "status": "on"}]}}),
        RecordedRequest(**{**vars(put), "json": {"email_address": "a@b.c", "status_if_New": "pending"}}),
        RecordedRequest(**{**vars(tags), "path": tags.path.replace("/tags", "/tag")}),
        RecordedRequest(**{**vars(tags), "query": {"bogus": "1"}}),
    ]
    assert all(_problems(contract, r) for r in bad), [_problems(contract, r) for r in bad]


def test_the_fakes_errors_are_problem_detail_documents(contract: Contract) -> None:
    schema = contract.component("Problem_Detail_Document")
    fake = FakeMailchimp(KEY, audiences={AUD})
    with fake.serve() as base_url:
        answers = [
            httpx.get(f"{base_url}/3.0/ping"),
            httpx.get(f"{base_url}/3.0/lists/nope", auth=("x", KEY)),
            httpx.post(f"{base_url}/3.0/lists/{AUD}/members/{'0' * 32}/tags", auth=("x", KEY), json={"tags": []}),
        ]
    for answer in answers:
        assert answer.status_code in (401, 404)
        assert contract.schema_problems(schema, answer.json(), "error") == []


def test_the_fakes_segment_answers_match_the_spec(contract: Contract) -> None:
    """What the adapter reads (ids, names, total_items, errors) is where the spec says."""
    fake = FakeMailchimp(KEY, audiences={AUD})
    fake.seed_member(AUD, "ann@example.com", tags={"Old"})
    segment = fake.seed_segment(AUD, "Old")
    with fake.serve() as base_url, httpx.Client(base_url=f"{base_url}/3.0", auth=("x", KEY)) as api:
        listed = api.get(f"/lists/{AUD}/segments", params={"type": "static"}).json()
        created = api.post(f"/lists/{AUD}/segments", json={"name": "New", "static_segment": []}).json()
        batch = api.post(
            f"/lists/{AUD}/segments/{segment}",
            json={"members_to_add": ["nobody@example.com"], "members_to_remove": ["ann@example.com"]},
        ).json()
    batch_name = "Batch_add_remove_List_members_to_from_static_segment"
    for name, answer in [("Collection_of_Segments", listed), ("List_7", created), (batch_name, batch)]:
        assert contract.schema_problems(contract.component(name), answer, name) == []
    spec = contract.documents[0].spec

    def properties(name: str) -> dict[str, Any]:
        return dict(resolve(spec, contract.component(name))["properties"])

    batch_fields = properties(batch_name)
    assert {"total_added", "total_removed", "errors", "members_added", "members_removed"} <= set(batch)
    assert set(batch) <= set(batch_fields)
    assert set(batch["errors"][0]) == set(resolve(spec, batch_fields["errors"]["items"])["properties"])
    assert set(listed) <= set(properties("Collection_of_Segments"))
    assert set(listed["segments"][0]) <= set(properties("List_7"))
    limits = properties("Members_to_add_remove_to_from_a_static_segment")
    assert "maximum of 500" in limits["members_to_add"]["description"]
