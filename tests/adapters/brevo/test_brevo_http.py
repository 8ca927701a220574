"""The Brevo adapter's calls on the wire (respx): method, URL, headers and JSON body of each."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import respx
from connector.adapters.base import Change, OptionsError, Outcome
from connector.adapters.brevo import BrevoAdapter, BrevoConfig
from pydantic import ValidationError

from tests.adapters.started import apply_batches

KEY = "xkeysib-respx-0123456789abcdef-AbCdEf"
BASE = "https://api.brevo.com/v3"


def apply(changes: Sequence[Change], **config: Any) -> list[Outcome]:
    adapter = BrevoAdapter("brevo", BrevoConfig.model_validate({"type": "brevo", "api_key": KEY, **config}))
    return apply_batches(adapter, changes)[0]


def change(email: str, action: str = "add", list_id: int = 12) -> Change:
    return Change(key=email, action=action, customer_id="c", email=email, group_id="cg",  # type: ignore[arg-type]
                  group_key="g", event_id="pEv", options={"list": list_id})  # fmt: skip


def sent(route: respx.Route, n: int = -1) -> Any:
    request = route.calls[n].request
    assert request.headers["api-key"] == KEY and request.headers["accept"] == "application/json"
    return json.loads(request.content) if request.content else None


def answer(success: list[str], failure: list[str]) -> httpx.Response:
    return httpx.Response(201, json={"contacts": {"success": success, "failure": failure}})


@respx.mock(assert_all_called=True)
def test_removes_then_adds_one_call_each_per_list(respx_mock: respx.MockRouter) -> None:
    remove = respx_mock.post(f"{BASE}/contacts/lists/12/contacts/remove").mock(return_value=answer(["b@x.io"], []))
    add = respx_mock.post(f"{BASE}/contacts/lists/12/contacts/add").mock(return_value=answer(["a@x.io", "c@x.io"], []))
    outcomes = apply([change("A@x.io"), change("b@x.io", "remove"), change("c@x.io"), change("a@x.io")])
    assert [o.kind for o in outcomes] == ["done"] * 4
    assert sent(remove) == {"emails": ["b@x.io"]} and sent(add) == {"emails": ["a@x.io", "c@x.io"]}
    assert remove.calls[0].request.headers["content-type"] == "application/json"


@respx.mock(assert_all_called=True)
def test_more_than_150_emails_are_split_into_calls_of_150(respx_mock: respx.MockRouter) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return answer(json.loads(request.content)["emails"], [])

    add = respx_mock.post(f"{BASE}/contacts/lists/12/contacts/add").mock(side_effect=echo)
    outcomes = apply([change(f"p{i}@x.io") for i in range(320)])
    assert [len(sent(add, n)["emails"]) for n in range(3)] == [150, 150, 20]
    assert {o.kind for o in outcomes} == {"done"}


@respx.mock(assert_all_called=True)
def test_failed_adds_are_looked_up_member_missing_or_refused(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(f"{BASE}/contacts/lists/12/contacts/add").mock(
        return_value=answer(["ok@x.io"], ["in@x.io", "gone@x.io", "odd@x.io"])
    )
    respx_mock.get(f"{BASE}/contacts/in@x.io").mock(return_value=httpx.Response(200, json={"id": 1, "listIds": [12]}))
    respx_mock.get(f"{BASE}/contacts/gone@x.io").mock(
        return_value=httpx.Response(404, json={"code": "document_not_found", "message": "Contact does not exist"})
    )
    respx_mock.get(f"{BASE}/contacts/odd@x.io").mock(return_value=httpx.Response(200, json={"id": 3, "listIds": [4]}))
    outcomes = apply([change(e) for e in ("ok@x.io", "in@x.io", "gone@x.io", "odd@x.io")])
    assert [o.kind for o in outcomes] == ["done", "done", "skipped", "failed"]
    assert "not in Brevo" in (outcomes[2].reason or "") and "gone@x.io" not in (outcomes[2].reason or "")
    assert "refused to add" in (outcomes[3].reason or "") and "odd@x.io" not in (outcomes[3].reason or "")


@respx.mock(assert_all_called=True)
def test_nothing_changed_answers_400_and_missing_people_are_created_when_allowed(respx_mock: respx.MockRouter) -> None:
    nothing = {"code": "invalid_parameter", "message": "Contact already in list and/or does not exist"}
    respx_mock.post(f"{BASE}/contacts/lists/12/contacts/add").mock(return_value=httpx.Response(400, json=nothing))
    respx_mock.get(f"{BASE}/contacts/new@x.io").mock(
        return_value=httpx.Response(404, json={"code": "document_not_found", "message": "Contact does not exist"})
    )
    create = respx_mock.post(f"{BASE}/contacts").mock(return_value=httpx.Response(201, json={"id": 9}))
    assert [o.kind for o in apply([change("new@x.io")], create_missing_contacts=True)] == ["done"]
    assert sent(create) == {"email": "new@x.io", "listIds": [12], "updateEnabled": True}


@respx.mock(assert_all_called=True)
def test_a_remove_that_changed_nothing_is_done_and_another_400_fails(respx_mock: respx.MockRouter) -> None:
    nothing = {"code": "invalid_parameter", "message": "Contact already removed from list and/or does not exist"}
    respx_mock.post(f"{BASE}/contacts/lists/12/contacts/remove").mock(return_value=httpx.Response(400, json=nothing))
    bad = {"code": "invalid_parameter", "message": "emails is not valid"}
    respx_mock.post(f"{BASE}/contacts/lists/13/contacts/remove").mock(return_value=httpx.Response(400, json=bad))
    outcomes = apply([change("a@x.io", "remove"), change("a@x.io", "remove", list_id=13)])
    assert [o.kind for o in outcomes] == ["done", "failed"]
    assert "invalid_parameter: emails is not valid" in (outcomes[1].reason or "")


def test_the_vendor_hooks_read_brevos_headers_and_error_bodies() -> None:
    adapter = BrevoAdapter("brevo", BrevoConfig.model_validate({"type": "brevo", "api_key": KEY}))
    limited = httpx.Response(429, headers={"x-sib-ratelimit-reset": "7", "x-sib-ratelimit-remaining": "0"})
    assert adapter.retry_delay(limited) == 7.0
    assert adapter.retry_delay(httpx.Response(429)) is None
    assert adapter.retry_delay(httpx.Response(503, headers={"x-sib-ratelimit-reset": "7"})) is None
    refused = httpx.Response(401, json={"code": "unauthorized", "message": "Key not found"})
    assert adapter.error_message(refused) == "unauthorized: Key not found"


def test_config_and_options() -> None:
    with pytest.raises(ValidationError, match="api_key is empty"):
        BrevoConfig.model_validate({"type": "brevo", "api_key": " "})
    assert BrevoAdapter.validate_options({"list": "12"}) == {"list": 12}
    for bad in ({"list": "twelve"}, {"list": 0}, {"list": True}, {"list": 1, "tag": "x"}, {}):
        with pytest.raises(OptionsError, match="numeric Brevo list id"):
            BrevoAdapter.validate_options(bad)
