"""The fake Plain API behaves like Plain where our client depends on it (tested with raw httpx)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest
from connector.testing.fakes.plain_api import FakePlainApi

KEY = "plain-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SCHEMA_COPY = Path(__file__).parents[2] / "connector" / "testing" / "data" / "plain-schema.graphql"
# ../shared beside the checkout (main) or beside the worktrees' folder
SHARED_SCHEMA = next(
    (p / "shared/specs/plain/schema.graphql" for p in Path(__file__).resolve().parents[3:5]
     if (p / "shared/specs/plain/schema.graphql").exists()),
    Path("../shared/specs/plain/schema.graphql"),
)  # fmt: skip
MEMBERS = """query M($ids: [ID!], $after: String) {
  customers(filters: {customerGroupIds: $ids}, first: 2, after: $after) {
    edges { node { id fullName email { email } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _post(url: str, query: str, variables: dict | None = None, headers: dict | None = None) -> httpx.Response:
    return httpx.post(
        url, json={"query": query, "variables": variables or {}}, headers=AUTH if headers is None else headers
    )


@pytest.fixture
def fake() -> FakePlainApi:
    return FakePlainApi(KEY)


def test_schema_copy_keeps_its_licence_line_and_matches_the_source():
    head = SCHEMA_COPY.read_text(encoding="utf-8").splitlines()[:3]
    assert any("Licence: MIT" in line for line in head)
    if not SHARED_SCHEMA.exists():
        pytest.skip("../shared/specs/plain/schema.graphql absent (fresh clone): only the licence line checked")
    body = "\n".join(SCHEMA_COPY.read_text(encoding="utf-8").splitlines(keepends=False)[3:])
    assert body == "\n".join(SHARED_SCHEMA.read_text(encoding="utf-8").splitlines())


def test_query_outside_the_schema_is_refused_and_kept(fake):
    with fake.serve() as url:
        answer = _post(url, "{ customers { edges { node { email } } } }")  # email is an object
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert len(fake.invalid_queries) == 1


def test_wrong_key_is_unauthenticated(fake):
    with fake.serve() as url:
        answer = _post(
            url, "{ webhookVersions { edges { node { version } } } }", headers={"Authorization": "Bearer no"}
        )
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_cursor_follows_sort_order_so_an_early_sorting_joiner_is_missed(fake):
    group = fake.data.add_group("enterprise")
    for name in ("Bea", "Cy", "Dee", "Eve"):
        fake.data.add_customer(name, f"{name.lower()}@example.com", groups=[group])
    with fake.serve() as url:
        first = _post(url, MEMBERS, {"ids": [group]}).json()["data"]["customers"]
        fake.data.add_customer("Al", "al@example.com", groups=[group])  # sorts before the cursor
        cursor = first["pageInfo"]["endCursor"]
        second = _post(url, MEMBERS, {"ids": [group], "after": cursor}).json()["data"]["customers"]
    names = [e["node"]["fullName"] for page in (first, second) for e in page["edges"]]
    assert names == ["Bea", "Cy", "Dee", "Eve"]
    assert second["pageInfo"]["hasNextPage"] is False


def test_empty_group_filter_means_every_customer(fake):
    fake.data.add_customer("Out", "out@example.com")
    with fake.serve() as url:
        data = _post(url, MEMBERS, {"ids": []}).json()["data"]
    assert [e["node"]["fullName"] for e in data["customers"]["edges"]] == ["Out"]
    assert fake.data.unfiltered_reads == 1


def test_page_over_100_is_refused(fake):
    query = "{ customerGroups(first: 101) { edges { node { id } } } }"
    with fake.serve() as url:
        body = _post(url, query).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_rate_limit_headers_then_429_and_early_requests_counted():
    fake = FakePlainApi(KEY, rate_limit=2, window_seconds=30)
    query = "{ webhookVersions { edges { node { version isLatest } } } }"
    with fake.serve() as url:
        answers = [_post(url, query) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["1", "0", "0"]
    assert answers[2].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    reset = datetime.fromisoformat(answers[1].headers["x-ratelimit-reset"])
    assert reset.timestamp() >= fake.requests[1].at
    assert len(fake.early_requests) == 1  # the third came before the reset it was told


def test_on_read_hook_sees_root_fields_with_their_arguments(fake):
    group = fake.data.add_group("enterprise")
    seen = []
    fake.on_read = lambda field, args: seen.append((field, args["filters"]["customerGroupIds"]))
    with fake.serve() as url:
        _post(url, MEMBERS, {"ids": [group]})
    assert seen == [("customers", [group])]


def test_webhook_target_mutations_validate_event_types(fake):
    create = """mutation C($input: CreateWebhookTargetInput!) {
      createWebhookTarget(input: $input) { webhookTarget { id version } error { code fields { field } } }
    }"""
    good = {"url": "https://h/webhooks/plain", "isEnabled": True, "description": "d",
            "eventSubscriptions": [{"eventType": "customer.customer_updated"}]}  # fmt: skip
    bad = {**good, "eventSubscriptions": [{"eventType": "customer.customer_updatd"}]}
    with fake.serve() as url:
        made = _post(url, create, {"input": good}).json()["data"]["createWebhookTarget"]
        refused = _post(url, create, {"input": bad}).json()["data"]["createWebhookTarget"]
    assert made["webhookTarget"]["version"] == "2026-04-21" and made["error"] is None
    assert refused["webhookTarget"] is None
    assert refused["error"]["fields"] == [{"field": "eventSubscriptions"}]
    assert list(fake.data.targets) == [made["webhookTarget"]["id"]]
