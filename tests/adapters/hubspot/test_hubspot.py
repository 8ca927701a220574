"""The HubSpot adapter: the exact calls it makes (respx), and how many."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from connector.adapters.base import OptionsError, Outcome
from connector.adapters.hubspot import HubSpotAdapter, HubSpotConfig
from pydantic import ValidationError

from tests.adapters.hubspot.conftest import (
    BASE,
    READ,
    TOKEN,
    UPSERT,
    adapter,
    apply,
    change,
    contacts,
    members,
    pinned,
    run,
)

# -- the exact calls -------------------------------------------------------------------


def test_add_reads_the_contact_by_email_then_adds_its_record_id_to_the_list() -> None:
    with respx.mock(base_url=BASE) as mock:
        read = mock.post(READ).mock(side_effect=contacts({"ann@example.com": "1001"}))
        add = mock.put("/crm/v3/lists/123/memberships/add").mock(return_value=members())
        assert apply([change("Ann@Example.com ")]) == [Outcome.done()]
    assert pinned(read.calls.last.request, "POST", READ) == {
        "idProperty": "email", "inputs": [{"id": "ann@example.com"}],
        "properties": ["email"], "propertiesWithHistory": [],
    }  # fmt: skip
    assert pinned(add.calls.last.request, "PUT", "/crm/v3/lists/123/memberships/add") == ["1001"]
    assert read.calls.last.request.url.query == b""


def test_remove_puts_the_record_id_to_the_remove_call() -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.post(READ).mock(side_effect=contacts({"ann@example.com": "1001"}))
        remove = mock.put("/crm/v3/lists/123/memberships/remove").mock(return_value=members())
        assert apply([change(action="remove")]) == [Outcome.done()]
    assert pinned(remove.calls.last.request, "PUT", "/crm/v3/lists/123/memberships/remove") == ["1001"]


def test_missing_contact_is_created_with_batch_upsert_when_enabled() -> None:
    result = {"id": "2002", "new": True, "properties": {"email": "ann@example.com"}}
    created = {"status": "COMPLETE", "results": [result]}
    with respx.mock(base_url=BASE) as mock:
        mock.post(READ).mock(side_effect=contacts({}))
        upsert = mock.post(UPSERT).mock(return_value=httpx.Response(200, json=created))
        add = mock.put("/crm/v3/lists/123/memberships/add").mock(return_value=members())
        outcomes = apply([change()], adapter(create_missing_contacts=True))
    assert outcomes == [Outcome.done()]
    assert pinned(upsert.calls.last.request, "POST", UPSERT) == {"inputs": [{
        "id": "ann@example.com", "idProperty": "email",
        "properties": {"email": "ann@example.com", "firstname": "Ann", "lastname": "Mary Lee"},
    }]}  # fmt: skip
    assert json.loads(add.calls.last.request.content) == ["2002"]


def test_list_name_is_resolved_once_by_name_and_cached() -> None:
    found = {"list": {"listId": "77", "name": "Enterprise Customers", "objectTypeId": "0-1",
                      "processingType": "MANUAL", "processingStatus": "COMPLETE", "listVersion": 3}}  # fmt: skip
    path = "/crm/v3/lists/object-type-id/0-1/name/Enterprise%20Customers%2FEU"
    target = adapter()

    async def twice(a: HubSpotAdapter) -> list[list[Outcome]]:
        first = await a.apply([change(list_name="Enterprise Customers/EU")])
        return [first, await a.apply([change(list_name="Enterprise Customers/EU", action="remove")])]

    with respx.mock(base_url=BASE) as mock:
        by_name = mock.get(url=BASE + path).mock(return_value=httpx.Response(200, json=found))
        mock.post(READ).mock(side_effect=contacts({"ann@example.com": "1001"}))
        add = mock.put("/crm/v3/lists/77/memberships/add").mock(return_value=members())
        remove = mock.put("/crm/v3/lists/77/memberships/remove").mock(return_value=members())
        assert run(target, twice) == [[Outcome.done()], [Outcome.done()]]
    assert by_name.call_count == 1 and add.call_count == 1 and remove.call_count == 1
    assert pinned(by_name.calls.last.request, "GET", path) is None


def test_check_online_reads_one_contact_and_each_mapped_list_once() -> None:
    listed = {"list": {"listId": "123", "name": "E", "objectTypeId": "0-1", "processingType": "SNAPSHOT"}}
    with respx.mock(base_url=BASE) as mock:
        token = mock.get("/crm/v3/objects/contacts").mock(return_value=httpx.Response(200, json={"results": []}))
        one = mock.get("/crm/v3/lists/123").mock(return_value=httpx.Response(200, json=listed))
        problems = run(adapter(), lambda a: a.check_online([{"list": "123"}, {"list": "123"}]))
    assert problems == []
    assert pinned(token.calls.last.request, "GET", "/crm/v3/objects/contacts?limit=1") is None
    assert pinned(one.calls.last.request, "GET", "/crm/v3/lists/123") is None
    assert one.call_count == 1


def test_base_url_prefix_is_kept_before_the_api_path() -> None:
    with respx.mock() as mock:
        read = mock.post("http://127.0.0.1:9100/hs" + READ).mock(side_effect=contacts({"ann@example.com": "1"}))
        mock.put("http://127.0.0.1:9100/hs/crm/v3/lists/123/memberships/add").mock(return_value=members())
        assert apply([change()], adapter(base_url="http://127.0.0.1:9100/hs/")) == [Outcome.done()]
    assert read.call_count == 1


# -- how many calls --------------------------------------------------------------------


def test_a_full_batch_to_one_list_is_a_read_per_100_and_one_membership_call_then_one_call() -> None:
    size = HubSpotAdapter.max_batch
    emails = {f"u{i}@example.com": str(5000 + i) for i in range(size)}
    batch = [change(e, key=str(i)) for i, e in enumerate(emails)]
    again = [change(e, "remove", key=str(i)) for i, e in enumerate(emails)]

    async def both(a: HubSpotAdapter) -> list[list[Outcome]]:
        return [await a.apply(batch), await a.apply(again)]

    with respx.mock(base_url=BASE) as mock:
        read = mock.post(READ).mock(side_effect=contacts(emails))
        add = mock.put("/crm/v3/lists/123/memberships/add").mock(return_value=members())
        remove = mock.put("/crm/v3/lists/123/memberships/remove").mock(return_value=members())
        outcomes = run(adapter(), both)
    assert outcomes == [[Outcome.done()] * size] * 2
    assert [len(json.loads(c.request.content)["inputs"]) for c in read.calls] == [100] * (size // 100)
    assert add.call_count == 1 and sorted(json.loads(add.calls.last.request.content)) == sorted(emails.values())
    # Cold: the floor (a read per 100 emails, one membership call) within 10 %; warm: one call.
    assert (read.call_count + add.call_count) / size * 100 <= 1.1
    assert remove.call_count == 1 and read.call_count == size // 100
    assert remove.call_count / size * 100 <= 0.05


def test_known_emails_are_not_read_again_and_lists_are_grouped_per_action() -> None:
    target = adapter()
    first = [change("a@example.com", key="1"), change("b@example.com", key="2", list="9")]
    second = [change("a@example.com", "remove", key="3"), change("b@example.com", key="4"),
              change("a@example.com", key="5", list="9")]  # fmt: skip

    async def both(a: HubSpotAdapter) -> list[list[Outcome]]:
        return [await a.apply(first), await a.apply(second)]

    with respx.mock(base_url=BASE) as mock:
        read = mock.post(READ).mock(side_effect=contacts({"a@example.com": "1", "b@example.com": "2"}))
        add_123 = mock.put("/crm/v3/lists/123/memberships/add").mock(return_value=members())
        remove_123 = mock.put("/crm/v3/lists/123/memberships/remove").mock(return_value=members())
        add_9 = mock.put("/crm/v3/lists/9/memberships/add").mock(return_value=members())
        outcomes = run(target, both)
    assert outcomes == [[Outcome.done()] * 2, [Outcome.done()] * 3]
    assert read.call_count == 1, "the second batch must come from the email cache"
    assert [json.loads(c.request.content) for c in add_123.calls] == [["1"], ["2"]]
    assert [json.loads(c.request.content) for c in remove_123.calls] == [["1"]]
    assert [json.loads(c.request.content) for c in add_9.calls] == [["2"], ["1"]]


def test_removes_go_before_adds_on_the_same_list() -> None:
    order: list[str] = []

    def note(verb: str) -> Callable[[httpx.Request], httpx.Response]:
        return lambda request: order.append(verb) or members()  # type: ignore[func-returns-value]

    with respx.mock(base_url=BASE) as mock:
        mock.post(READ).mock(side_effect=contacts({"a@example.com": "1", "b@example.com": "2"}))
        mock.put("/crm/v3/lists/123/memberships/add").mock(side_effect=note("add"))
        mock.put("/crm/v3/lists/123/memberships/remove").mock(side_effect=note("remove"))
        apply([change("a@example.com", key="1"), change("b@example.com", "remove", key="2")])
    assert order == ["remove", "add"]


def test_removing_someone_hubspot_does_not_have_is_done_and_creates_nobody() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.post(READ).mock(side_effect=contacts({}))
        upsert = mock.post(UPSERT)
        outcomes = apply([change(action="remove")], adapter(create_missing_contacts=True))
    assert upsert.call_count == 0
    assert outcomes == [Outcome.done()], "not in HubSpot means in no list: already as wanted"


def test_change_without_email_is_skipped_without_any_call() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        outcomes = apply([change(None)])
        assert mock.calls.call_count == 0
    assert outcomes[0].kind == "skipped" and "no email" in (outcomes[0].reason or "")


# -- config and options ----------------------------------------------------------------


def test_defaults_are_hubspots_host_and_lower_rate_tier() -> None:
    target = adapter()
    assert target.base_url == "https://api.hubapi.com"
    assert (target.rate_limit.requests, target.rate_limit.per_seconds) == (100, 10)
    assert adapter(rate_limit={"requests": 190}).rate_limit.requests == 190
    assert TOKEN not in repr(target.config) and TOKEN in target.secrets()


def test_config_refuses_unknown_keys_and_needs_a_token() -> None:
    with pytest.raises(ValidationError):
        HubSpotConfig.model_validate({"type": "hubspot", "token": TOKEN, "create_missing_contact": True})
    with pytest.raises(ValidationError):
        HubSpotConfig.model_validate({"type": "hubspot"})
    with pytest.raises(ValidationError, match="token is empty"):
        HubSpotConfig.model_validate({"type": "hubspot", "token": " "})


@pytest.mark.parametrize("options, normalised", [
    ({"list": "123"}, {"list": "123"}), ({"list": 123}, {"list": "123"}),
    ({"list_name": " Enterprise "}, {"list_name": "Enterprise"}),
])  # fmt: skip
def test_mapping_takes_a_list_id_or_a_list_name(options: dict[str, Any], normalised: dict[str, Any]) -> None:
    assert HubSpotAdapter.validate_options(options) == normalised


@pytest.mark.parametrize("options", [
    {}, {"list": "123", "list_name": "E"}, {"list": "Enterprise"}, {"list": True}, {"list_name": ""},
    {"tag": "x"},
])  # fmt: skip
def test_mapping_options_that_cannot_work_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(OptionsError, match="list"):
        HubSpotAdapter.validate_options(options)
