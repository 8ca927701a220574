"""A fake HubSpot for the ``hubspot`` target: the few CRM v3 calls it makes, answered alike.

Covered: ``GET /crm/v3/objects/contacts``, contacts ``batch/read`` (200, or 207 with an
``OBJECT_NOT_FOUND`` error naming the absent ids) and ``batch/upsert``, list by id and by
name, and ``PUT /crm/v3/lists/{listId}/memberships/add|remove`` (MANUAL/SNAPSHOT only).
Shapes follow HubSpot's published OpenAPI files (errors ``{status, message,
correlationId, category}``; the membership answer spells ``recordsIdsAdded`` as the spec
does). A Bearer token is required (401 otherwise) and the private app's ``scopes`` are
checked (403 ``MISSING_SCOPES``). By default it enforces HubSpot's lower tier, 100 calls
in any rolling 10 s, answering 429 with ``policyName: TEN_SECONDLY_ROLLING``; every
answer carries ``X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds``.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.testing.fakes.limits import WindowLimit
from connector.testing.fakes.server import FakeServer

__all__ = ["ALL_SCOPES", "FakeHubSpot"]

ALL_SCOPES = frozenset({"crm.objects.contacts.read", "crm.objects.contacts.write", "crm.lists.read", "crm.lists.write"})
_READ, _WRITE = "crm.objects.contacts.read", "crm.objects.contacts.write"
_LISTS_READ, _LISTS_WRITE = "crm.lists.read", "crm.lists.write"
_NOT_FOUND = "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid."


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, message: str, category: str, **extra: Any) -> JSONResponse:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}
    return JSONResponse(body, status_code=status)


def _item_error(category: str, message: str, ids: list[str]) -> dict[str, Any]:
    # The spec's StandardError requires errors and links too; HubSpot sends them empty or not at all.
    return {"status": "error", "category": category, "message": message, "context": {"ids": ids},
            "errors": [], "links": {}}  # fmt: skip


_CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
               404: "OBJECT_NOT_FOUND", 409: "CONFLICT", 415: "VALIDATION_ERROR", 429: "RATE_LIMITS"}  # fmt: skip

Handler = Callable[[Request], Any]


class FakeHubSpot(FakeServer):
    """HubSpot's contacts and lists, in memory.

    ``contacts`` maps a lower-cased email to its record (``id`` plus ``properties``);
    ``lists`` maps an ILS list id to its definition plus a ``members`` set of record ids.
    Seed with :meth:`seed_contact` / :meth:`seed_list`, read with :meth:`member_emails`.
    ``rate_limit`` defaults to 100 per rolling 10 s; ``unlimited=True`` turns it off.
    """

    def __init__(
        self, token: str, *, scopes: Iterable[str] = ALL_SCOPES, rate_limit: WindowLimit | None = None,
        unlimited: bool = False, **kwargs: Any,
    ) -> None:  # fmt: skip
        if rate_limit is None and not unlimited:
            rate_limit = WindowLimit(100, 10)  # HubSpot's lower tier, per private app
        super().__init__(rate_limit=rate_limit, **kwargs)
        self.token = token
        self.scopes = set(scopes)
        self.contacts: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self._next_contact = 1001
        self._next_list = 1

    # -- seeding and reading state -------------------------------------------------------

    def seed_contact(self, email: str, /, **properties: str) -> str:
        """Create a contact (idempotent per email), set ``properties``; return its record id."""
        key = email.strip().lower()
        properties.pop("email", None)  # the key is the (lower-cased) email
        if key not in self.contacts:
            record_id = str(self._next_contact)
            self._next_contact += 1
            now = _now()
            self.contacts[key] = {"id": record_id, "createdAt": now, "updatedAt": now,
                                  "properties": {"email": key, "hs_object_id": record_id}}  # fmt: skip
        self.contacts[key]["properties"].update(properties)
        return self.contacts[key]["id"]

    def delete_contact(self, email: str) -> None:
        """Delete a contact; like HubSpot, its record id vanishes from every list."""
        record = self.contacts.pop(email.strip().lower())
        for definition in self.lists.values():
            definition["members"].discard(record["id"])

    def seed_list(self, name: str, *, processing_type: str = "MANUAL", object_type_id: str = "0-1",
                  list_id: str | None = None) -> str:  # fmt: skip
        """Create a list; return its ILS list id."""
        list_id = list_id or str(self._next_list)
        self._next_list += 1
        self.lists[list_id] = {"listId": list_id, "name": name, "objectTypeId": object_type_id,
                               "processingType": processing_type, "processingStatus": "COMPLETE",
                               "listVersion": 1, "members": set()}  # fmt: skip
        return list_id

    def contact_id(self, email: str) -> str | None:
        record = self.contacts.get(email.strip().lower())
        return record["id"] if record else None

    def member_ids(self, list_id: str) -> set[str]:
        return set(self.lists[list_id]["members"])

    def member_emails(self, list_id: str) -> set[str]:
        members = self.lists[list_id]["members"]
        return {email for email, record in self.contacts.items() if record["id"] in members}

    # -- vendor hooks --------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        base = "/crm/v3"
        return [
            Route(f"{base}/objects/contacts", self._guard(_READ, self.list_contacts), methods=["GET"]),
            Route(f"{base}/objects/contacts/batch/read", self._guard(_READ, self.batch_read), methods=["POST"]),
            Route(f"{base}/objects/contacts/batch/upsert", self._guard(_WRITE, self.batch_upsert), methods=["POST"]),
            Route(f"{base}/lists/object-type-id/{{objectTypeId}}/name/{{listName:path}}",
                  self._guard(_LISTS_READ, self.list_by_name), methods=["GET"]),
            Route(f"{base}/lists/{{listId}}/memberships/{{verb}}",
                  self._guard(_LISTS_WRITE, self.update_memberships), methods=["PUT"]),
            Route(f"{base}/lists/{{listId}}/memberships", self._guard(_LISTS_READ, self.list_memberships),
                  methods=["GET"]),
            Route(f"{base}/lists/{{listId}}", self._guard(_LISTS_READ, self.get_list), methods=["GET"]),
        ]  # fmt: skip

    def error_response(self, status: int, message: str) -> Response:
        return _error(status, message, _CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR"))

    def throttle_response(self, retry_after: float) -> Response:
        # HubSpot sends no Retry-After. A rolling-window 429 means "wait out the window"
        # (X-HubSpot-RateLimit-Interval-Milliseconds); a longer wait can only be said
        # with the DAILY policy, which clients read as "come back in an hour".
        window = self.rate_limit.per_seconds if self.rate_limit else 10.0
        if retry_after > max(window, 60.0):
            return _error(429, "You have reached your daily limit.", "RATE_LIMITS", errorType="RATE_LIMIT",
                          policyName="DAILY", groupName="publicapi:private-app-daily")  # fmt: skip
        interval = max(window, retry_after)
        response = _error(429, "You have reached your ten_secondly_rolling limit.", "RATE_LIMITS",
                          errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING",
                          groupName="publicapi:private-app-ten-secondly")  # fmt: skip
        response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(math.ceil(interval * 1000))
        return response

    def answer_headers(self, path: str) -> dict[str, str]:
        limit = self.rate_limit
        if limit is None:
            return {}
        used = len(limit._arrivals)  # no public count on WindowLimit yet
        return {"x-hubspot-ratelimit-max": str(limit.requests),
                "x-hubspot-ratelimit-remaining": str(max(0, limit.requests - used)),
                "x-hubspot-ratelimit-interval-milliseconds": str(math.ceil(limit.per_seconds * 1000))}  # fmt: skip

    def refuse(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Authentication credentials not found. This API supports OAuth 2.0 "
                               "authentication.", "INVALID_AUTHENTICATION")  # fmt: skip
        return None

    def _guard(self, scope: str, handler: Handler) -> Handler:
        """Scope and JSON content type (after the token, :meth:`refuse`), as HubSpot answers them."""

        async def guarded(request: Request) -> Response:
            if scope not in self.scopes:
                detail = [{"message": "One or more of the following scopes are required.",
                           "context": {"requiredGranularScopes": [scope]}}]  # fmt: skip
                links = {"scopes": "https://developers.hubspot.com/scopes"}
                return _error(
                    403,
                    "This app hasn't been granted all required scopes to make this call.",
                    "MISSING_SCOPES",
                    errors=detail,
                    links=links,
                )
            if request.method in ("POST", "PUT") and not request.headers.get("content-type", "").startswith(
                "application/json"
            ):
                return _error(415, "Content type not supported; use application/json", "VALIDATION_ERROR")
            return await handler(request)

        return guarded

    # -- contacts ------------------------------------------------------------------------

    def _public(self, record: dict[str, Any], wanted: Iterable[str] | None) -> dict[str, Any]:
        defaults = ("email", "firstname", "lastname", "hs_object_id", "createdate", "lastmodifieddate")
        names = set(defaults) | set(wanted or ())
        properties = {k: v for k, v in record["properties"].items() if k in names}
        return {"id": record["id"], "properties": properties, "createdAt": record["createdAt"],
                "updatedAt": record["updatedAt"], "archived": False}  # fmt: skip

    async def list_contacts(self, request: Request) -> Response:
        limit = int(request.query_params.get("limit", "10"))
        records = sorted(self.contacts.values(), key=lambda r: int(r["id"]))
        body: dict[str, Any] = {"results": [self._public(r, None) for r in records[:limit]]}
        if len(records) > limit:
            body["paging"] = {"next": {"after": records[limit]["id"]}}
        return JSONResponse(body)

    async def _inputs(self, request: Request) -> tuple[dict[str, Any], list[dict[str, Any]]] | Response:
        body = await self.json_object(request) or {}
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and "id" in i for i in inputs):
            return self.error_response(400, "Invalid input JSON: 'inputs' must be a list of objects with an 'id'")
        if len(inputs) > 100:
            return self.error_response(400, f"Batch input limit exceeded: {len(inputs)} inputs, at most 100")
        return body, inputs

    async def batch_read(self, request: Request) -> Response:
        parsed = await self._inputs(request)
        if isinstance(parsed, Response):
            return parsed
        body, inputs = parsed
        by_id = body.get("idProperty") != "email"  # without idProperty, ids are record ids
        index = {r["id"]: r for r in self.contacts.values()} if by_id else self.contacts
        results, missing = [], []
        for key in dict.fromkeys(str(i["id"]) if by_id else str(i["id"]).lower() for i in inputs):
            record = index.get(key)
            if record is None:
                missing.append(key)
            else:
                results.append(self._public(record, body.get("properties")))
        errors = [_item_error("OBJECT_NOT_FOUND", _NOT_FOUND, missing)] if missing else []
        return self._batch_answer(results, errors)

    async def batch_upsert(self, request: Request) -> Response:
        parsed = await self._inputs(request)
        if isinstance(parsed, Response):
            return parsed
        _, inputs = parsed
        results, errors = [], []
        for item in inputs:
            email = str(item["id"]).strip().lower()
            if item.get("idProperty") != "email" or "@" not in email:
                message = f"Property values were not valid: email {item['id']!r}"
                errors.append(_item_error("VALIDATION_ERROR", message, [str(item["id"])]))
                continue
            new = email not in self.contacts
            self.seed_contact(email, **{k: str(v) for k, v in (item.get("properties") or {}).items()})
            results.append({**self._public(self.contacts[email], None), "new": new})
        return self._batch_answer(results, errors)

    def _batch_answer(self, results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> Response:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": _now(), "completedAt": _now()}
        if errors:
            body.update(numErrors=len(errors), errors=errors)
        return JSONResponse(body, status_code=207 if errors else 200)

    # -- lists ---------------------------------------------------------------------------

    def _definition(self, definition: dict[str, Any]) -> dict[str, Any]:
        public = {k: v for k, v in definition.items() if k != "members"}
        return {"list": {**public, "size": len(definition["members"])}}

    async def get_list(self, request: Request) -> Response:
        definition = self.lists.get(request.path_params["listId"])
        if definition is None:
            return self.error_response(404, f"List does not exist with id {request.path_params['listId']}")
        return JSONResponse(self._definition(definition))

    async def list_by_name(self, request: Request) -> Response:
        name, object_type = request.path_params["listName"], request.path_params["objectTypeId"]
        for definition in self.lists.values():
            if definition["objectTypeId"] == object_type and definition["name"].lower() == name.lower():
                return JSONResponse(self._definition(definition))
        return self.error_response(404, f"List does not exist with name {name} and object type {object_type}")

    async def update_memberships(self, request: Request) -> Response:
        list_id, verb = request.path_params["listId"], request.path_params["verb"]
        definition = self.lists.get(list_id)
        if verb not in ("add", "remove"):
            return self.error_response(404, f"Unknown membership operation {verb}")
        if definition is None:
            return self.error_response(404, f"List does not exist with id {list_id}")
        if definition["processingType"] not in ("MANUAL", "SNAPSHOT"):
            return self.error_response(400, f"List {list_id} is {definition['processingType']}; "
                                            "only MANUAL or SNAPSHOT lists can be updated")  # fmt: skip
        ids = await self.json_body(request)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return self.error_response(400, "Invalid input JSON: expected an array of record id strings")
        existing = {r["id"] for r in self.contacts.values()}
        members: set[str] = definition["members"]
        unique = list(dict.fromkeys(ids))
        changed = [i for i in unique if i in existing and ((i not in members) if verb == "add" else (i in members))]
        (members.update if verb == "add" else members.difference_update)(changed)
        return JSONResponse({"recordsIdsAdded": changed if verb == "add" else [],
                             "recordIdsRemoved": changed if verb == "remove" else [],
                             "recordIdsMissing": [i for i in unique if i not in existing]})  # fmt: skip

    async def list_memberships(self, request: Request) -> Response:
        """Members ordered by record id, ``limit`` (at most 250) a page, ``after`` the last id seen."""
        definition = self.lists.get(request.path_params["listId"])
        if definition is None:
            return self.error_response(404, f"List does not exist with id {request.path_params['listId']}")
        limit = min(int(request.query_params.get("limit", "100")), 250)
        after = int(request.query_params.get("after", "0"))
        ids = sorted(int(i) for i in definition["members"] if int(i) > after)
        body: dict[str, Any] = {"results": [{"recordId": str(i), "membershipTimestamp": _now()} for i in ids[:limit]],
                                "total": len(definition["members"])}  # fmt: skip
        if len(ids) > limit:
            body["paging"] = {"next": {"after": str(ids[limit - 1])}}
        return JSONResponse(body)
