"""The Mailchimp adapter: the exact calls it makes, how answers become outcomes, its config."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import respx
from connector.adapters.base import Change, OptionsError, Outcome
from connector.adapters.mailchimp import MailchimpAdapter
from connector.config import YamlError, load_config
from connector.redact import mask_email
from pydantic import ValidationError

from tests.adapters.conftest import run_started
from tests.adapters.mailchimp.conftest import AUD, KEY, change, config
from tests.conftest import write_setup

API = "https://us21.api.mailchimp.com/3.0"
ANN = "ann@example.com"
ANN_HASH = hashlib.md5(b"ann@example.com").hexdigest()
BOB_HASH = hashlib.md5(b"bob@example.com").hexdigest()
T = TypeVar("T")


def run(body: Callable[[MailchimpAdapter], Awaitable[T]], **extra: Any) -> T:
    return run_started(MailchimpAdapter("mc", config(**extra)), body)


def apply(changes: Sequence[Change], **extra: Any) -> list[Outcome]:
    return run(lambda adapter: adapter.apply(changes), **extra)


def basic_password(request: httpx.Request) -> str:
    scheme, _, value = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(value).decode().partition(":")[2]


def tags_url(member: str = ANN_HASH, api: str = API) -> str:
    return f"{api}/lists/{AUD}/members/{member}/tags"


# -- the exact requests ---------------------------------------------------------------

SEGMENTS = f"{API}/lists/{AUD}/segments"
ENTERPRISE, BETA = 7, 8


def segment_url(segment: int = ENTERPRISE, api: str = API) -> str:
    return f"{api}/lists/{AUD}/segments/{segment}"


def listed(*segments: tuple[int, str], total: int | None = None) -> httpx.Response:
    page = [{"id": i, "name": n, "type": "static", "member_count": 0, "list_id": AUD} for i, n in segments]
    return httpx.Response(
        200, json={"segments": page, "list_id": AUD, "total_items": len(page) if total is None else total}
    )


def batch_answer(
    errors: Sequence[str] = (), message: str = "Email address is not subscribed to the list"
) -> httpx.Response:
    body = {"members_added": [], "members_removed": [], "total_added": 0, "total_removed": 0,
            "errors": [{"email_addresses": list(errors), "error": message}] if errors else [],
            "error_count": len(errors)}  # fmt: skip
    return httpx.Response(200, json=body)


def mock_segments(mock: respx.MockRouter, api: str = API) -> respx.Route:
    return mock.get(f"{api}/lists/{AUD}/segments").mock(return_value=listed((ENTERPRISE, "Enterprise"), (BETA, "Beta")))


def sent(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


@pytest.mark.parametrize("action, key", [("add", "members_to_add"), ("remove", "members_to_remove")])
def test_segment_call_is_exactly_what_mailchimp_documents(action: str, key: str) -> None:
    with respx.mock(assert_all_called=True) as mock:
        lookup = mock_segments(mock)
        route = mock.post(segment_url()).mock(return_value=batch_answer())
        outcomes = apply([change(email="  Ann@Example.COM ", action=action)])
    assert outcomes == [Outcome.done()]
    request = route.calls.last.request
    assert basic_password(request) == KEY
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {key: ["Ann@Example.COM"]}
    assert dict(lookup.calls.last.request.url.params) == {
        "type": "static", "count": "1000", "offset": "0", "fields": "segments.id,segments.name,total_items"
    }  # fmt: skip


def test_one_call_per_tag_carries_every_member_and_segments_are_looked_up_once() -> None:
    with respx.mock(assert_all_called=True) as mock:
        lookup = mock_segments(mock)
        enterprise = mock.post(segment_url(ENTERPRISE)).mock(return_value=batch_answer())
        beta = mock.post(segment_url(BETA)).mock(return_value=batch_answer())

        async def twice(adapter: MailchimpAdapter) -> list[list[Outcome]]:
            batch = [change(tag="Enterprise"), change("bob@example.com", tag="Beta"),
                     change("ANN@example.com", tag="beta", action="remove"), change("cy@example.com")]  # fmt: skip
            return [await adapter.apply(batch), await adapter.apply([change("dee@example.com", tag="Beta")])]

        first, second = run(twice)
    assert [o.kind for o in first + second] == ["done"] * 5
    assert lookup.call_count == 1  # cached: the second batch looks nothing up
    assert sent(enterprise) == [{"members_to_add": [ANN, "cy@example.com"]}]
    assert sent(beta) == [
        {"members_to_add": ["bob@example.com"], "members_to_remove": ["ANN@example.com"]},
        {"members_to_add": ["dee@example.com"]},
    ]


def test_a_missing_tag_is_created_as_an_empty_static_segment_after_reading_every_page() -> None:
    with respx.mock(assert_all_called=True) as mock:
        pages = mock.get(SEGMENTS).mock(side_effect=[listed((1, "Old"), total=2), listed((2, "Other"), total=2)])
        create = mock.post(SEGMENTS).mock(return_value=httpx.Response(200, json={"id": 42, "name": "Enterprise"}))
        route = mock.post(segment_url(42)).mock(return_value=batch_answer())
        assert apply([change()]) == [Outcome.done()]
    assert [c.request.url.params["offset"] for c in pages.calls] == ["0", "1"]
    assert sent(create) == [{"name": "Enterprise", "static_segment": []}]
    assert route.call_count == 1


def test_a_burst_is_sent_500_addresses_a_call_never_one_per_member() -> None:
    emails = [f"m{i}@example.com" for i in range(1203)]
    with respx.mock(assert_all_called=False) as mock:
        mock_segments(mock)
        route = mock.post(segment_url()).mock(return_value=batch_answer())
        tags = mock.post(url__regex=rf"{API}/lists/{AUD}/members/\w+/tags")
        outcomes = apply(
            [change(e, key=e) for e in emails[:1000]] + [change(e, action="remove", key=e) for e in emails[1000:]]
        )
    assert outcomes == [Outcome.done()] * len(emails)
    bodies = sent(route)
    assert [len(b.get("members_to_add", [])) for b in bodies] == [500, 500]
    assert [len(b.get("members_to_remove", [])) for b in bodies] == [203, 0]
    assert route.call_count + 1 <= 3 * len(emails) / 100 and tags.call_count == 0


def test_a_tag_named_twice_for_one_member_goes_in_event_order_in_two_calls() -> None:
    # Two Plain groups mapped to the same tag: the later event must be applied last.
    with respx.mock(assert_all_called=True) as mock:
        mock_segments(mock)
        route = mock.post(segment_url()).mock(return_value=batch_answer())
        outcomes = apply(
            [
                change(action="remove", at="2026-03-01T10:00:02.000Z"),
                change("bob@example.com"),
                change(action="add", at="2026-03-01T10:00:01.000Z"),
            ]
        )
    assert [o.kind for o in outcomes] == ["done", "done", "done"]
    assert sent(route) == [{"members_to_add": ["bob@example.com", ANN]}, {"members_to_remove": [ANN]}]


def test_an_address_the_segment_call_names_in_errors_goes_its_own_way() -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock_segments(mock)
        mock.post(segment_url()).mock(return_value=batch_answer(["ANN@EXAMPLE.COM"]))
        tags = mock.post(tags_url()).mock(return_value=httpx.Response(204))
        outcomes = apply([change(), change("bob@example.com")])
    assert outcomes == [Outcome.done(), Outcome.done()]
    assert sent(tags) == [{"tags": [{"name": "Enterprise", "status": "active"}]}]


def test_a_missing_member_is_created_with_status_if_new_then_tagged() -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock_segments(mock)
        mock.post(segment_url()).mock(return_value=batch_answer([ANN]))
        tags = mock.post(tags_url()).mock(
            side_effect=[httpx.Response(404, json={"title": "Resource Not Found", "status": 404}), httpx.Response(204)]
        )
        # The segment lookup already showed the audience exists: no second look.
        put = mock.put(f"{API}/lists/{AUD}/members/{ANN_HASH}").mock(
            return_value=httpx.Response(200, json={"id": ANN_HASH, "status": "transactional"})
        )
        outcomes = apply(
            [change(email=" Ann@example.com")], create_missing_contacts=True, status_if_new="transactional"
        )
    assert outcomes == [Outcome.done()] and tags.call_count == 2
    request = put.calls.last.request
    assert basic_password(request) == KEY and request.headers["content-type"] == "application/json"
    # No merge_fields, no status: only what creation needs, nothing that overwrites a person.
    assert json.loads(request.content) == {"email_address": "Ann@example.com", "status_if_new": "transactional"}


def test_check_online_pings_then_reads_the_audience() -> None:
    with respx.mock(assert_all_called=True) as mock:
        ping = mock.get(f"{API}/ping").mock(
            return_value=httpx.Response(200, json={"health_status": "Everything's Chimpy!"})
        )
        audience = mock.get(f"{API}/lists/{AUD}", params={"fields": "id,name"}).mock(
            return_value=httpx.Response(200, json={"id": AUD, "name": "Customers"})
        )
        problems = run(lambda adapter: adapter.check_online([{"tag": "Enterprise"}]))
    assert problems == []
    for route in (ping, audience):
        assert basic_password(route.calls.last.request) == KEY


def test_base_url_replaces_scheme_and_host_and_the_key_needs_no_data_centre() -> None:
    api = "http://127.0.0.1:9100/mailchimp/3.0"
    with respx.mock(assert_all_called=True) as mock:
        mock_segments(mock, api)
        route = mock.post(segment_url(api=api)).mock(return_value=batch_answer())
        outcomes = apply([change()], api_key="key-without-dc", base_url="http://127.0.0.1:9100/mailchimp")
    assert outcomes == [Outcome.done()] and route.call_count == 1
    assert basic_password(route.calls.last.request) == "key-without-dc"


# -- answers become outcomes ----------------------------------------------------------


def not_found() -> httpx.Response:
    return httpx.Response(
        404,
        json={
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": "Resource Not Found",
            "status": 404,
            "detail": "The requested resource could not be found.",
            "instance": "x",
        },
    )


def outsider(mock: respx.MockRouter) -> None:
    """Ann is not in the audience: the segment call names her, her tags call says 404."""
    mock_segments(mock)
    mock.post(segment_url()).mock(return_value=batch_answer([ANN]))
    mock.post(tags_url()).mock(return_value=not_found())
    mock.get(f"{API}/lists/{AUD}").mock(return_value=httpx.Response(200, json={"id": AUD}))


def test_a_non_member_is_skipped_with_a_masked_reason_and_never_created() -> None:
    with respx.mock(assert_all_called=False) as mock:
        outsider(mock)
        put = mock.put(f"{API}/lists/{AUD}/members/{ANN_HASH}")
        [outcome] = apply([change()])
    assert outcome.kind == "skipped" and put.call_count == 0
    assert outcome.reason == f"{mask_email(ANN)} is not a member of audience {AUD} (create_missing_contacts is off)"


def test_removing_a_tag_from_a_non_member_is_done_even_with_creation_on() -> None:
    with respx.mock(assert_all_called=False) as mock:
        outsider(mock)
        put = mock.put(f"{API}/lists/{AUD}/members/{ANN_HASH}")
        outcomes = apply([change(action="remove")], create_missing_contacts=True, status_if_new="pending")
    assert outcomes == [Outcome.done()] and put.call_count == 0


def test_an_unknown_audience_fails_every_change_with_a_readable_reason_after_one_lookup() -> None:
    with respx.mock(assert_all_called=True) as mock:
        lookup = mock.get(SEGMENTS).mock(return_value=not_found())
        outcomes = apply([change(), change("bob@example.com", action="remove")])
    assert [o.kind for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].reason == f"mc: audience '{AUD}' does not exist in this Mailchimp account (check audience_id)"
    assert lookup.call_count == 1


def test_a_deleted_segment_is_retried_and_looked_up_again() -> None:
    with respx.mock(assert_all_called=True) as mock:
        lookup = mock_segments(mock)
        mock.post(segment_url()).mock(side_effect=[not_found(), batch_answer()])

        async def twice(adapter: MailchimpAdapter) -> list[Outcome]:
            return [*(await adapter.apply([change()])), *(await adapter.apply([change()]))]

        outcomes = run(twice)
    assert [o.kind for o in outcomes] == ["retry", "done"] and lookup.call_count == 2


def test_a_refused_key_fails_with_mailchimps_words_and_no_secret() -> None:
    refused = httpx.Response(
        401,
        json={
            "type": "x",
            "title": "API Key Invalid",
            "status": 401,
            "instance": "i",
            "detail": f"Your API key may be invalid ({KEY}).",
        },
    )
    with respx.mock() as mock:
        mock.get(SEGMENTS).mock(return_value=refused)
        [outcome] = apply([change()])
    assert outcome.kind == "failed"
    assert outcome.reason and "HTTP 401: API Key Invalid: Your API key may be invalid" in outcome.reason
    assert KEY not in outcome.reason and KEY.split("-")[0] not in outcome.reason


def test_a_change_without_email_is_skipped_without_a_call() -> None:
    with respx.mock() as mock:  # any call would fail: nothing is routed
        assert apply([change(email=None), change(email="  ")]) == [Outcome.skipped("customer has no email")] * 2
        assert not mock.calls


def test_a_failed_earlier_change_holds_back_a_later_one_for_the_same_tag() -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock_segments(mock)
        route = mock.post(segment_url()).mock(
            return_value=httpx.Response(400, json={"title": "Invalid Resource", "status": 400, "detail": "nope"})
        )
        outcomes = apply(
            [
                change(action="add", at="2026-03-01T10:00:01.000Z"),
                change(action="remove", at="2026-03-01T10:00:02.000Z"),
            ]
        )
    assert [o.kind for o in outcomes] == ["failed", "retry"] and route.call_count == 1


@pytest.mark.parametrize(
    "answers, problem",
    [
        ([httpx.Response(401, json={"title": "API Key Invalid", "detail": "bad key"})], "HTTP 401: API Key Invalid"),
        ([httpx.Response(200, json={}), not_found()], f"audience '{AUD}' does not exist"),
    ],
)
def test_check_online_names_the_problem(answers: list[httpx.Response], problem: str) -> None:
    with respx.mock() as mock:
        mock.get(f"{API}/ping").mock(return_value=answers[0])
        if len(answers) > 1:
            mock.get(f"{API}/lists/{AUD}").mock(return_value=answers[1])
        [found] = run(lambda adapter: adapter.check_online())
    assert problem in found and KEY not in found


# -- config and options ---------------------------------------------------------------


def test_the_data_centre_comes_from_the_key() -> None:
    adapter = MailchimpAdapter("mc", config(api_key="abc-us7"))
    assert adapter.base_url == "https://us7.api.mailchimp.com"
    assert adapter.rate_limit.max_concurrency <= 10


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"create_missing_contacts": True}, "needs status_if_new"),
        ({"create_missing_contacts": True, "status_if_new": "yes"}, "'transactional'"),
        ({"api_key": "0123456789abcdef"}, "must end in its data centre"),
        ({"api_key": ""}, "api_key is empty"),
        ({"audience_id": "../x"}, "letters and digits"),
        ({"rate_limit": {"max_concurrency": 11}}, "at most 10"),
        ({"apikey": KEY}, "Extra inputs"),
    ],
)
def test_config_refuses(extra: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        config(**extra)
    messages = " ".join(error["msg"] for error in refused.value.errors())  # what `check` prints
    assert words in messages and "0123456789abcdef" not in messages


def test_config_accepts_creation_with_a_status_and_a_keyless_dc_with_base_url() -> None:
    assert config(create_missing_contacts=True, status_if_new="transactional").status_if_new == "transactional"
    assert config(api_key="no-dc-here!", base_url="http://127.0.0.1:9100/mailchimp").base_url


def test_check_reports_a_missing_status_if_new_with_file_and_line(tmp_path: Path) -> None:
    path = write_setup(
        tmp_path,
        targets={"mc": {"type": "mailchimp", "api_key": KEY, "audience_id": AUD, "create_missing_contacts": True}},
    )
    with pytest.raises(YamlError) as refused:
        load_config(path)
    message = str(refused.value)
    assert str(path) in message and "targets.mc" in message and "needs status_if_new" in message
    assert KEY not in message


@pytest.mark.parametrize("options", [{}, {"tag": ""}, {"tag": "  "}, {"tag": 7}, {"tag": "A", "list": "1"}])
def test_mapping_options_need_exactly_one_tag(options: dict[str, Any]) -> None:
    with pytest.raises(OptionsError, match="tag: <tag name>"):
        MailchimpAdapter.validate_options(options)


def test_mapping_option_tag_is_trimmed() -> None:
    assert MailchimpAdapter.validate_options({"tag": " Enterprise "}) == {"tag": "Enterprise"}
