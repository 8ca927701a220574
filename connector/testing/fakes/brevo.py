"""A fake Brevo for the ``brevo`` target: the v3 contact and list calls it makes.

Covered: ``GET /v3/account``, ``GET /v3/contacts/lists/{listId}``, ``GET /v3/contacts/{identifier}``,
``POST /v3/contacts`` (``updateEnabled``), and ``POST /v3/contacts/lists/{listId}/contacts/add|remove``
with Brevo's answers: 201 ``{"contacts": {"success", "failure"}}``, 400 ``invalid_parameter``
when no email changed, at most 150 emails a call. Errors are Brevo's ``{"code", "message"}``.
The ``api-key`` header is required (401 ``unauthorized``). By default it allows 10 requests
in any second, answering 429 beyond; every answer carries ``x-sib-ratelimit-limit``,
``-remaining`` and ``-reset`` (seconds until the window frees a slot).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.testing.fakes.limits import WindowLimit
from connector.testing.fakes.server import FakeServer, Message, Receive, Scope, Send

__all__ = ["FakeBrevo"]

MAX_EMAILS = 150
_CODES = {400: "bad_request", 401: "unauthorized", 402: "not_enough_credits", 403: "permission_denied",
          404: "document_not_found", 405: "method_not_allowed", 406: "not_acceptable",
          422: "unprocessable_entity"}  # fmt: skip


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeBrevo(FakeServer):
    """Brevo's contacts and lists, in memory.

    ``contacts`` maps a lower-cased email to ``{"id", "listIds": set, …}``; ``lists`` maps a
    list id to its name. ``reject`` holds emails whose list adds Brevo refuses (reported
    under ``failure`` although they exist), for tests of that path.
    """

    def __init__(
        self, api_key: str, *, lists: dict[int, str] | None = None, rate_limit: WindowLimit | None = None,
        unlimited: bool = False, **kwargs: Any,
    ) -> None:  # fmt: skip
        if rate_limit is None and not unlimited:
            rate_limit = WindowLimit(10, 1.0)  # /v3/contacts/*: 10 requests per second
        super().__init__(rate_limit=rate_limit, **kwargs)
        self.api_key = api_key
        self.lists: dict[int, str] = dict(lists or {})
        self.contacts: dict[str, dict[str, Any]] = {}
        self.reject: set[str] = set()
        self._next_id = 1

    # -- seeding and reading state -------------------------------------------------------

    def seed_contact(self, email: str, *, lists: tuple[int, ...] = ()) -> int:
        key = email.strip().lower()
        if key not in self.contacts:
            self.contacts[key] = {"id": self._next_id, "email": key, "listIds": set(), "createdAt": _now(),
                                  "emailBlacklisted": False, "smsBlacklisted": False, "attributes": {}}  # fmt: skip
            self._next_id += 1
        self.contacts[key]["listIds"].update(lists)
        return int(self.contacts[key]["id"])

    def members(self, list_id: int) -> set[str]:
        return {email for email, contact in self.contacts.items() if list_id in contact["listIds"]}

    # -- vendor hooks --------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v3/account", self.account, methods=["GET"]),
            Route("/v3/contacts", self.create_contact, methods=["POST"]),
            Route("/v3/contacts/lists/{listId:int}", self.get_list, methods=["GET"]),
            Route("/v3/contacts/lists/{listId:int}/contacts/{verb}", self.membership, methods=["POST"]),
            Route("/v3/contacts/{identifier:path}", self.get_contact, methods=["GET"]),
        ]

    def error_response(self, status: int, message: str) -> Response:
        return _error(status, _CODES.get(status, "internal_error" if status >= 500 else "bad_request"), message)

    def throttle_response(self, retry_after: float) -> Response:
        response = _error(429, "too_many_requests", "Too many requests, please retry later")
        limit = self.rate_limit.requests if self.rate_limit else 10
        response.headers.update({"x-sib-ratelimit-limit": str(limit), "x-sib-ratelimit-remaining": "0",
                                 "x-sib-ratelimit-reset": str(math.ceil(retry_after))})  # fmt: skip
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            send = self._with_limit_headers(send)
        await super().__call__(scope, receive, send)

    def _with_limit_headers(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and self.rate_limit is not None:
                names = {name.lower() for name, _ in message.get("headers", [])}
                if b"x-sib-ratelimit-limit" not in names:
                    limit = self.rate_limit
                    arrivals = limit._arrivals  # no public view on WindowLimit yet
                    remaining = max(0, limit.requests - len(arrivals))
                    reset = arrivals[0] + limit.per_seconds - limit.clock() if arrivals else 0.0
                    extra = [(b"x-sib-ratelimit-limit", str(limit.requests)),
                             (b"x-sib-ratelimit-remaining", str(remaining)),
                             (b"x-sib-ratelimit-reset", str(max(0, math.ceil(reset))))]  # fmt: skip
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), *((k, v.encode()) for k, v in extra)],
                    }
            await send(message)

        return wrapped

    def refuse(self, request: Request) -> Response | None:
        key = request.headers.get("api-key")
        if not key:
            return _error(401, "unauthorized", "Key not found")
        if key != self.api_key:
            return _error(401, "unauthorized", "API Key is not enabled")
        if request.method == "POST" and not request.headers.get("content-type", "").startswith("application/json"):
            return _error(415, "not_acceptable", "Content-Type must be application/json")
        return None

    # -- routes --------------------------------------------------------------------------

    async def account(self, request: Request) -> Response:
        return JSONResponse({"email": "owner@example.com", "firstName": "Fake", "lastName": "Brevo",
                             "companyName": "Fake Brevo", "plan": [{"type": "free", "credits": 300}]})  # fmt: skip

    async def get_list(self, request: Request) -> Response:
        list_id = request.path_params["listId"]
        if list_id not in self.lists:
            return _error(404, "document_not_found", "List ID does not exist")
        return JSONResponse({"id": list_id, "name": self.lists[list_id], "totalSubscribers": len(self.members(list_id)),
                             "totalBlacklisted": 0, "uniqueSubscribers": len(self.members(list_id)),
                             "createdAt": _now(), "folderId": 1, "dynamicList": False})  # fmt: skip

    async def get_contact(self, request: Request) -> Response:
        identifier = unquote(request.path_params["identifier"]).strip().lower()
        contact = self.contacts.get(identifier)
        if contact is None and identifier.isdigit():
            contact = next((c for c in self.contacts.values() if c["id"] == int(identifier)), None)
        if contact is None:
            return _error(404, "document_not_found", "Contact does not exist")
        return JSONResponse({**contact, "listIds": sorted(contact["listIds"]), "modifiedAt": _now()})

    async def create_contact(self, request: Request) -> Response:
        body = await self.json_object(request)
        email = str((body or {}).get("email") or "").strip().lower()
        if "@" not in email:
            return _error(
                400, "missing_parameter", "An email or SMS phone number is mandatory to create a new contact."
            )
        list_ids = [int(i) for i in (body or {}).get("listIds") or ()]
        unknown = [i for i in list_ids if i not in self.lists]
        if unknown:
            return _error(404, "document_not_found", f"List ID does not exist: {unknown[0]}")
        existed = email in self.contacts
        if existed and not (body or {}).get("updateEnabled"):
            return _error(
                400, "duplicate_parameter", "Unable to create contact, email is already associated with another Contact"
            )
        contact_id = self.seed_contact(email, lists=tuple(list_ids))
        return Response(status_code=204) if existed else JSONResponse({"id": contact_id}, status_code=201)

    async def membership(self, request: Request) -> Response:
        list_id, verb = request.path_params["listId"], request.path_params["verb"]
        if verb not in ("add", "remove"):
            return _error(405, "method_not_allowed", "POST Method is not allowed on this path")
        if list_id not in self.lists:
            return _error(404, "document_not_found", "List ID does not exist")
        body = await self.json_object(request)
        emails = (body or {}).get("emails")
        if not isinstance(emails, list) or not emails or not all(isinstance(e, str) for e in emails):
            return _error(400, "missing_parameter", "emails or ids is required")
        if len(emails) > MAX_EMAILS:
            return _error(400, "out_of_range", f"You can pass a maximum of {MAX_EMAILS} emails in one request")
        success, failure = [], []
        for email in emails:
            contact = self.contacts.get(email.strip().lower())
            member = contact is not None and list_id in contact["listIds"]
            if contact is None or member == (verb == "add") or (verb == "add" and email.lower() in self.reject):
                failure.append(email.lower())
                continue
            (contact["listIds"].add if verb == "add" else contact["listIds"].discard)(list_id)
            success.append(email.lower())
        if not success:
            message = "Contact already in list and/or does not exist" if verb == "add" else \
                "Contact already removed from list and/or does not exist"  # fmt: skip
            return _error(400, "invalid_parameter", message)
        return JSONResponse({"contacts": {"success": success, "failure": failure}}, status_code=201)
