"""The Intercom adapter's calls on the wire: method, URL, headers and JSON body of each."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import respx
from connector.adapters.base import Change, OptionsError, Outcome
from connector.adapters.intercom import IntercomAdapter, IntercomConfig
from connector.testing.fakes import run_virtual
from pydantic import ValidationError

from tests.adapters.conftest import make_change, run_started
from tests.adapters.intercom.conftest import TOKEN, intercom_adapter

US = "https://api.intercom.io"
CONTACT = {
    "type": "contact",
    "id": "6762f0dd1bb69f9f2193bb83",
    "role": "user",
    "email": "ada@example.com",
    "external_id": None,
}
FOUND = {"type": "list", "data": [CONTACT], "total_count": 1}
NONE_FOUND = {"type": "list", "data": [], "total_count": 0}
TAG = {"type": "tag", "id": "81", "name": "Enterprise"}


def apply(changes: Sequence[Change], **config: Any) -> list[Outcome]:
    return run_started(intercom_adapter(**config), lambda a: a.apply(changes), virtual=True)


def change(
    action: str = "add",
    email: str = "ada@example.com",
    external_id: str | None = None,
    name: str | None = "Ada Lovelace",
) -> Change:
    return make_change(key="1", action=action, email=email, options={"tag": "Enterprise"},
                       external_id=external_id, full_name=name)  # fmt: skip


def body(call: Any) -> Any:
    return json.loads(call.request.content) if call.request.content else None


def assert_headers(request: httpx.Request, *, version: str = "2.14", has_body: bool = True) -> None:
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["intercom-version"] == version
    assert request.headers["accept"] == "application/json"
    if has_body:
        assert request.headers["content-type"] == "application/json"
    else:
        assert "content-type" not in request.headers


def mock_found(mock: respx.MockRouter, base: str = US) -> dict[str, respx.Route]:
    return {
        "search": mock.post(f"{base}/contacts/search").respond(200, json=FOUND),
        "tags": mock.post(f"{base}/tags").respond(200, json=TAG),
        "attach": mock.post(f"{base}/contacts/{CONTACT['id']}/tags").respond(200, json=TAG),
        "detach": mock.delete(f"{base}/contacts/{CONTACT['id']}/tags/81").respond(200, json=TAG),
    }


def test_add_is_search_then_one_tag_call_naming_the_contact() -> None:
    with respx.mock(assert_all_called=False) as mock:
        routes = mock_found(mock)
        assert [o.kind for o in apply([change()])] == ["done"]
        search, tags = routes["search"].calls.last, routes["tags"].calls.last
        assert body(search) == {"query": {"field": "email", "operator": "=", "value": "ada@example.com"}}
        assert body(tags) == {"name": "Enterprise", "users": [{"id": CONTACT["id"]}]}
        for call in (search, tags):
            assert call.request.method == "POST"
            assert_headers(call.request)
        assert routes["attach"].call_count == 0 and routes["detach"].call_count == 0


def people(n: int) -> list[dict[str, Any]]:
    return [{**CONTACT, "id": f"{i:024x}", "email": f"p{i}@example.com"} for i in range(n)]


def bulk_change(i: int, action: str = "add") -> Change:
    return Change(key=str(i), action=action, customer_id=f"c_{i}", email=f"p{i}@example.com",  # type: ignore[arg-type]
                  group_id="cg_1", group_key="enterprise", event_id=f"pEv_{i}", options={"tag": "Enterprise"})  # fmt: skip


def test_a_burst_of_adds_is_15_emails_a_search_and_50_contacts_a_tag_call() -> None:
    everyone = people(120)

    def search(request: httpx.Request) -> httpx.Response:
        query = json.loads(request.content)["query"]
        wanted = (
            {f["value"] for f in query["value"]}
            if "operator" in query and "value" in query and isinstance(query["value"], list)
            else {query["value"]}
        )
        return httpx.Response(200, json={"type": "list", "data": [c for c in everyone if c["email"] in wanted]})

    with respx.mock(assert_all_called=True) as mock:
        searches = mock.post(f"{US}/contacts/search").mock(side_effect=search)
        tags = mock.post(f"{US}/tags").respond(200, json=TAG)
        outcomes = apply([bulk_change(i) for i in range(120)])
    assert outcomes == [Outcome.done()] * 120
    queries = [body(c)["query"] for c in searches.calls]
    assert all(q["operator"] == "OR" and len(q["value"]) <= 15 for q in queries) and len(queries) == 8
    assert [len(body(c)["users"]) for c in tags.calls] == [50, 50, 20]
    assert searches.call_count + tags.call_count <= 30 * 120 / 100  # never two calls per change


def test_search_follows_the_next_page_cursor() -> None:
    first = {"type": "list", "data": people(2)[:1], "pages": {"type": "pages", "next": {"starting_after": "abc"}}}
    second = {"type": "list", "data": people(2)[1:], "pages": {"type": "pages"}}
    with respx.mock(assert_all_called=True) as mock:
        searches = mock.post(f"{US}/contacts/search").mock(
            side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)]
        )
        tags = mock.post(f"{US}/tags").respond(200, json=TAG)
        assert apply([bulk_change(0), bulk_change(1)]) == [Outcome.done()] * 2
    assert body(searches.calls[1])["pagination"] == {"starting_after": "abc"}
    assert body(searches.calls[1])["query"] == body(searches.calls[0])["query"]
    assert body(tags.calls.last)["users"] == [{"id": p["id"]} for p in people(2)]


def test_remove_is_a_delete_without_body() -> None:
    with respx.mock(assert_all_called=False) as mock:
        routes = mock_found(mock)
        assert [o.kind for o in apply([change("remove")])] == ["done"]
        call = routes["detach"].calls.last
        assert call.request.url == f"{US}/contacts/{CONTACT['id']}/tags/81"
        assert call.request.content == b""
        assert_headers(call.request, has_body=False)
        assert routes["attach"].call_count == 0


@pytest.mark.parametrize(
    "region, host",
    [("us", "https://api.intercom.io"), ("eu", "https://api.eu.intercom.io"), ("au", "https://api.au.intercom.io")],
)
def test_region_picks_the_host(region: str, host: str) -> None:
    with respx.mock(assert_all_called=False) as mock:
        routes = mock_found(mock, host)
        assert [o.kind for o in apply([change()], region=region)] == ["done"]
        assert routes["tags"].call_count == 1


def test_base_url_replaces_the_region_host_and_keeps_its_prefix() -> None:
    base = "http://proxy.internal:8080/intercom"
    with respx.mock(assert_all_called=False) as mock:
        routes = mock_found(mock, base)
        assert [o.kind for o in apply([change()], region="eu", base_url=base + "/")] == ["done"]
        assert str(routes["search"].calls.last.request.url) == f"{base}/contacts/search"


def test_api_version_is_sent_as_configured() -> None:
    with respx.mock(assert_all_called=False) as mock:
        routes = mock_found(mock)
        apply([change()], api_version="2.13")
        assert_headers(routes["tags"].calls.last.request, version="2.13")


def test_create_sends_role_email_external_id_and_name() -> None:
    created = {**CONTACT, "id": "6762f0dd1bb69f9f2193bb99"}
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{US}/contacts/search").respond(200, json=NONE_FOUND)
        create = mock.post(f"{US}/contacts").respond(200, json=created)
        mock.post(f"{US}/tags").respond(200, json=TAG)
        attach = mock.post(f"{US}/contacts/{created['id']}/tags").respond(200, json=TAG)
        outcomes = apply([change(external_id="u-42")], create_missing_contacts=True)
        assert [o.kind for o in outcomes] == ["done"]
        assert body(create.calls.last) == {
            "role": "user",
            "email": "ada@example.com",
            "external_id": "u-42",
            "name": "Ada Lovelace",
        }
        assert_headers(create.calls.last.request)
        assert attach.call_count == 1


def test_create_lead_sends_no_external_id() -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{US}/contacts/search").respond(200, json=NONE_FOUND)
        create = mock.post(f"{US}/contacts").respond(200, json={**CONTACT, "role": "lead"})
        mock.post(f"{US}/tags").respond(200, json=TAG)
        mock.post(f"{US}/contacts/{CONTACT['id']}/tags").respond(200, json=TAG)
        apply([change(external_id="u-42", name=None)], create_missing_contacts=True, contact_role="lead")
        assert body(create.calls.last) == {"role": "lead", "email": "ada@example.com"}


def test_missing_contact_without_creation_makes_no_other_call() -> None:
    with respx.mock(assert_all_called=False) as mock:
        search = mock.post(f"{US}/contacts/search").respond(200, json=NONE_FOUND)
        (outcome,) = apply([change()])
        assert outcome.kind == "skipped" and "a***@e***.com not in Intercom" in (outcome.reason or "")
        assert search.call_count == 1 and len(mock.calls) == 1


def test_detach_404_about_the_tag_is_done_about_the_contact_is_looked_up_again() -> None:
    not_attached = {"type": "error.list", "errors": [{"code": "not_found", "message": "Resource Not Found"}]}
    with respx.mock(assert_all_called=False) as mock:
        routes = mock_found(mock)
        routes["detach"].respond(404, json=not_attached)
        assert [o.kind for o in apply([change("remove")])] == ["done"]
        assert routes["search"].call_count == 1
        gone = {"type": "error.list", "errors": [{"code": "not_found", "message": "User Not Found"}]}
    with respx.mock(assert_all_called=False) as mock:
        routes = mock_found(mock)
        routes["detach"].respond(404, json=gone)
        routes["search"].side_effect = [httpx.Response(200, json=FOUND), httpx.Response(200, json=NONE_FOUND)]
        (outcome,) = apply([change("remove")])
        assert outcome.kind == "done" and routes["search"].call_count == 2


def test_long_rate_limit_becomes_retry_with_the_reset_delay() -> None:
    reset = str(int(time.time()) + 3600)
    headers = {"X-RateLimit-Limit": "1666", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    limited = {
        "type": "error.list",
        "errors": [{"code": "rate_limit_exceeded", "message": "Exceeded rate limit of 1666 in 10_seconds"}],
    }
    with respx.mock(assert_all_called=False) as mock:
        search = mock.post(f"{US}/contacts/search").respond(429, json=limited, headers=headers)
        (outcome,) = apply([change()])
        assert outcome.kind == "retry" and outcome.retry_after is not None
        assert 3590 <= outcome.retry_after <= 3601
        assert "rate_limit_exceeded" in (outcome.reason or "") and search.call_count == 1


def test_short_rate_limit_is_waited_out_then_done() -> None:
    headers = {
        "X-RateLimit-Limit": "1666",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(time.time()) + 2),
    }
    with respx.mock(assert_all_called=False) as mock:
        routes = mock_found(mock)
        routes["search"].side_effect = [httpx.Response(429, json={}, headers=headers), httpx.Response(200, json=FOUND)]
        assert [o.kind for o in apply([change()])] == ["done"]
        assert routes["search"].call_count == 2


def test_check_online_calls_me() -> None:
    me = {"type": "admin", "app": {"type": "app", "id_code": "abc", "name": "Acme", "region": "EU"}}

    async def main() -> list[str]:
        adapter = intercom_adapter(region="eu")
        await adapter.start()
        try:
            return await adapter.check_online([{"tag": "Enterprise"}])
        finally:
            await adapter.close()

    with respx.mock(assert_all_called=False) as mock:
        route = mock.get("https://api.eu.intercom.io/me").respond(200, json=me)
        assert run_virtual(main()) == []
        assert len(mock.calls) == 1
        assert_headers(route.calls.last.request, has_body=False)


def test_default_rate_limit_is_intercoms_per_app_limit_with_margin() -> None:
    limit = intercom_adapter().rate_limit
    assert limit.per_seconds == 10
    assert 1300 <= limit.requests < 1666  # 10,000 a minute is 1,666 per 10 s window
    assert intercom_adapter(rate_limit={"requests": 100}).rate_limit.requests == 100


@pytest.mark.parametrize(
    "raw",
    [
        {"token": ""},
        {"token": "short"},
        {"region": "us-east"},
        {"api_version": "latest"},
        {"contact_role": "visitor"},
        {"tokn": "x"},
    ],
)
def test_config_refuses(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        IntercomConfig.model_validate({"type": "intercom", "token": TOKEN, **raw})


def test_token_is_secret_and_redacted() -> None:
    adapter = intercom_adapter()
    assert TOKEN not in repr(adapter.config)
    assert TOKEN in adapter.secrets()


@pytest.mark.parametrize(
    "options, ok",
    [
        ({"tag": "Enterprise"}, True),
        ({"tag": "VIP customers"}, True),
        ({}, False),
        ({"tag": ""}, False),
        ({"tag": " Enterprise"}, False),
        ({"tag": 2024}, False),
        ({"tag": "x", "list": "1"}, False),
    ],
)
def test_mapping_options(options: dict[str, Any], ok: bool) -> None:
    if ok:
        assert IntercomAdapter.validate_options(options) == options
    else:
        with pytest.raises(OptionsError):
            IntercomAdapter.validate_options(options)
