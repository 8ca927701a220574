"""FakeIntercom itself: Intercom's guards, error shapes and limits, so adapter tests can trust it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from connector.testing.fakes import WindowLimit
from connector.testing.fakes.intercom import FakeIntercom

from tests.adapters.intercom.conftest import HEADERS, TOKEN


@pytest.fixture
def fake_options() -> dict[str, Any]:
    return {"rate_limit": WindowLimit(3, 10.0)}


@pytest.fixture
def roomy() -> Iterator[FakeIntercom]:
    """A fake without a tight window, for tests that make many calls."""
    server = FakeIntercom(TOKEN)
    with server.serve():
        yield server


def client(fake: FakeIntercom, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=str(fake.base_url), headers={**HEADERS, **headers})


def test_window_answers_429_with_intercoms_headers(fake: FakeIntercom) -> None:
    with client(fake) as http:
        answers = [http.get("/me") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited.headers["x-ratelimit-limit"] == "3" and limited.headers["x-ratelimit-remaining"] == "0"
    reset = int(limited.headers["x-ratelimit-reset"])
    assert time.time() + 5 < reset <= time.time() + 11  # epoch seconds, at the window's end
    assert limited.json()["errors"][0]["code"] == "rate_limit_exceeded"
    assert fake.log.counters["rate_limited"] == 1


@pytest.mark.parametrize(
    "headers, status, code",
    [
        ({"Authorization": "Bearer wrong-token-xyz"}, 401, "unauthorized"),
        ({"Intercom-Version": ""}, 400, "intercom_version_invalid"),
        ({"Intercom-Version": "latest"}, 400, "intercom_version_invalid"),
    ],
)
def test_guards_answer_in_intercoms_error_shape(
    fake: FakeIntercom, headers: dict[str, str], status: int, code: str
) -> None:
    with client(fake, **headers) as http:
        answer = http.post("/tags", json={"name": "x"})
    assert answer.status_code == status
    assert answer.json()["type"] == "error.list" and answer.json()["errors"][0]["code"] == code
    assert fake.tags == {}


def test_tags_are_case_insensitive_and_detach_of_unattached_is_configurable(fake: FakeIntercom) -> None:
    fake.rate_limit = None
    contact = fake.seed_contact("a@example.com")
    with client(fake) as http:
        first = http.post("/tags", json={"name": "Enterprise"}).json()
        again = http.post("/tags", json={"name": "ENTERPRISE"}).json()
        assert first == again == {"type": "tag", "id": first["id"], "name": "Enterprise"}
        assert http.delete(f"/contacts/{contact}/tags/{first['id']}").status_code == 404
        fake.detach_unattached = 200
        assert http.delete(f"/contacts/{contact}/tags/{first['id']}").status_code == 200


def test_search_lag_and_duplicate_create(fake: FakeIntercom) -> None:
    fake.rate_limit = None
    contact = fake.seed_contact("Lag@Example.com", search_misses=1)
    query = {"query": {"field": "email", "operator": "=", "value": "lag@example.com"}}
    with client(fake) as http:
        assert http.post("/contacts/search", json=query).json()["total_count"] == 0
        assert [c["id"] for c in http.post("/contacts/search", json=query).json()["data"]] == [contact]
        clash = http.post("/contacts", json={"email": "LAG@example.com", "role": "user"})
    assert clash.status_code == 409
    assert clash.json()["errors"][0] == {
        "code": "conflict",
        "message": f"A contact matching those details already exists with id={contact}",
    }


def test_base_fault_injection_works_on_intercom_routes(fake: FakeIntercom) -> None:
    fake.rate_limit = None
    fake.fail_next(503, path="/tags")
    fake.drop_next(path="/me")
    with client(fake) as http:
        failed = http.post("/tags", json={"name": "x"})
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("/me")
    assert failed.status_code == 503 and failed.json()["errors"][0]["code"] == "service_unavailable"
    assert fake.log.counters["fault"] == 1 and fake.log.counters["dropped"] == 1


def test_search_takes_or_groups_within_intercoms_limits_and_pages(roomy: FakeIntercom) -> None:
    for i in range(20):
        roomy.seed_contact(f"p{i}@example.com")
    headers = HEADERS

    def search(query: dict, **paging: object) -> httpx.Response:
        body = {"query": query, **({"pagination": paging} if paging else {})}
        return httpx.post(f"{roomy.base_url}/contacts/search", json=body, headers=headers)

    def email(i: int) -> dict:
        return {"field": "email", "operator": "=", "value": f"P{i}@example.com"}

    found = search({"operator": "OR", "value": [email(i) for i in range(15)]}, per_page=10).json()
    assert found["total_count"] == 15 and len(found["data"]) == 10
    cursor = found["pages"]["next"]["starting_after"]
    rest = search({"operator": "OR", "value": [email(i) for i in range(15)]}, per_page=10, starting_after=cursor)
    assert len(rest.json()["data"]) == 5 and "next" not in rest.json()["pages"]
    assert search({"operator": "OR", "value": [email(i) for i in range(16)]}).status_code == 400
    nested = {"operator": "OR", "value": [{"operator": "OR", "value": [{"operator": "OR", "value": [email(1)]}]}]}
    assert search(nested).status_code == 400
    assert (
        search({"field": "email", "operator": "IN", "value": ["p1@example.com", "p2@example.com"]}).json()[
            "total_count"
        ]
        == 2
    )


def test_tags_with_users_tag_every_contact_or_answer_404_for_an_unknown_one(roomy: FakeIntercom) -> None:
    ids = [roomy.seed_contact(f"t{i}@example.com") for i in range(3)]
    headers = HEADERS
    ok = httpx.post(f"{roomy.base_url}/tags", json={"name": "VIP", "users": [{"id": i} for i in ids]}, headers=headers)
    assert ok.status_code == 200 and ok.json()["name"] == "VIP"
    assert all(roomy.tags_of(i) == {"VIP"} for i in ids)
    gone = httpx.post(f"{roomy.base_url}/tags", json={"name": "Other", "users": [{"id": "nope"}]}, headers=headers)
    assert gone.status_code == 404 and gone.json()["errors"][0]["message"] == "User Not Found"
    roomy.blocked.add(ids[0])
    refused = httpx.post(f"{roomy.base_url}/tags", json={"name": "Other", "users": [{"id": ids[0]}]}, headers=headers)
    assert refused.status_code == 400 and all("Other" not in roomy.tags_of(i) for i in ids)
    assert roomy.bulk_tag_sizes == [3, 1, 1]
