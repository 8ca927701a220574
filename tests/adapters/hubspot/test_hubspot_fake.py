"""FakeHubSpot itself answers the way HubSpot documents (so adapter tests against it mean something)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from connector.testing.fakes.hubspot import ALL_SCOPES, FakeHubSpot
from connector.testing.fakes.limits import WindowLimit

from tests.adapters.hubspot.conftest import READ, TOKEN


@pytest.fixture
def fake_options() -> dict[str, Any]:
    return {"rate_limit": WindowLimit(5, 60)}


def client(fake: FakeHubSpot, token: str = TOKEN) -> httpx.Client:
    assert fake.base_url
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {token}"})


def test_batch_read_by_email_is_207_naming_the_missing_emails(fake: FakeHubSpot) -> None:
    ann = fake.seed_contact("ann@example.com", firstname="Ann")
    body = {"idProperty": "email", "inputs": [{"id": "ANN@example.com"}, {"id": "nobody@example.com"}],
            "properties": ["email"], "propertiesWithHistory": []}  # fmt: skip
    with client(fake) as http:
        partial = http.post(READ, json=body)
        whole = http.post(READ, json={**body, "inputs": body["inputs"][:1]})
    assert partial.status_code == 207
    answer = partial.json()
    assert answer["status"] == "COMPLETE" and answer["numErrors"] == 1
    assert [(r["id"], r["properties"]["email"]) for r in answer["results"]] == [(ann, "ann@example.com")]
    [error] = answer["errors"]
    assert (error["status"], error["category"]) == ("error", "OBJECT_NOT_FOUND")
    assert error["context"] == {"ids": ["nobody@example.com"]}
    assert whole.status_code == 200 and "errors" not in whole.json()


def test_batch_read_refuses_more_than_100_inputs(fake: FakeHubSpot) -> None:
    body = {"idProperty": "email", "inputs": [{"id": f"u{i}@example.com"} for i in range(101)]}
    with client(fake) as http:
        answer = http.post(READ, json=body)
    assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"


def test_upsert_creates_once_and_reports_new(fake: FakeHubSpot) -> None:
    properties = {"email": "new@example.com", "firstname": "N"}
    item = {"id": "new@example.com", "idProperty": "email", "properties": properties}
    with client(fake) as http:
        first = http.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": [item]}).json()
        again = http.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": [item]}).json()
    assert first["results"][0]["new"] is True and again["results"][0]["new"] is False
    assert first["results"][0]["id"] == again["results"][0]["id"] == fake.contact_id("new@example.com")


def test_memberships_answer_added_removed_and_missing(fake: FakeHubSpot) -> None:
    list_id = fake.seed_list("Enterprise")
    ann, bob = fake.seed_contact("ann@example.com"), fake.seed_contact("bob@example.com")
    with client(fake) as http:
        added = http.put(f"/crm/v3/lists/{list_id}/memberships/add", json=[ann, bob, "999"]).json()
        again = http.put(f"/crm/v3/lists/{list_id}/memberships/add", json=[ann]).json()
        removed = http.put(f"/crm/v3/lists/{list_id}/memberships/remove", json=[bob, "999"]).json()
    assert added == {"recordsIdsAdded": [ann, bob], "recordIdsRemoved": [], "recordIdsMissing": ["999"]}
    assert again == {"recordsIdsAdded": [], "recordIdsRemoved": [], "recordIdsMissing": []}
    assert removed == {"recordsIdsAdded": [], "recordIdsRemoved": [bob], "recordIdsMissing": ["999"]}
    assert fake.member_emails(list_id) == {"ann@example.com"}


def test_deleted_contact_leaves_its_lists_and_is_missing_afterwards(fake: FakeHubSpot) -> None:
    list_id = fake.seed_list("Enterprise")
    ann = fake.seed_contact("ann@example.com")
    fake.lists[list_id]["members"].add(ann)
    fake.delete_contact("ann@example.com")
    with client(fake) as http:
        answer = http.put(f"/crm/v3/lists/{list_id}/memberships/remove", json=[ann]).json()
    assert answer["recordIdsMissing"] == [ann] and fake.member_ids(list_id) == set()


def test_lists_by_id_and_by_case_insensitive_name_and_errors(fake: FakeHubSpot) -> None:
    manual, dynamic = fake.seed_list("Enterprise EU"), fake.seed_list("Active", processing_type="DYNAMIC")
    with client(fake) as http:
        by_id = http.get(f"/crm/v3/lists/{manual}")
        by_name = http.get("/crm/v3/lists/object-type-id/0-1/name/enterprise%20eu")
        wrong_type = http.get("/crm/v3/lists/object-type-id/0-2/name/Enterprise%20EU")
        unknown = http.put("/crm/v3/lists/404404/memberships/add", json=[])
        not_manual = http.put(f"/crm/v3/lists/{dynamic}/memberships/add", json=[])
    assert by_id.json()["list"]["listId"] == manual and by_id.json()["list"]["processingType"] == "MANUAL"
    assert by_name.json()["list"]["listId"] == manual
    assert wrong_type.status_code == 404 and unknown.status_code == 404
    assert unknown.json()["category"] == "OBJECT_NOT_FOUND" and "correlationId" in unknown.json()
    assert not_manual.status_code == 400 and not_manual.json()["category"] == "VALIDATION_ERROR"


def test_wrong_token_is_401_and_a_missing_scope_is_403_naming_it() -> None:
    fake = FakeHubSpot(TOKEN, scopes=ALL_SCOPES - {"crm.lists.write"})
    list_id = fake.seed_list("E")
    with fake.serve(), client(fake, "pat-na1-wrong") as wrong, client(fake) as http:
        refused = wrong.get("/crm/v3/objects/contacts", params={"limit": 1})
        unscoped = http.put(f"/crm/v3/lists/{list_id}/memberships/add", json=[])
        fine = http.get(f"/crm/v3/lists/{list_id}")
    assert refused.status_code == 401 and refused.json()["category"] == "INVALID_AUTHENTICATION"
    assert unscoped.status_code == 403 and unscoped.json()["category"] == "MISSING_SCOPES"
    assert unscoped.json()["errors"][0]["context"] == {"requiredGranularScopes": ["crm.lists.write"]}
    assert fine.status_code == 200


def test_writes_need_a_json_content_type(fake: FakeHubSpot) -> None:
    with client(fake) as http:
        answer = http.post(READ, content=b'{"inputs": []}', headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415


def test_rolling_window_429_has_hubspots_body_and_headers(fake: FakeHubSpot) -> None:
    with client(fake) as http:
        answers = [http.get("/crm/v3/objects/contacts", params={"limit": 1}) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    limited = answers[-1]
    assert limited.headers["X-HubSpot-RateLimit-Max"] == "5"
    assert limited.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
    assert "Retry-After" not in limited.headers
    body = limited.json()
    assert (body["status"], body["policyName"], body["errorType"]) == ("error", "TEN_SECONDLY_ROLLING", "RATE_LIMIT")
    assert fake.log.counters["rate_limited"] == 1


def test_default_window_is_hubspots_lower_tier_and_can_be_turned_off() -> None:
    limit = FakeHubSpot(TOKEN).rate_limit
    assert limit is not None and (limit.requests, limit.per_seconds) == (100, 10)
    assert FakeHubSpot(TOKEN, unlimited=True).rate_limit is None


def test_a_long_scripted_throttle_is_said_with_the_daily_policy(fake: FakeHubSpot) -> None:
    fake.throttle_next(3600)
    with client(fake) as http:
        answer = http.get("/crm/v3/objects/contacts")
    assert answer.status_code == 429 and answer.json()["policyName"] == "DAILY"
