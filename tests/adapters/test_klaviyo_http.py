"""The Klaviyo adapter's calls on the wire (respx): URL, headers, query and body of each,
and its vendor rules (delays, error wording, config and options checks)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import respx
from connector.adapters.base import Change, OptionsError, Outcome
from connector.adapters.klaviyo import KlaviyoAdapter, KlaviyoConfig
from connector.testing.fakes import run_virtual
from pydantic import ValidationError

KEY = "pk_respx_0123456789abcdef"
API = "https://a.klaviyo.com"
LIST = "Y6nRLr"
MEMBERS = f"{API}/api/lists/{LIST}/relationships/profiles"


def profiles(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"data": [{"type": "profile", "id": pid, "attributes": {"email": e}} for e, pid in pairs], "links": {}}


def make(**config: Any) -> KlaviyoAdapter:
    return KlaviyoAdapter("klaviyo", KlaviyoConfig.model_validate({"type": "klaviyo", "api_key": KEY, **config}))


def apply(batches: Sequence[Sequence[Change]], **config: Any) -> list[list[Outcome]]:
    async def main() -> list[list[Outcome]]:
        adapter = make(**config)
        await adapter.start()
        try:
            return [await adapter.apply(batch) for batch in batches]
        finally:
            await adapter.close()

    return run_virtual(main())


def change(email: str | None, action: str = "add", list_id: str = LIST) -> Change:
    return Change(key=str(email), action=action, customer_id="c", email=email, group_id="cg",  # type: ignore[arg-type]
                  group_key="g", event_id="pEv", options={"list": list_id})  # fmt: skip


@respx.mock
def test_one_lookup_for_many_emails_then_one_call_per_action_and_ids_are_cached() -> None:
    lookup = respx.get(f"{API}/api/profiles").respond(
        200, json=profiles(("ada@example.com", "P1"), ("bob@example.com", "P2"))
    )
    add = respx.post(MEMBERS).respond(204)
    remove = respx.delete(MEMBERS).respond(204)
    batch = [change("Ada@Example.com"), change("bob@example.com", "remove"), change(None)]
    first, second = apply([batch, [change("ada@example.com", "remove")]])
    assert [o.kind for o in first] == ["done", "done", "skipped"] and second == [Outcome.done()]
    assert lookup.call_count == 1, "the second batch used the cached id"
    request = lookup.calls[0].request
    assert request.url.params["filter"] == 'any(email,["ada@example.com","bob@example.com"])'
    assert request.url.params["page[size]"] == "100" and request.url.params["fields[profile]"] == "email"
    assert request.headers["authorization"] == f"Klaviyo-API-Key {KEY}"
    assert request.headers["revision"] == "2026-07-15" and request.headers["accept"] == "application/vnd.api+json"
    sent = add.calls[0].request
    assert sent.headers["content-type"] == "application/vnd.api+json"
    assert json.loads(sent.content) == {"data": [{"type": "profile", "id": "P1"}]}
    assert [json.loads(c.request.content) for c in remove.calls] == [
        {"data": [{"type": "profile", "id": "P2"}]},
        {"data": [{"type": "profile", "id": "P1"}]},
    ]


@respx.mock
def test_unknown_joiner_is_skipped_and_unknown_leaver_done_without_a_member_call() -> None:
    respx.get(f"{API}/api/profiles").respond(200, json=profiles())
    members = respx.route(url=MEMBERS).respond(204)
    [outcomes] = apply([[change("new@example.com"), change("gone@example.com", "remove")]])
    assert outcomes[0].kind == "skipped" and "n***@e***.com not in Klaviyo" in str(outcomes[0].reason)
    assert outcomes[1] == Outcome.done() and not members.called


@respx.mock
def test_creation_is_one_bulk_import_into_the_list_and_a_running_job_is_a_retry() -> None:
    respx.get(f"{API}/api/profiles").respond(200, json=profiles())
    job = {"data": {"type": "profile-bulk-import-job", "id": "J1", "attributes": {"status": "processing"}}}
    submit = respx.post(f"{API}/api/profile-bulk-import-jobs").respond(202, json=job)
    poll = respx.get(f"{API}/api/profile-bulk-import-jobs/J1").respond(200, json=job)
    [outcomes] = apply([[change("new@example.com"), change("two@example.com")]], create_missing_contacts=True)
    body = json.loads(submit.calls[0].request.content)
    assert body == {"data": {"type": "profile-bulk-import-job",
                             "attributes": {"profiles": {"data": [
                                 {"type": "profile", "attributes": {"email": "new@example.com"}},
                                 {"type": "profile", "attributes": {"email": "two@example.com"}}]}},
                             "relationships": {"lists": {"data": [{"type": "list", "id": LIST}]}}}}  # fmt: skip
    assert submit.call_count == 1 and poll.call_count == len(KlaviyoAdapter.import_polls)
    assert [o.kind for o in outcomes] == ["retry", "retry"] and "J1 is processing" in str(outcomes[0].reason)


@respx.mock
def test_more_than_a_thousand_members_are_split_and_lookups_go_by_hundreds() -> None:
    emails = [f"p{i}@example.com" for i in range(1001)]

    def answer(request: httpx.Request) -> httpx.Response:
        wanted = request.url.params["filter"][len("any(email,[") : -2].replace('"', "").split(",")
        return httpx.Response(200, json=profiles(*((e, "id-" + e) for e in wanted)))

    lookups = respx.get(f"{API}/api/profiles").mock(side_effect=answer)
    add = respx.post(MEMBERS).respond(204)
    adapter_max = KlaviyoAdapter.max_batch
    [first] = apply([[change(e) for e in emails[:adapter_max]]])
    assert all(o.kind == "done" for o in first) and lookups.call_count == 10 and add.call_count == 1
    assert len(json.loads(add.calls[0].request.content)["data"]) == 1000


@respx.mock
def test_a_member_call_refused_drops_the_cached_ids_so_a_retry_looks_again() -> None:
    lookup = respx.get(f"{API}/api/profiles").respond(200, json=profiles(("ada@example.com", "P1")))
    error = {"errors": [{"id": "e", "status": 400, "code": "invalid", "title": "Invalid input.",
                         "detail": "Profile P1 does not exist.", "source": {"pointer": "/data/0/id"}}]}  # fmt: skip
    respx.post(MEMBERS).mock(side_effect=[httpx.Response(400, json=error), httpx.Response(204)])
    [first], [second] = apply([[change("ada@example.com")], [change("ada@example.com")]])
    assert first.kind == "failed" and second.kind == "done" and lookup.call_count == 2


def test_vendor_rules_read_retry_after_or_the_throttle_detail_and_word_errors() -> None:
    adapter = make()
    throttled = {"errors": [{"id": "x", "status": 429, "code": "throttled", "title": "Request was throttled.",
                             "detail": "Request was throttled. Expected available in 7 seconds."}]}  # fmt: skip
    assert adapter.retry_delay(httpx.Response(429, headers={"Retry-After": "3"}, json=throttled)) == 3.0
    assert adapter.retry_delay(httpx.Response(429, json=throttled)) == 7.0
    assert adapter.retry_delay(httpx.Response(503, text="busy")) is None
    two = {"errors": [throttled["errors"][0], throttled["errors"][0]]}
    assert adapter.error_message(httpx.Response(429, json=two)).startswith("throttled: Request was throttled.")
    assert adapter.error_message(httpx.Response(429, json=two)).endswith("(and 1 more)")
    assert (
        adapter.error_message(httpx.Response(502, text="<html> Bad  gateway </html>")) == "<html> Bad gateway </html>"
    )


def test_config_and_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="api_key is empty"):
        make(api_key="")
    with pytest.raises(ValidationError, match="revision"):
        make(revision="latest")
    assert make(revision="2026-07-15.pre").config.revision == "2026-07-15.pre"
    assert KlaviyoAdapter.validate_options({"list": "Y6nRLr"}) == {"list": "Y6nRLr"}
    for bad in ({}, {"list": 123}, {"list": "a/b"}, {"list": "Y6nRLr", "tag": "x"}):
        with pytest.raises(OptionsError):
            KlaviyoAdapter.validate_options(bad)


@respx.mock
def test_check_online_names_a_missing_list_and_a_refused_key_without_printing_it() -> None:
    respx.get(f"{API}/api/profiles").respond(200, json=profiles())
    missing = {"errors": [{"id": "e", "code": "not_found", "title": "Not found.", "detail": "No list NoSuch."}]}
    respx.get(f"{API}/api/lists/NoSuch").respond(404, json=missing)
    respx.get(f"{API}/api/lists/{LIST}").respond(200, json={"data": {"type": "list", "id": LIST}})

    async def main(adapter: KlaviyoAdapter) -> list[str]:
        await adapter.start()
        try:
            return await adapter.check_online([{"list": LIST}, {"list": "NoSuch"}])
        finally:
            await adapter.close()

    [problem] = run_virtual(main(make()))
    assert "GET /api/lists/NoSuch -> HTTP 404" in problem and "no such list" in problem
    respx.get(f"{API}/api/profiles").respond(401, json={"errors": [{"code": "not_authenticated", "detail": KEY}]})
    [refused] = run_virtual(main(make()))
    assert "HTTP 401" in refused and "check api_key" in refused and KEY not in refused
