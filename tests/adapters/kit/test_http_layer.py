"""The shared HTTP layer: config, URL joining, headers, readable and redacted failures."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx
from connector.adapters.base import Change
from connector.adapters.http import CrmError, join_url
from connector.adapters.ratelimit import RateLimit
from connector.redact import mask_email
from pydantic import ValidationError

from tests.adapters.kit.probe import BASE, TOKEN, ProbeAdapter, ProbeConfig, make_probe, outcome_of, reply, with_probe

EMAIL = "colby45@example.com"


# -- base_url -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "base, path, url",
    [
        ("http://127.0.0.1:9100/mailchimp", "/3.0/lists/x", "http://127.0.0.1:9100/mailchimp/3.0/lists/x"),
        ("http://127.0.0.1:9100/mailchimp/", "3.0/lists/x", "http://127.0.0.1:9100/mailchimp/3.0/lists/x"),
        ("https://api.eu.intercom.io", "/contacts/search", "https://api.eu.intercom.io/contacts/search"),
        ("https://api.hubapi.com", "/crm/v3/lists/1?x=1", "https://api.hubapi.com/crm/v3/lists/1?x=1"),
        ("http://proxy:1", "https://api.hubapi.com/next?after=2", "https://api.hubapi.com/next?after=2"),
    ],
)
def test_join_url(base: str, path: str, url: str) -> None:
    assert join_url(base, path) == url


def test_requests_go_to_base_url_plus_the_api_path() -> None:
    async def body(adapter: ProbeAdapter) -> httpx.Response:
        return await adapter.request("POST", "/3.0/lists/x/members/abc/tags", json={"tags": []})

    with respx.mock(assert_all_called=True) as mock:
        route = mock.post("http://127.0.0.1:9100/mailchimp/3.0/lists/x/members/abc/tags").mock(return_value=reply(204))
        with_probe(body, base_url="http://127.0.0.1:9100/mailchimp/")
    assert route.call_count == 1


def test_vendor_base_url_is_the_default() -> None:
    with respx.mock() as mock:
        route = mock.get(f"{BASE}/things").mock(return_value=reply(200))
        with_probe(outcome_of)
    assert route.call_count == 1


@pytest.mark.parametrize(
    "base_url",
    ["ftp://host", "api.hubapi.com", "http://h/x?token=1", "https://user:pw@h", "http:///path"],
)
def test_bad_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(ValidationError):
        ProbeConfig.model_validate({"type": "probe", "token": TOKEN, "base_url": base_url})


def test_config_refuses_unknown_keys_and_bad_timeouts() -> None:
    with pytest.raises(ValidationError):
        ProbeConfig.model_validate({"type": "probe", "token": TOKEN, "base_ur": "http://h"})
    with pytest.raises(ValidationError):
        ProbeConfig.model_validate({"type": "probe", "token": TOKEN, "timeout_seconds": 0})


def test_rate_limit_override_replaces_only_what_it_names() -> None:
    adapter = make_probe(rate_limit={"max_concurrency": 2})
    assert adapter.rate_limit == RateLimit(requests=100, per_seconds=10, max_concurrency=2)
    assert make_probe().rate_limit == ProbeAdapter.default_rate_limit


# -- the client ------------------------------------------------------------------


def test_every_call_carries_auth_vendor_and_default_headers() -> None:
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/things").mock(return_value=reply(200))
        with_probe(outcome_of)
    headers = route.calls.last.request.headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Probe-Version"] == "7"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("plain-crm-sync/")


def test_one_pooled_client_per_target_with_the_configured_timeout() -> None:
    async def body(adapter: ProbeAdapter) -> httpx.AsyncClient:
        client = adapter.client
        await adapter.request("GET", "/things")
        await adapter.request("GET", "/things")
        assert adapter.client is client
        assert client.timeout.read == 2.5
        return client

    with respx.mock(base_url=BASE) as mock:
        mock.get("/things").mock(return_value=reply(200))
        client = with_probe(body, timeout_seconds=2.5)
    assert client.is_closed


def test_calling_before_start_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="start"):
        make_probe().client


# -- failures are readable and redacted ------------------------------------------------


def test_permanent_failure_reason_names_call_and_crm_message_without_secrets() -> None:
    echo = {"message": f"Bad token {TOKEN} (Bearer {TOKEN}) for {EMAIL}", "category": "VALIDATION_ERROR"}
    with respx.mock(base_url=BASE) as mock:
        mock.put("/lists/1/members").mock(return_value=reply(400, json=echo))
        outcome = with_probe(lambda a: a.apply([_change()]), vendor="hubspot")[0]
    assert outcome.kind == "failed"
    reason = outcome.reason or ""
    assert reason.startswith("probe: PUT /lists/1/members -> HTTP 400: VALIDATION_ERROR: Bad token")
    assert TOKEN not in reason and EMAIL not in reason
    assert mask_email(EMAIL) in reason


def test_path_in_reason_is_masked_and_loses_its_query() -> None:
    path = f"/contacts/{EMAIL}?idProperty=email&hapikey={TOKEN}"
    with respx.mock(base_url=BASE) as mock:
        mock.get(url__startswith=f"{BASE}/contacts/").mock(return_value=reply(404, text="Not here"))
        error = with_probe(lambda a: outcome_of(a, "GET", path))
    assert isinstance(error, CrmError)
    assert error.reason == f"probe: GET /contacts/{mask_email(EMAIL)} -> HTTP 404: Not here"


def test_network_error_text_is_redacted_too() -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/things").mock(side_effect=httpx.ConnectError(f"cannot reach for {TOKEN}"))
        error = with_probe(outcome_of)
    assert isinstance(error, CrmError) and error.transient and error.status is None
    assert TOKEN not in error.reason
    assert error.reason.startswith("probe: GET /things -> ConnectError: cannot reach for ***")


def test_retry_logs_never_show_token_or_full_email(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"message": f"busy for {EMAIL} with {TOKEN}"}
    with respx.mock(base_url=BASE) as mock:
        mock.get(url__startswith=f"{BASE}/contacts/").mock(side_effect=[reply(503, json=body), reply(200)])
        with_probe(lambda a: outcome_of(a, "GET", f"/contacts/{EMAIL}"))
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("connector")]
    assert any("retrying" in line for line in ours)
    for line in ours:
        assert TOKEN not in line and EMAIL not in line


def test_response_error_for_an_accepted_response_the_adapter_cannot_use() -> None:
    async def body(adapter: ProbeAdapter) -> CrmError:
        response = await adapter.request("POST", "/batch?key=1", accept={207})
        return adapter.response_error(response)

    with respx.mock(base_url=BASE) as mock:
        mock.post("/batch").mock(return_value=reply(207, json={"errors": [{"message": "half failed"}]}))
        error = with_probe(body, vendor="intercom")
    assert error.reason == "probe: POST /batch -> HTTP 207: half failed"
    assert not error.transient


@pytest.mark.parametrize(
    "vendor, response, message",
    [
        (
            "hubspot",
            reply(400, json={"status": "error", "message": "List 9 is DYNAMIC", "category": "VALIDATION_ERROR"}),
            "VALIDATION_ERROR: List 9 is DYNAMIC",
        ),
        (
            "mailchimp",
            reply(
                400,
                json={
                    "type": "https://mailchimp.com/developer/",
                    "title": "Invalid Resource",
                    "status": 400,
                    "detail": "The tag name is too long",
                },
            ),
            "Invalid Resource: The tag name is too long",
        ),
        (
            "intercom",
            reply(404, json={"type": "error.list", "errors": [{"code": "not_found", "message": "User Not Found"}]}),
            "not_found: User Not Found",
        ),
        (
            "salesforce",
            reply(400, json=[{"message": "Duplicate", "errorCode": "DUPLICATE_VALUE", "fields": []}]),
            "DUPLICATE_VALUE: Duplicate",
        ),
        (None, reply(502, text="<html>\n  Bad   gateway\n</html>"), "<html> Bad gateway </html>"),
        (None, reply(500, text=""), "Internal Server Error"),
    ],
    ids=["hubspot", "mailchimp", "intercom", "salesforce", "html", "empty"],
)
def test_crm_message_reads_each_vendors_error_shape(vendor: str | None, response: httpx.Response, message: str) -> None:
    """Each vendor's ``error_message`` hook; the base reads only generic shapes."""
    assert make_probe(vendor).crm_message(response) == message


def test_crm_message_is_shortened() -> None:
    text = make_probe().crm_message(reply(400, text="x" * 5000))
    assert len(text) == 300 and text.endswith("…")


def _change() -> Change:
    return Change(
        key="1", action="add", customer_id="c_1", email=EMAIL, group_id="cg_1", group_key="vip", event_id="pEv_1"
    )
