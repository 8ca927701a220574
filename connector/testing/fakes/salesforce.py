"""A fake Salesforce org for the ``salesforce`` target: OAuth, SOQL and composite collections.

Covered: ``POST /services/oauth2/token`` (client credentials and refresh token; the answer's
``instance_url`` is this server), ``GET /services/data/vXX.X/query?q=`` for the SOQL the
adapter writes (``SELECT … FROM … WHERE`` with ``=``, ``!=``, ``IN``, ``AND``, ``OR``,
parentheses, ``ORDER BY``, ``LIMIT``; anything else is ``MALFORMED_QUERY``) with paging by
``nextRecordsUrl``, ``GET …/sobjects/CampaignMember/describe``, and ``POST``/``DELETE
…/composite/sobjects`` (at most 200 records or ids, per-record ``success``/``errors``,
``DUPLICATE_VALUE`` for an existing member). API errors are ``[{"message", "errorCode"}]``;
a stale token is 401 ``INVALID_SESSION_ID``. Every API answer carries ``Sforce-Limit-Info:
api-usage=used/limit``; past ``daily_limit`` calls it answers 403 ``REQUEST_LIMIT_EXCEEDED``.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.testing.fakes.salesforce_soql import SoqlError, parse_soql
from connector.testing.fakes.server import FakeServer, Message, Receive, Scope, Send

__all__ = ["FakeSalesforce", "salesforce_id"]

MAX_RECORDS = 200
_CODES = {400: "INVALID_FIELD", 401: "INVALID_SESSION_ID", 403: "INSUFFICIENT_ACCESS", 404: "NOT_FOUND",
          500: "UNKNOWN_EXCEPTION", 503: "SERVER_UNAVAILABLE"}  # fmt: skip
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character record id: key prefix, base-62 number, and the case-checksum suffix."""
    digits = ""
    while number or not digits:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    short = prefix + "0" * (12 - len(digits)) + digits
    suffix = "".join(_SUFFIX[sum(1 << i for i, c in enumerate(short[k : k + 5]) if c.isupper())] for k in (0, 5, 10))
    return short + suffix


def _errors(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


def _item_error(code: str, message: str, fields: Iterable[str] = ()) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": list(fields)}


class FakeSalesforce(FakeServer):
    """One org, in memory: Contacts, Leads, Campaigns with member statuses, CampaignMembers.

    Seed with :meth:`seed_contact`, :meth:`seed_lead`, :meth:`seed_campaign`; read with
    :meth:`member_emails`. ``reject`` holds emails whose membership inserts fail a
    validation rule. ``used`` counts API calls towards ``daily_limit``.
    """

    def __init__(
        self, client_id: str, client_secret: str, *, refresh_tokens: Iterable[str] = (), daily_limit: int = 15_000,
        page_size: int = 2000, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_tokens = set(refresh_tokens)
        self.daily_limit, self.used, self.page_size = daily_limit, 0, page_size
        self.tokens: set[str] = set()
        self.tables: dict[str, dict[str, dict[str, Any]]] = {"Contact": {}, "Lead": {}, "Campaign": {}}
        self.statuses: dict[str, list[str]] = {}  # campaign id -> member status labels
        self.members: dict[str, dict[str, Any]] = {}
        self.reject: set[str] = set()
        self.permissions = {"createable": True, "deletable": True}
        self._numbers = itertools.count(1)
        self._pages: dict[str, list[dict[str, Any]]] = {}

    # -- seeding and reading state -------------------------------------------------------

    def _new(self, table: str, prefix: str, **fields: Any) -> str:
        record_id = salesforce_id(prefix, next(self._numbers))
        self.tables[table][record_id] = {"Id": record_id, "CreatedDate": time.time(), **fields}
        return record_id

    def seed_contact(self, email: str) -> str:
        return self._new("Contact", "003", Email=email)

    def seed_lead(self, email: str, *, converted: bool = False) -> str:
        return self._new("Lead", "00Q", Email=email, IsConverted=converted)

    def seed_campaign(self, name: str, statuses: Iterable[str] = ("Sent", "Responded")) -> str:
        campaign_id = self._new("Campaign", "701", Name=name, IsActive=True)
        self.statuses[campaign_id] = list(statuses)
        return campaign_id

    def expire_tokens(self) -> None:
        """Every issued access token is now refused (a revoked or timed-out session)."""
        self.tokens.clear()

    def member_emails(self, campaign_id: str) -> list[str]:
        """Emails of the campaign's members, one per member (so duplicates would show)."""
        return sorted(
            str(self._person(m)["Email"]).lower() for m in self.members.values() if m["CampaignId"] == campaign_id
        )

    def _person(self, member: dict[str, Any]) -> dict[str, Any]:
        if member.get("ContactId"):
            return self.tables["Contact"][member["ContactId"]]
        return self.tables["Lead"][member["LeadId"]]

    # -- vendor hooks --------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        data = "/services/data/v{version}"
        return [
            Route("/services/oauth2/token", self.token, methods=["POST"]),
            Route(f"{data}/query", self.query, methods=["GET"]),
            Route(f"{data}/query/{{locator}}", self.query_more, methods=["GET"]),
            Route(f"{data}/sobjects/CampaignMember/describe", self.describe, methods=["GET"]),
            Route(f"{data}/composite/sobjects", self.composite_insert, methods=["POST"]),
            Route(f"{data}/composite/sobjects", self.composite_delete, methods=["DELETE"]),
        ]

    def error_response(self, status: int, message: str) -> Response:
        return _errors(status, _CODES.get(status, "UNKNOWN_EXCEPTION"), message)

    def throttle_response(self, retry_after: float) -> Response:
        # Salesforce never answers 429: a long wait is the org's daily count, a short one
        # the cap on concurrent long-running requests. Neither says how long.
        limit = "TotalRequests" if retry_after > 60 else "ConcurrentPerOrgLongTxn"
        return _errors(403, "REQUEST_LIMIT_EXCEEDED", f"{limit} Limit exceeded.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/services/data/"):
            send = self._with_usage(send)
        await super().__call__(scope, receive, send)

    def _with_usage(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                usage = f"api-usage={self.used}/{self.daily_limit}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"sforce-limit-info", usage)]}
            await send(message)

        return wrapped

    def refuse(self, request: Request) -> Response | None:
        if not request.url.path.startswith("/services/data/"):
            return None  # the token endpoint authenticates by its form
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.used >= self.daily_limit:
            return _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.used += 1
        return None

    # -- OAuth ---------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return JSONResponse({"error": "invalid_request", "error_description": "must be form-encoded"}, 400)
        form = dict(parse_qsl((await request.body()).decode()))
        grant, client = form.get("grant_type"), form.get("client_id")
        secret = form.get("client_secret")
        if grant == "client_credentials":
            if client != self.client_id or secret != self.client_secret:
                return JSONResponse({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        elif grant == "refresh_token":
            if client != self.client_id or (secret is not None and secret != self.client_secret):
                return JSONResponse({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
            if form.get("refresh_token") not in self.refresh_tokens:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "expired access/refresh token"}, 400
                )
        else:
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "grant type not supported"}, 400
            )
        access = f"00DFAKE0000000001!{secrets.token_urlsafe(24)}"
        self.tokens.add(access)
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"access_token": access, "instance_url": base, "token_type": "Bearer",
                             "id": f"{base}/id/00DFAKE0000000001/005FAKE0000000001",
                             "issued_at": str(int(time.time() * 1000)), "signature": secrets.token_urlsafe(16)})  # fmt: skip

    # -- SOQL ----------------------------------------------------------------------------

    def _rows(self, table: str) -> list[dict[str, Any]]:
        if table == "CampaignMemberStatus":
            return [{"Id": f"{c}-{i}", "CampaignId": c, "Label": label}
                    for c, labels in self.statuses.items() for i, label in enumerate(labels)]  # fmt: skip
        if table == "CampaignMember":
            rows = []
            for member in self.members.values():
                related = {kind: self.tables[kind].get(member.get(f"{kind}Id") or "") for kind in ("Contact", "Lead")}
                rows.append({**member, **{f"{k}.Email": (r or {}).get("Email") for k, r in related.items()},
                             "_related": related})  # fmt: skip
            return rows
        if table not in self.tables:
            raise SoqlError("INVALID_TYPE", f"sObject type '{table}' is not supported.")
        return list(self.tables[table].values())

    async def query(self, request: Request) -> Response:
        soql = request.query_params.get("q", "")
        if len(soql) > 100_000:
            return _errors(400, "MALFORMED_QUERY", "SOQL statements cannot be longer than 100,000 characters.")
        try:
            parsed = parse_soql(soql)
            rows = parsed.select(self._rows(parsed.table))
            records = [parsed.project(row, request.path_params["version"]) for row in rows]
        except SoqlError as error:
            return _errors(400, error.code, str(error))
        return self._page(records, request.path_params["version"])

    async def query_more(self, request: Request) -> Response:
        records = self._pages.pop(request.path_params["locator"], None)
        if records is None:
            return _errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(records, request.path_params["version"])

    def _page(self, records: list[dict[str, Any]], version: str) -> Response:
        body: dict[str, Any] = {"totalSize": len(records), "done": True, "records": records[: self.page_size]}
        if len(records) > self.page_size:
            locator = f"01gFAKE{next(self._numbers)}-{self.page_size}"
            self._pages[locator] = records[self.page_size :]
            body.update(done=False, nextRecordsUrl=f"/services/data/v{version}/query/{locator}")
        return JSONResponse(body)

    # -- composite collections -----------------------------------------------------------

    async def describe(self, request: Request) -> Response:
        return JSONResponse({"name": "CampaignMember", "label": "Campaign Member", "keyPrefix": "00v",
                             "queryable": True, "updateable": True, **self.permissions})  # fmt: skip

    async def composite_insert(self, request: Request) -> Response:
        body = await self.json_object(request)
        records = body.get("records") if body else None
        if not isinstance(records, list) or not records:
            return _errors(400, "JSON_PARSER_ERROR", "records: expected a non-empty array")
        if len(records) > MAX_RECORDS:
            return _errors(400, "EXCEEDED_ID_LIMIT", f"Record limit reached. The limit is {MAX_RECORDS}.")
        results = [self._insert(r) for r in records]
        return JSONResponse(results)

    def _insert(self, record: Any) -> dict[str, Any]:
        fail = lambda code, message, *fields: {"success": False, "errors": [_item_error(code, message, fields)]}  # noqa: E731
        if not isinstance(record, dict) or (record.get("attributes") or {}).get("type") != "CampaignMember":
            return fail("INVALID_TYPE", "attributes.type must be CampaignMember")
        campaign = str(record.get("CampaignId", ""))
        campaign = next((c for c in self.tables["Campaign"] if c[:15] == campaign[:15] and campaign), "")
        kind = "Contact" if record.get("ContactId") else "Lead"
        person_id = str(record.get(f"{kind}Id") or "")
        person = next((p for i, p in self.tables[kind].items() if person_id and i[:15] == person_id[:15]), None)
        if not campaign or person is None:
            return fail(
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                "CampaignId" if not campaign else f"{kind}Id",
            )
        if person.get("IsConverted"):
            return fail("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", "LeadId")
        status = record.get("Status") or self.statuses[campaign][0]
        if status not in self.statuses[campaign]:
            return fail(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Status: bad value for restricted picklist field: {status}",
                "Status",
            )
        if str(person["Email"]).lower() in self.reject:
            return fail("FIELD_CUSTOM_VALIDATION_EXCEPTION", f"{person['Email']} may not join campaigns")
        if any(m["CampaignId"] == campaign and m.get(f"{kind}Id") == person["Id"] for m in self.members.values()):
            return fail("DUPLICATE_VALUE", "Already a campaign member.")
        member_id = salesforce_id("00v", next(self._numbers))
        self.members[member_id] = {"Id": member_id, "CampaignId": campaign, f"{kind}Id": person["Id"], "Status": status}
        return {"id": member_id, "success": True, "errors": []}

    async def composite_delete(self, request: Request) -> Response:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if not ids:
            return _errors(400, "MALFORMED_ID", "ids: at least one id is required")
        if len(ids) > MAX_RECORDS:
            return _errors(400, "EXCEEDED_ID_LIMIT", f"Record limit reached. The limit is {MAX_RECORDS}.")
        results = []
        for record_id in ids:
            if self.members.pop(record_id, None) is not None:
                results.append({"id": record_id, "success": True, "errors": []})
            elif not re.fullmatch(r"00v[A-Za-z0-9]{12}([A-Za-z0-9]{3})?", record_id):
                results.append({"success": False, "errors": [_item_error("MALFORMED_ID", f"malformed id {record_id}")]})
            else:
                results.append(
                    {
                        "id": record_id,
                        "success": False,
                        "errors": [_item_error("ENTITY_IS_DELETED", "entity is deleted")],
                    }
                )
        return JSONResponse(results)
