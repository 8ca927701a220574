"""The Salesforce adapter's calls on the wire (respx): the documented shapes, pinned.

Shapes from Salesforce's REST API Developer Guide: the OAuth token request (form-encoded,
``grant_type`` client_credentials or refresh_token) and its ``instance_url``; SOQL as
``GET /services/data/vXX.X/query?q=``; sObject Collections ``POST /composite/sobjects``
``{"allOrNone": false, "records": [{"attributes": {"type": …}, …}]}`` and ``DELETE
/composite/sobjects?ids=…&allOrNone=false``, each answering one result per record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
import respx
from connector.adapters.base import Change, OptionsError, Outcome
from connector.adapters.salesforce import SalesforceAdapter, SalesforceConfig
from connector.adapters.salesforce_soql import soql_in, soql_literal
from pydantic import ValidationError

from tests.adapters.started import apply_batches

LOGIN = "https://login.salesforce.com"
INSTANCE = "https://acme.my.salesforce.com"
API = f"{INSTANCE}/services/data/v62.0"
CAMPAIGN = "701Hs00000AbCdEIAZ"
CONTACT = "003Hs00000XyZ12IAB"
LEAD = "00QHs00000LmN34IAC"
MEMBER = "00vHs00000QrS56IAD"
TOKEN = "00DHs000000fake!AQ0AQfake.access.token"


def make(**config: Any) -> SalesforceAdapter:
    raw = {"type": "salesforce", "client_id": "3MVG9.id", "client_secret": "s3cr3t-value", **config}
    return SalesforceAdapter("sf", SalesforceConfig.model_validate(raw))


def apply(changes: Sequence[Change], **config: Any) -> list[Outcome]:
    return apply_batches(make(**config), changes)[0]


def change(action: str = "add", email: str = "Ada@Example.com", **options: str) -> Change:
    return Change(key="1", action=action, customer_id="c_1", email=email, group_id="cg_1",  # type: ignore[arg-type]
                  group_key="g", event_id="pEv_1", options={"campaign": CAMPAIGN, **options})  # fmt: skip


def records(*rows: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"totalSize": len(rows), "done": True, "records": list(rows)},
                          headers={"Sforce-Limit-Info": "api-usage=10/15000"})  # fmt: skip


def token_route(mock: respx.MockRouter) -> respx.Route:
    answer = {"access_token": TOKEN, "instance_url": INSTANCE, "token_type": "Bearer", "issued_at": "1"}
    return mock.post(f"{LOGIN}/services/oauth2/token").mock(return_value=httpx.Response(200, json=answer))


def soql(call: Any) -> str:
    return unquote(parse_qs(call.request.url.query.decode())["q"][0])


@respx.mock(assert_all_called=True)
def test_add_is_token_then_contact_query_then_one_collection_insert(respx_mock: respx.MockRouter) -> None:
    token = token_route(respx_mock)
    query = respx_mock.get(f"{API}/query").mock(return_value=records({"Id": CONTACT, "Email": "ada@example.com"}))
    insert = respx_mock.post(f"{API}/composite/sobjects").mock(
        return_value=httpx.Response(200, json=[{"id": MEMBER, "success": True, "errors": []}])
    )
    assert [o.kind for o in apply([change(status="Responded")])] == ["done"]

    form = parse_qs(token.calls.last.request.content.decode())
    assert form == {"grant_type": ["client_credentials"], "client_id": ["3MVG9.id"], "client_secret": ["s3cr3t-value"]}
    assert token.calls.last.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert soql(query.calls.last) == (
        "SELECT Id, Email FROM Contact WHERE Email IN ('ada@example.com') ORDER BY CreatedDate, Id"
    )
    sent = insert.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(sent.content) == {
        "allOrNone": False,
        "records": [
            {
                "attributes": {"type": "CampaignMember"},
                "CampaignId": CAMPAIGN,
                "ContactId": CONTACT,
                "Status": "Responded",
            }
        ],
    }


@respx.mock(assert_all_called=True)
def test_contact_then_lead_asks_for_unconverted_leads_only_for_the_rest(respx_mock: respx.MockRouter) -> None:
    token_route(respx_mock)
    query = respx_mock.get(f"{API}/query").mock(
        side_effect=[records(), records({"Id": LEAD, "Email": "ada@example.com"})]
    )
    insert = respx_mock.post(f"{API}/composite/sobjects").mock(
        return_value=httpx.Response(
            200,
            json=[
                {
                    "success": False,
                    "errors": [
                        {"statusCode": "DUPLICATE_VALUE", "message": "Already a campaign member.", "fields": []}
                    ],
                }
            ],
        )
    )
    assert [o.kind for o in apply([change()])] == ["done"]  # already a member: done
    assert soql(query.calls[1]) == (
        "SELECT Id, Email FROM Lead WHERE Email IN ('ada@example.com') AND IsConverted = false ORDER BY CreatedDate, Id"
    )
    assert json.loads(insert.calls.last.request.content)["records"][0] == {
        "attributes": {"type": "CampaignMember"}, "CampaignId": CAMPAIGN, "LeadId": LEAD}  # fmt: skip


@respx.mock(assert_all_called=True)
def test_remove_queries_member_ids_then_deletes_them_as_a_collection(respx_mock: respx.MockRouter) -> None:
    token_route(respx_mock)
    row = {"Id": MEMBER, "Contact": {"Email": "ada@example.com"}, "Lead": None}
    query = respx_mock.get(f"{API}/query").mock(return_value=records(row))
    delete = respx_mock.delete(f"{API}/composite/sobjects").mock(
        return_value=httpx.Response(200, json=[{"id": MEMBER, "success": True, "errors": []}])
    )
    assert [o.kind for o in apply([change("remove")])] == ["done"]
    assert soql(query.calls.last) == (
        "SELECT Id, Contact.Email, Lead.Email FROM CampaignMember WHERE CampaignId = "
        f"'{CAMPAIGN}' AND (Contact.Email IN ('ada@example.com') OR Lead.Email IN ('ada@example.com'))"
    )
    assert dict(delete.calls.last.request.url.params) == {"ids": MEMBER, "allOrNone": "false"}


@respx.mock(assert_all_called=True)
def test_the_refresh_token_flow_and_a_401_renewing_the_token_once(respx_mock: respx.MockRouter) -> None:
    token = token_route(respx_mock)
    expired = httpx.Response(401, json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    query = respx_mock.get(f"{API}/query").mock(side_effect=[expired, records()])
    outcomes = apply([change()], client_secret=None, refresh_token="5Aep.refresh", match="contact")
    assert [o.kind for o in outcomes] == ["skipped"]
    assert len(token.calls) == 2 and len(query.calls) == 2
    assert parse_qs(token.calls[0].request.content.decode()) == {
        "grant_type": ["refresh_token"], "client_id": ["3MVG9.id"], "refresh_token": ["5Aep.refresh"]}  # fmt: skip


def test_the_daily_limit_and_error_bodies_are_read_by_the_vendor_hooks() -> None:
    adapter = make()
    daily = httpx.Response(
        403, json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    )
    concurrent = httpx.Response(
        403, json=[{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    )
    denied = httpx.Response(
        403, json=[{"message": "insufficient access rights on object id", "errorCode": "INSUFFICIENT_ACCESS"}]
    )
    oauth = httpx.Response(400, json={"error": "invalid_grant", "error_description": "authentication failure"})
    assert adapter.retry_delay(daily) == 3600 and adapter.retry_delay(concurrent) is None
    assert adapter.retry_delay(denied) is None
    assert adapter.error_message(denied) == "INSUFFICIENT_ACCESS: insufficient access rights on object id"
    assert adapter.error_message(oauth) == "invalid_grant: authentication failure"


def test_soql_literals_escape_quotes_and_long_lists_are_split_under_the_url_limit() -> None:
    assert soql_literal("o'brien\\x@example.com") == "'o\\'brien\\\\x@example.com'"
    emails = [f"someone.with.a.long.address.{i}@subdomain.example.com" for i in range(600)]
    chunks = list(soql_in(emails))
    assert len(chunks) > 1 and all(len(httpx.QueryParams({"q": c}).__str__()) <= 8100 for c in chunks)
    assert sum(c.count("@") for c in chunks) == 600


def test_config_and_options_are_checked_with_operator_words() -> None:
    with pytest.raises(ValidationError, match=r"client_secret .*or refresh_token"):
        SalesforceConfig.model_validate({"type": "salesforce", "client_id": "x"})
    with pytest.raises(ValidationError, match="client_id is empty"):
        SalesforceConfig.model_validate({"type": "salesforce", "client_id": "", "client_secret": "s"})
    with pytest.raises(ValidationError, match="api_version"):
        make(api_version="latest")
    with pytest.raises(OptionsError, match="starting with 701"):
        SalesforceAdapter.validate_options({"campaign": "003Hs00000XyZ12IAB"})
    with pytest.raises(OptionsError, match="optionally status"):
        SalesforceAdapter.validate_options({"campaign": CAMPAIGN, "list": "x"})
    assert SalesforceAdapter.validate_options({"campaign": f" {CAMPAIGN} ", "status": "Sent"}) == {
        "campaign": CAMPAIGN, "status": "Sent"}  # fmt: skip
