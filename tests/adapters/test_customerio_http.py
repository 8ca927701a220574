"""The Customer.io adapter's calls on the wire (respx): host per region, Basic auth,
``id_type`` per call, 1,000 ids a call, and its config, options and error rules."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import respx
from connector.adapters.base import Change, OptionsError, Outcome
from connector.adapters.customerio import CustomerIoAdapter, CustomerIoConfig
from connector.testing.fakes import run_virtual
from pydantic import ValidationError

SITE, KEY = "site-respx", "cio-track-key-respx-0123"
US, EU = "https://track.customer.io", "https://track-eu.customer.io"
AUTH = "Basic " + base64.b64encode(f"{SITE}:{KEY}".encode()).decode()


def make(**config: Any) -> CustomerIoAdapter:
    raw = {"type": "customerio", "site_id": SITE, "api_key": KEY, **config}
    return CustomerIoAdapter("cio", CustomerIoConfig.model_validate(raw))


def apply(changes: Sequence[Change], **config: Any) -> list[Outcome]:
    async def main() -> list[Outcome]:
        adapter = make(**config)
        await adapter.start()
        try:
            return await adapter.apply(changes)
        finally:
            await adapter.close()

    return run_virtual(main())


def change(email: str | None, action: str = "add", external_id: str | None = None, segment: str = "12") -> Change:
    return Change(key=str(email), action=action, customer_id="c", email=email, group_id="cg",  # type: ignore[arg-type]
                  group_key="g", event_id="pEv", options={"segment": segment}, external_id=external_id)  # fmt: skip


@respx.mock
def test_joiners_by_email_leavers_by_id_one_call_each() -> None:
    add = respx.post(f"{US}/api/v1/segments/12/add_customers").respond(200, json={})
    remove = respx.post(f"{US}/api/v1/segments/12/remove_customers").respond(200, json={})
    outcomes = apply([change("b@example.com"), change("a@example.com", external_id="u-a"),
                      change("c@example.com", "remove", "u-c")])  # fmt: skip
    assert outcomes == [Outcome.done()] * 3
    [sent] = add.calls
    assert sent.request.url.params["id_type"] == "email" and sent.request.headers["authorization"] == AUTH
    assert json.loads(sent.request.content) == {"ids": ["a@example.com", "b@example.com"]}
    assert remove.calls[0].request.url.params["id_type"] == "id"
    assert json.loads(remove.calls[0].request.content) == {"ids": ["u-c"]}


@respx.mock
def test_a_leaver_without_external_id_fails_with_the_reason_and_calls_nothing() -> None:
    route = respx.route(host="track.customer.io").respond(200, json={})
    [outcome] = apply([change("c@example.com", "remove")])
    assert outcome.kind == "failed" and "only by id" in str(outcome.reason) and not route.called


@respx.mock
def test_identify_by_external_id_sends_ids_both_ways_and_skips_who_has_none() -> None:
    add = respx.post(f"{EU}/api/v1/segments/12/add_customers").respond(200, json={})
    outcomes = apply([change("a@example.com", external_id="u-a"), change("b@example.com")],
                     identify_by="external_id", region="eu")  # fmt: skip
    assert outcomes[0] == Outcome.done() and outcomes[1].kind == "skipped"
    assert add.calls[0].request.url.params["id_type"] == "id"
    assert json.loads(add.calls[0].request.content) == {"ids": ["u-a"]}


@respx.mock
def test_a_thousand_and_one_joiners_in_two_segments_make_three_calls() -> None:
    twelve = respx.post(f"{US}/api/v1/segments/12/add_customers").respond(200, json={})
    other = respx.post(f"{US}/api/v1/segments/7/add_customers").respond(200, json={})
    changes = [change(f"p{i}@example.com") for i in range(1001)] + [change("x@example.com", segment="7")]
    assert all(o.kind == "done" for o in apply(changes))
    assert [len(json.loads(c.request.content)["ids"]) for c in twelve.calls] == [1000, 1]
    assert other.call_count == 1


@respx.mock
def test_a_refused_call_fails_every_change_it_carried_with_customerios_words() -> None:
    respx.post(f"{US}/api/v1/segments/12/add_customers").respond(
        400, json={"meta": {"errors": ["segment 12 is not a manual segment"]}}
    )
    outcomes = apply([change("a@example.com"), change("b@example.com")])
    assert [o.kind for o in outcomes] == ["failed", "failed"]
    assert "HTTP 400: segment 12 is not a manual segment" in str(outcomes[0].reason)


def test_vendor_rules() -> None:
    adapter = make()
    assert adapter.retry_delay(httpx.Response(429, headers={"Retry-After": "4"})) == 4.0
    assert adapter.retry_delay(httpx.Response(429)) is None
    both = httpx.Response(400, json={"meta": {"errors": ["one", "two"]}})
    assert adapter.error_message(both) == "one; two"
    assert adapter.error_message(httpx.Response(401, text="")) == "Unauthorized"
    assert make(region="eu").base_url == EU and make().base_url == US


def test_config_and_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="api_key is empty"):
        make(api_key=" ")
    with pytest.raises(ValidationError, match="site_id is empty"):
        make(site_id="")
    with pytest.raises(ValidationError):
        make(region="au")
    with pytest.raises(ValidationError):
        make(create_missing_contacts=True)  # Customer.io cannot say who is missing
    assert CustomerIoAdapter.validate_options({"segment": 12}) == {"segment": "12"}
    for bad in ({}, {"segment": "abc"}, {"segment": True}, {"segment": 0}, {"segment": 1, "list": 2}):
        with pytest.raises(OptionsError):
            CustomerIoAdapter.validate_options(bad)


@respx.mock
def test_check_online_names_a_region_mismatch_and_refused_credentials() -> None:
    region = respx.get(f"{US}/api/v1/accounts/region")

    async def check() -> list[str]:
        adapter = make()
        await adapter.start()
        try:
            return await adapter.check_online([{"segment": "12"}])
        finally:
            await adapter.close()

    region.respond(200, json={"url": EU, "region": "eu", "environment_id": 1})
    assert run_virtual(check()) == ["the workspace is in region 'eu' but region is 'us'"]
    region.respond(200, json={"url": US, "region": "us", "environment_id": 1})
    assert run_virtual(check()) == []
    region.respond(401)
    [refused] = run_virtual(check())
    assert "HTTP 401" in refused and "check site_id and api_key" in refused and KEY not in refused
