"""The webhook target: the exact request it sends, and how answers become outcomes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
import respx
from connector.adapters.base import OptionsError, Outcome
from connector.adapters.webhook import SIGNATURE_HEADER, WebhookAdapter, WebhookConfig, sign
from pydantic import ValidationError

from tests.adapters.webhook.conftest import SECRET, URL, apply, change


def test_posts_the_change_signed_with_exact_headers_and_body() -> None:
    with respx.mock() as mock:
        route = mock.post("https://hooks.example.com/crm/in?tenant=acme-77").mock(return_value=httpx.Response(204))
        outcomes = apply([change()], headers={"Authorization": "Bearer recv-token-1"})
    assert outcomes == [Outcome.done()]
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == URL
    body = request.content
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer recv-token-1"
    expected_sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER] == expected_sig
    assert json.loads(body) == {
        "action": "add",
        "customer_id": "c_01H",
        "email": "ann@example.com",
        "external_id": "ext-9",
        "full_name": "Ann Lee",
        "group_id": "cg_01H",
        "group_key": "enterprise",
        "group_name": "Enterprise",
        "event_id": "pEv_01H",
        "event_time": "2026-03-01T10:00:00.000Z",
        "target": "hook",
        "options": {"label": "vip", "tier": 2},
    }


def test_base_url_replaces_scheme_and_host_of_the_url() -> None:
    with respx.mock() as mock:
        route = mock.post("http://127.0.0.1:9100/prefix/crm/in?tenant=acme-77").mock(return_value=httpx.Response(200))
        assert apply([change()], base_url="http://127.0.0.1:9100/prefix") == [Outcome.done()]
    assert route.call_count == 1


@pytest.mark.parametrize(
    "status, kind",
    [
        (200, "done"),
        (201, "done"),
        (202, "done"),
        (204, "done"),
        (400, "failed"),
        (401, "failed"),
        (404, "failed"),
        (410, "failed"),
        (422, "failed"),
        (301, "failed"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_answers_map_to_outcomes(status: int, kind: str) -> None:
    with respx.mock() as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(status, json={"error": "x"}))
        [outcome] = apply([change()])
    assert outcome.kind == kind
    assert route.call_count == (WebhookAdapter.retry_attempts if kind == "retry" else 1)


def test_connect_errors_retry_with_vendor_delay_when_given() -> None:
    with respx.mock() as mock:
        mock.post(URL).mock(side_effect=httpx.ConnectError("refused"))
        [outcome] = apply([change()])
    assert outcome.kind == "retry" and outcome.retry_after is None
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(503, headers={"Retry-After": "90"}))
        [outcome] = apply([change()])
    assert outcome.kind == "retry" and outcome.retry_after == 90.0


def test_batch_outcomes_keep_the_order_of_changes() -> None:
    answers = {"a@x.io": 200, "b@x.io": 422, "c@x.io": 200, "d@x.io": 400}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answers[json.loads(request.content)["email"]])

    with respx.mock() as mock:
        mock.post(URL).mock(side_effect=answer)
        outcomes = apply([change(e) for e in answers])
    assert [o.kind for o in outcomes] == ["done", "failed", "done", "failed"]


def test_reasons_hide_secret_headers_and_url_query() -> None:
    echo = f"rejected {SECRET} recv-token-1 acme-77 for ann@example.com"
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(400, json={"message": echo}))
        [outcome] = apply([change()], headers={"Authorization": "Bearer recv-token-1"})
    reason = outcome.reason or ""
    assert reason.startswith("hook: POST /crm/in -> HTTP 400: rejected")
    for secret in (SECRET, "recv-token-1", "acme-77", "ann@example.com"):
        assert secret not in reason
    assert "a***@e***.com" in reason


def test_sign_is_hmac_sha256_hex_of_the_raw_body() -> None:
    assert sign(b'{"a":1}', "k" * 8) == "sha256=" + hmac.new(b"k" * 8, b'{"a":1}', hashlib.sha256).hexdigest()


def test_options_pass_through_when_plain_values() -> None:
    assert WebhookAdapter.validate_options({"label": "vip", "n": 1, "x": 1.5, "on": True}) == {
        "label": "vip",
        "n": 1,
        "x": 1.5,
        "on": True,
    }
    assert WebhookAdapter.validate_options({}) == {}


@pytest.mark.parametrize("value", [None, {"a": 1}, [1, 2]])
def test_options_must_be_plain_values(value: Any) -> None:
    with pytest.raises(OptionsError, match="label"):
        WebhookAdapter.validate_options({"label": value})


@pytest.mark.parametrize(
    "override",
    [
        {"url": "ftp://x/y"},
        {"url": "hooks.example.com"},
        {"url": "https://u:p@h/x"},
        {"secret": ""},
        {"secret": "short"},
        {"headers": {"X": 1}},
        {"nope": 1},
    ],
)
def test_bad_config_is_refused(override: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WebhookConfig.model_validate({"type": "webhook", "url": URL, "secret": SECRET, **override})


def test_config_does_not_print_its_secret() -> None:
    config = WebhookConfig.model_validate({"type": "webhook", "url": URL, "secret": SECRET})
    assert SECRET not in repr(config) and SECRET not in str(config)
