"""FakeMailchimp answers like the documented API: paths, auth, Problem Details, the
10-connection limit, and the base's fault injection."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator

import httpx
import pytest
from connector.testing.fakes import Faults
from connector.testing.fakes.mailchimp import FakeMailchimp

from tests.adapters.mailchimp.conftest import AUD, KEY

ANN = "ann@example.com"
ANN_HASH = hashlib.md5(ANN.encode()).hexdigest()
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def basic(password: str, user: str = "anystring") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def api(fake: FakeMailchimp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{fake.base_url}/3.0", headers=basic(KEY)) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, title: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) == PROBLEM_KEYS and body["status"] == status and body["title"] == title


def test_auth_is_basic_with_any_user_or_bearer_with_the_key(fake: FakeMailchimp, api: httpx.Client) -> None:
    assert api.get("/ping").json() == {"health_status": "Everything's Chimpy!"}
    assert api.get("/ping", headers=basic(KEY, user="someone-else")).status_code == 200
    assert api.get("/ping", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert_problem(api.get("/ping", headers=basic("wrong-us21")), 401, "API Key Invalid")
    assert_problem(api.get("/ping", headers={"Authorization": f"Bearer {KEY}x"}), 401, "API Key Invalid")
    assert_problem(httpx.get(f"{fake.base_url}/3.0/ping"), 401, "API Key Missing")


def test_audience_read_and_unknowns_are_404_problem_details(api: httpx.Client) -> None:
    assert api.get(f"/lists/{AUD}", params={"fields": "id,name"}).json() == {"id": AUD, "name": f"Audience {AUD}"}
    assert_problem(api.get("/lists/nope"), 404, "Resource Not Found")
    assert_problem(api.get("/campaigns"), 404, "Resource Not Found")


def test_tags_are_204_and_declarative_and_404_for_a_non_member(fake: FakeMailchimp, api: httpx.Client) -> None:
    assert_problem(
        api.post(f"/lists/{AUD}/members/{ANN_HASH}/tags", json={"tags": [{"name": "A", "status": "active"}]}),
        404,
        "Resource Not Found",
    )
    fake.seed_member(AUD, ANN, tags={"Old"})
    answer = api.post(
        f"/lists/{AUD}/members/{ANN_HASH}/tags",
        json={
            "tags": [
                {"name": "A", "status": "active"},
                {"name": "Old", "status": "inactive"},
                {"name": "B", "status": "inactive"},
            ]
        },
    )
    assert answer.status_code == 204 and answer.content == b""
    assert fake.tags_of(AUD, ANN) == {"A"}
    assert_problem(
        api.post(f"/lists/{AUD}/members/{ANN_HASH}/tags", json={"tags": [{"name": "A", "status": "on"}]}),
        400,
        "Invalid Resource",
    )


def test_put_upserts_and_never_changes_an_existing_members_status(fake: FakeMailchimp, api: httpx.Client) -> None:
    path = f"/lists/{AUD}/members/{ANN_HASH}"
    assert_problem(api.put(path, json={"email_address": ANN}), 400, "Invalid Resource")
    assert_problem(
        api.put(path, json={"email_address": "bob@example.com", "status_if_new": "pending"}), 400, "Invalid Resource"
    )  # the hash is Ann's
    created = api.put(path, json={"email_address": ANN, "status_if_new": "transactional"})
    assert created.status_code == 200
    assert created.json()["id"] == ANN_HASH and created.json()["status"] == "transactional"
    again = api.put(path, json={"email_address": ANN, "status_if_new": "subscribed"})
    assert again.json()["status"] == "transactional"
    assert_problem(api.put(f"/lists/nope/members/{ANN_HASH}", json={"email_address": ANN}), 404, "Resource Not Found")


def test_an_eleventh_simultaneous_request_gets_mailchimps_429_without_a_delay() -> None:
    fake = FakeMailchimp(KEY, audiences={AUD}, faults=Faults(latency=0.5))

    async def burst(base_url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=f"{base_url}/3.0", headers=basic(KEY)) as client:
            return await asyncio.gather(*(client.get("/ping") for _ in range(11)))

    with fake.serve() as base_url:
        answers = asyncio.run(burst(base_url))
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) == 1 and sum(a.status_code == 200 for a in answers) == 10
    assert_problem(refused[0], 429, "Too Many Requests")
    assert "10 simultaneous connections" in refused[0].json()["detail"]
    assert "retry-after" not in refused[0].headers
    assert fake.peak_connections == 11 and fake.log.counters["concurrency"] == 1


def test_scripted_trouble_uses_mailchimps_shapes(fake: FakeMailchimp, api: httpx.Client) -> None:
    fake.throttle_next(2.0)
    throttled = api.get("/ping")
    assert_problem(throttled, 429, "Too Many Requests")
    assert throttled.headers["retry-after"] == "2"
    fake.fail_next(503, "maintenance")
    failed = api.get("/ping")
    assert_problem(failed, 503, "Service Unavailable")
    assert failed.json()["detail"] == "maintenance"
    fake.drop_next()
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/ping")
    assert [r.cause for r in fake.requests] == ["throttled", "fault", "dropped"]


def test_segments_are_the_tags_listed_in_pages_and_created_once(fake: FakeMailchimp, api: httpx.Client) -> None:
    fake.seed_member(AUD, ANN, tags={"Old"})
    created = api.post(f"/lists/{AUD}/segments", json={"name": "New", "static_segment": []})
    assert created.status_code == 200 and created.json()["name"] == "New" and created.json()["type"] == "static"
    assert_problem(
        api.post(f"/lists/{AUD}/segments", json={"name": "New", "static_segment": []}), 400, "Invalid Resource"
    )
    first = api.get(f"/lists/{AUD}/segments", params={"type": "static", "count": 1}).json()
    second = api.get(f"/lists/{AUD}/segments", params={"type": "static", "count": 1, "offset": 1}).json()
    assert first["total_items"] == second["total_items"] == 2
    assert [s["name"] for s in first["segments"] + second["segments"]] == ["Old", "New"]
    assert first["segments"][0]["member_count"] == 1
    assert_problem(api.get("/lists/nope/segments"), 404, "Resource Not Found")
    assert_problem(api.get(f"/lists/{AUD}/segments", params={"count": 1001}), 400, "Invalid Resource")


def test_segment_batch_adds_and_removes_and_names_non_members_in_errors(fake: FakeMailchimp, api: httpx.Client) -> None:
    fake.seed_member(AUD, ANN, tags={"Old"})
    fake.seed_member(AUD, "bob@example.com")
    old = fake.seed_segment(AUD, "Old")
    answer = api.post(
        f"/lists/{AUD}/segments/{old}",
        json={"members_to_add": ["bob@example.com", "nobody@example.com"], "members_to_remove": ["ANN@example.com"]},
    ).json()
    assert answer["total_added"] == 1 and answer["total_removed"] == 1 and answer["error_count"] == 1
    assert [m["email_address"] for m in answer["members_added"]] == ["bob@example.com"]
    assert answer["errors"] == [
        {"email_addresses": ["nobody@example.com"], "error": "Email address is not subscribed to the list"}
    ]
    assert fake.tags_of(AUD, ANN) == set() and fake.tags_of(AUD, "bob@example.com") == {"Old"}
    again = api.post(f"/lists/{AUD}/segments/{old}", json={"members_to_add": ["bob@example.com"]}).json()
    assert again["total_added"] == 0 and again["errors"] == []  # declarative: already in
    too_many = {"members_to_add": [f"m{i}@example.com" for i in range(501)]}
    assert_problem(api.post(f"/lists/{AUD}/segments/{old}", json=too_many), 400, "Invalid Resource")
    assert_problem(api.post(f"/lists/{AUD}/segments/999", json={"members_to_add": []}), 404, "Resource Not Found")
    assert fake.segment_calls == {old: 2, 999: 1}  # calls that passed validation
