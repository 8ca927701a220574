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


@pytest.mark.parametrize("action, status", [("add", "active"), ("remove", "inactive")])
def test_tag_call_is_exactly_what_mailchimp_documents(action: str, status: str) -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(tags_url()).mock(return_value=httpx.Response(204))
        outcomes = apply([change(email="  Ann@Example.COM ", action=action)])
    assert outcomes == [Outcome.done()]
    request = route.calls.last.request
    assert basic_password(request) == KEY
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"tags": [{"name": "Enterprise", "status": status}]}


def test_changes_of_one_member_share_one_call_and_members_get_their_own() -> None:
    with respx.mock(assert_all_called=True) as mock:
        ann = mock.post(tags_url()).mock(return_value=httpx.Response(204))
        bob = mock.post(tags_url(BOB_HASH)).mock(return_value=httpx.Response(204))
        outcomes = apply(
            [
                change(tag="Enterprise"),
                change("bob@example.com", tag="Beta"),
                change("ANN@example.com", tag="Beta", action="remove"),
            ]
        )
    assert [o.kind for o in outcomes] == ["done", "done", "done"]
    assert ann.call_count == 1 and bob.call_count == 1
    assert json.loads(ann.calls.last.request.content) == {
        "tags": [{"name": "Enterprise", "status": "active"}, {"name": "Beta", "status": "inactive"}]
    }


def test_a_tag_named_twice_for_one_member_goes_in_event_order_in_two_calls() -> None:
    # Two Plain groups mapped to the same tag: the later event must be applied last.
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(tags_url()).mock(return_value=httpx.Response(204))
        outcomes = apply(
            [
                change(action="remove", at="2026-03-01T10:00:02.000Z"),
                change(action="add", at="2026-03-01T10:00:01.000Z"),
            ]
        )
    assert [o.kind for o in outcomes] == ["done", "done"]
    sent = [json.loads(c.request.content)["tags"] for c in route.calls]
    assert sent == [[{"name": "Enterprise", "status": "active"}], [{"name": "Enterprise", "status": "inactive"}]]


def test_a_missing_member_is_created_with_status_if_new_then_tagged() -> None:
    with respx.mock(assert_all_called=True) as mock:
        tags = mock.post(tags_url()).mock(
            side_effect=[httpx.Response(404, json={"title": "Resource Not Found", "status": 404}), httpx.Response(204)]
        )
        audience = mock.get(f"{API}/lists/{AUD}").mock(return_value=httpx.Response(200, json={"id": AUD}))
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
    assert audience.calls.last.request.url.params["fields"] == "id,name"


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
        route = mock.post(tags_url(api=api)).mock(return_value=httpx.Response(204))
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


def test_a_non_member_is_skipped_with_a_masked_reason_and_never_created() -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(tags_url()).mock(return_value=not_found())
        mock.get(f"{API}/lists/{AUD}").mock(return_value=httpx.Response(200, json={"id": AUD}))
        put = mock.put(f"{API}/lists/{AUD}/members/{ANN_HASH}")
        [outcome] = apply([change()])
    assert outcome.kind == "skipped" and put.call_count == 0
    assert outcome.reason == f"{mask_email(ANN)} is not a member of audience {AUD} (create_missing_contacts is off)"


def test_removing_a_tag_from_a_non_member_is_done_even_with_creation_on() -> None:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(tags_url()).mock(return_value=not_found())
        mock.get(f"{API}/lists/{AUD}").mock(return_value=httpx.Response(200, json={"id": AUD}))
        put = mock.put(f"{API}/lists/{AUD}/members/{ANN_HASH}")
        outcomes = apply([change(action="remove")], create_missing_contacts=True, status_if_new="pending")
    assert outcomes == [Outcome.done()] and put.call_count == 0


def test_an_unknown_audience_fails_every_change_with_a_readable_reason_after_one_lookup() -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(url__regex=rf"{API}/lists/{AUD}/members/\w+/tags").mock(return_value=not_found())
        lookup = mock.get(f"{API}/lists/{AUD}").mock(return_value=not_found())
        outcomes = apply([change(), change("bob@example.com", action="remove")])
    assert [o.kind for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].reason == f"mc: audience '{AUD}' does not exist in this Mailchimp account (check audience_id)"
    assert lookup.call_count == 1


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
        mock.post(tags_url()).mock(return_value=refused)
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
        route = mock.post(tags_url()).mock(
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
