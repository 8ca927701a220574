"""The Plain API client against the fake Plain API on loopback (and its queries against the schema)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from connector.plain import queries
from connector.plain.api import PlainApi
from connector.plain.errors import (
    PlainAuthError,
    PlainGraphQLError,
    PlainMutationError,
    PlainUnavailable,
    PlainUsageError,
)
from connector.testing.fakes.plain_api import FakePlainApi, plain_schema
from graphql import parse, validate
from tests.conftest import free_port

KEY = "plain-secret-key-123"


def _client(url: str, key: str = KEY, **kwargs: Any) -> PlainApi:
    return PlainApi(key, url, backoff_base=0.01, backoff_max=0.05, **kwargs)


async def _all_customers(api: PlainApi, group_ids: list[str], **kwargs: Any) -> list[Any]:
    return [c async for page in api.customers(group_ids, **kwargs) for c in page]


def _run_against(fake: FakePlainApi, use: Any, **client_kwargs: Any) -> Any:
    async def main(url: str) -> Any:
        async with _client(url, **client_kwargs) as api:
            return await use(api)

    with fake.serve() as url:
        return asyncio.run(main(url))


@pytest.mark.parametrize("query", queries.ALL, ids=lambda text: text.split("(")[0].split()[-1])
def test_every_query_the_client_sends_is_valid_in_plains_schema(query):
    assert validate(plain_schema(), parse(query)) == []


def test_customers_of_a_group_over_several_pages():
    fake = FakePlainApi(KEY)
    group = fake.data.add_group("enterprise")
    other = fake.data.add_group("beta")
    expected = {fake.data.add_customer(f"Customer {i:03d}", f"c{i}@example.com", groups=[group]) for i in range(230)}
    fake.data.add_customer("Outsider", "out@example.com", groups=[other])

    found = _run_against(fake, lambda api: _all_customers(api, [group]))

    assert {c.id for c in found} == expected and len(found) == 230
    assert [c.full_name for c in found] == sorted(c.full_name for c in found)
    assert {c.email for c in found} == {f"c{i}@example.com" for i in range(230)}
    assert fake.fields_read == ["customers"] * 3  # 100 + 100 + 30
    assert fake.invalid_queries == [] and fake.data.unfiltered_reads == 0


def test_customer_groups_over_several_pages():
    fake = FakePlainApi(KEY)
    keys = {f"group-{i:03d}" for i in range(130)}
    for key in keys:
        fake.data.add_group(key)
    groups = _run_against(fake, lambda api: api.customer_groups())
    assert {g.key for g in groups} == keys
    assert fake.fields_read == ["customerGroups"] * 2


def test_nested_memberships_are_followed_past_the_first_25():
    fake = FakePlainApi(KEY)
    groups = [fake.data.add_group(f"g{i:02d}") for i in range(60)]
    fake.data.add_customer("Many Groups", "many@example.com", groups=groups)
    fake.data.add_customer("Few Groups", "few@example.com", groups=groups[:2])

    found = _run_against(fake, lambda api: _all_customers(api, [groups[0]], memberships=True))

    by_name = {c.full_name: c for c in found}
    assert [g.id for g in by_name["Many Groups"].groups] == groups
    assert [g.key for g in by_name["Few Groups"].groups] == ["g00", "g01"]
    assert fake.fields_read == ["customers", "customer"]  # one follow-up, for the customer with 60


def test_an_empty_group_filter_is_refused_before_anything_is_sent():
    fake = FakePlainApi(KEY)
    with pytest.raises(PlainUsageError, match="at least one group"):
        _run_against(fake, lambda api: _all_customers(api, []))
    assert fake.requests == []


def test_no_request_is_sent_while_plain_says_wait():
    fake = FakePlainApi(KEY, rate_limit=3, window_seconds=1.0)
    fake.data.add_group("enterprise")

    async def use(api: PlainApi) -> list[int]:
        return [len(await api.customer_groups()) for _ in range(7)]

    assert _run_against(fake, use) == [1] * 7
    assert len(fake.requests) == 7
    assert fake.early_requests == []
    assert fake.log.counters["rate_limited"] == 0  # it waited at remaining 0, never earned a 429


def test_a_429_is_waited_out_until_its_reset_then_retried():
    fake = FakePlainApi(KEY)
    fake.data.add_group("enterprise")
    fake.throttle_next(0.5)
    groups = _run_against(fake, lambda api: api.customer_groups())
    assert [g.key for g in groups] == ["enterprise"]
    assert [r.status for r in fake.requests] == [429, 200]
    assert fake.early_requests == []


def test_5xx_is_retried_with_backoff():
    fake = FakePlainApi(KEY)
    fake.data.add_group("enterprise")
    fake.fail_next(503, times=2)
    groups = _run_against(fake, lambda api: api.customer_groups())
    assert [g.key for g in groups] == ["enterprise"]
    assert [r.status for r in fake.requests] == [503, 503, 200]


def test_5xx_retries_are_bounded():
    fake = FakePlainApi(KEY)
    fake.fail_next(500, times=10)
    with pytest.raises(PlainUnavailable, match=r"HTTP 500 \(gave up after 3 attempts\)"):
        _run_against(fake, lambda api: api.customer_groups(), max_attempts=3)
    assert len(fake.requests) == 3


def test_unreachable_api_is_unavailable_after_bounded_retries():
    async def main() -> None:
        async with _client(f"http://127.0.0.1:{free_port()}/graphql/v1", max_attempts=2) as api:
            await api.customer_groups()

    with pytest.raises(PlainUnavailable, match="cannot connect"):
        asyncio.run(main())


def test_a_graphql_error_carries_its_code_and_is_not_retried():
    fake = FakePlainApi(KEY)
    fake.error_next("INTERNAL_SERVER_ERROR", "something broke")
    with pytest.raises(PlainGraphQLError) as caught:
        _run_against(fake, lambda api: api.customer_groups())
    assert caught.value.code == "INTERNAL_SERVER_ERROR"
    assert "something broke" in str(caught.value) and "CustomerGroups" in str(caught.value)
    assert len(fake.requests) == 1


def test_a_refused_key_is_a_clear_error_without_the_key():
    fake = FakePlainApi("the-real-key")
    with pytest.raises(PlainAuthError) as caught:
        _run_against(fake, lambda api: api.customer_groups())
    assert "refused the API key" in str(caught.value) and "PLAIN_API_KEY" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)
    assert len(fake.requests) == 1


def test_a_mutation_error_names_code_and_fields():
    fake = FakePlainApi(KEY)

    async def use(api: PlainApi) -> None:
        await api.create_webhook_target("https://h/webhooks/plain", ["customer.no_such_event"], "2026-04-21", "d")

    with pytest.raises(PlainMutationError) as caught:
        _run_against(fake, use)
    assert caught.value.code == "input_validation" and caught.value.fields == ["eventSubscriptions"]
    assert fake.data.targets == {}
