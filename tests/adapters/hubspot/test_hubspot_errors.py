"""The HubSpot adapter when HubSpot says no: missing contacts and lists, vanished ids, auth, limits."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx
from connector.adapters.base import Outcome

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
    run,
)

ADD = "/crm/v3/lists/123/memberships/add"


def hubspot_error(status: int, category: str, message: str, **extra: Any) -> httpx.Response:
    body = {"status": "error", "message": message, "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
            "category": category, **extra}  # fmt: skip
    return httpx.Response(status, json=body)


def a_list(list_id: str, processing_type: str = "MANUAL", object_type: str = "0-1") -> httpx.Response:
    return httpx.Response(200, json={"list": {"listId": list_id, "name": "E", "objectTypeId": object_type,
                                              "processingType": processing_type}})  # fmt: skip


def test_contact_not_in_hubspot_is_skipped_with_a_masked_email_and_no_list_call() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.post(READ).mock(side_effect=contacts({"bob@example.com": "7"}))
        add = mock.put(ADD).mock(return_value=members())
        outcomes = apply([change("ann@example.com", key="1"), change("bob@example.com", key="2")])
    assert outcomes[1] == Outcome.done()
    assert outcomes[0].kind == "skipped"
    assert outcomes[0].reason == "contact a***@e***.com not in HubSpot and create_missing_contacts is off"
    assert json.loads(add.calls.last.request.content) == ["7"]


def test_a_vanished_record_id_is_looked_up_afresh_once() -> None:
    """Cached id 1 was merged into 9: HubSpot reports 1 missing; a fresh read finds 9."""
    target = adapter()
    answers = iter([contacts({"ann@example.com": "1"}), contacts({"ann@example.com": "9"})])
    adds = iter([members(), members(missing=["1"]), members()])

    async def twice(a: Any) -> list[Outcome]:
        await a.apply([change()])
        return await a.apply([change(key="2")])  # type: ignore[no-any-return]

    with respx.mock(base_url=BASE) as mock:
        read = mock.post(READ).mock(side_effect=lambda request: next(answers)(request))
        add = mock.put(ADD).mock(side_effect=lambda request: next(adds))
        assert run(target, twice) == [Outcome.done()]
    assert read.call_count == 2
    assert [json.loads(c.request.content) for c in add.calls] == [["1"], ["1"], ["9"]]


def test_a_record_still_missing_after_the_fresh_lookup_is_skipped() -> None:
    with respx.mock(base_url=BASE) as mock:
        read = mock.post(READ).mock(side_effect=contacts({"ann@example.com": "1"}))
        add = mock.put(ADD).mock(return_value=members(missing=["1"]))
        [outcome] = apply([change()])
    assert outcome.kind == "skipped" and "vanished" in (outcome.reason or "")
    assert read.call_count == 2 and add.call_count == 2, "one fresh try, not a loop"


def test_unknown_list_fails_naming_the_list() -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.post(READ).mock(side_effect=contacts({"ann@example.com": "1"}))
        mock.put(ADD).mock(return_value=hubspot_error(404, "OBJECT_NOT_FOUND", "List does not exist with id 123"))
        [outcome] = apply([change()])
    assert outcome.kind == "failed"
    assert outcome.reason == (
        "hubspot: PUT /crm/v3/lists/123/memberships/add -> HTTP 404: HubSpot has no list 123 "
        "(deleted? check the mapping): OBJECT_NOT_FOUND: List does not exist with id 123"
    )


def test_list_name_that_does_not_resolve_fails_before_any_contact_call() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get(url__regex=r"/name/").mock(return_value=hubspot_error(404, "OBJECT_NOT_FOUND", "List does not exist"))
        read = mock.post(READ)
        [outcome] = apply([change(list_name="Enterprize")])
    assert outcome.kind == "failed" and "list named 'Enterprize' not found in HubSpot" in (outcome.reason or "")
    assert read.call_count == 0


def test_list_name_of_a_dynamic_list_fails_without_writing() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get(url__regex=r"/name/").mock(return_value=a_list("5", "DYNAMIC"))
        add = mock.put("/crm/v3/lists/5/memberships/add")
        [outcome] = apply([change(list_name="Active users")])
    assert outcome.kind == "failed" and "is a DYNAMIC list" in (outcome.reason or "")
    assert add.call_count == 0


def test_refused_token_fails_saying_so_without_the_token() -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.post(READ).mock(return_value=hubspot_error(401, "INVALID_AUTHENTICATION", f"bad token {TOKEN}"))
        [outcome] = apply([change()])
    assert outcome.kind == "failed"
    assert "private app token was refused" in (outcome.reason or "") and TOKEN not in (outcome.reason or "")


def test_missing_scope_fails_naming_the_scope() -> None:
    detail = [{"message": "One or more of the following scopes are required.",
               "context": {"requiredGranularScopes": ["crm.lists.write"]}}]  # fmt: skip
    with respx.mock(base_url=BASE) as mock:
        mock.post(READ).mock(side_effect=contacts({"ann@example.com": "1"}))
        add = mock.put(ADD).mock(return_value=hubspot_error(403, "MISSING_SCOPES", "not granted", errors=detail))
        [outcome] = apply([change()])
    assert outcome.kind == "failed" and "lacks scope crm.lists.write" in (outcome.reason or "")
    assert add.call_count == 1, "a 403 for scopes is permanent: no retry"


def test_rolling_window_429_becomes_retry_after_the_window() -> None:
    limited = hubspot_error(429, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit.",
                            policyName="TEN_SECONDLY_ROLLING")  # fmt: skip
    limited.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = "10000"
    with respx.mock(base_url=BASE) as mock:
        mock.post(READ).mock(return_value=limited)
        outcomes = apply([change("a@example.com", key="1"), change("b@example.com", key="2")])
    assert [o.kind for o in outcomes] == ["retry", "retry"]
    assert outcomes[0].retry_after == 10.0


def test_a_failing_list_does_not_fail_the_other_lists() -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.post(READ).mock(side_effect=contacts({"a@example.com": "1"}))
        mock.put(ADD).mock(return_value=hubspot_error(400, "VALIDATION_ERROR", "List 123 is DYNAMIC"))
        mock.put("/crm/v3/lists/9/memberships/add").mock(return_value=members())
        outcomes = apply([change("a@example.com", key="1"), change("a@example.com", key="2", list="9")])
    assert outcomes[0].kind == "failed" and "List 123 is DYNAMIC" in (outcomes[0].reason or "")
    assert outcomes[1] == Outcome.done()


def test_a_contact_hubspot_will_not_create_fails_alone() -> None:
    partial = {"status": "COMPLETE", "results": [{"id": "5", "properties": {"email": "ok@example.com"}}],
               "numErrors": 1, "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                                           "message": "Email bad@example is invalid", "context": {}}]}  # fmt: skip
    with respx.mock(base_url=BASE) as mock:
        mock.post(READ).mock(side_effect=contacts({}))
        mock.post(UPSERT).mock(return_value=httpx.Response(207, json=partial))
        add = mock.put(ADD).mock(return_value=members())
        outcomes = apply([change("bad@example", key="1"), change("ok@example.com", key="2")],
                         adapter(create_missing_contacts=True))  # fmt: skip
    assert outcomes[1] == Outcome.done() and json.loads(add.calls.last.request.content) == ["5"]
    assert outcomes[0].kind == "failed" and "VALIDATION_ERROR: Email" in (outcomes[0].reason or "")


# -- check --online ---------------------------------------------------------------------


def test_check_online_stops_at_a_refused_token() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/crm/v3/objects/contacts").mock(return_value=hubspot_error(401, "INVALID_AUTHENTICATION", "no"))
        lists = mock.get(url__regex=r"/crm/v3/lists/")
        problems = run(adapter(), lambda a: a.check_online([{"list": "1"}, {"list_name": "E"}]))
    assert len(problems) == 1 and "token was refused" in problems[0]
    assert lists.call_count == 0


def test_check_online_names_every_list_that_cannot_be_written() -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/crm/v3/objects/contacts").mock(return_value=httpx.Response(200, json={"results": []}))
        mock.get("/crm/v3/lists/1").mock(return_value=a_list("1"))
        mock.get("/crm/v3/lists/2").mock(return_value=a_list("2", "DYNAMIC"))
        mock.get("/crm/v3/lists/3").mock(return_value=hubspot_error(404, "OBJECT_NOT_FOUND", "List does not exist"))
        mock.get(url__regex=r"/name/Deals").mock(return_value=a_list("4", object_type="0-3"))
        options = [{"list": "1"}, {"list": "2"}, {"list": "3"}, {"list_name": "Deals"}]
        problems = run(adapter(), lambda a: a.check_online(options))
    assert len(problems) == 3
    assert "list 2 is a DYNAMIC list" in problems[0]
    assert "list 3 not found in HubSpot" in problems[1]
    assert "list named 'Deals' holds objects of type 0-3, not contacts" in problems[2]
