"""A fake Intercom (API 2.x) for the endpoints the ``intercom`` adapter uses, and no others.

Answers the way the real API does (shapes from the 2.14 OpenAPI description and
Intercom's documentation): ``error.list`` bodies with Intercom's codes, 401
``unauthorized`` for a bad token, 400 ``intercom_version_invalid`` without a valid
``Intercom-Version``, 404 ``not_found`` "User Not Found" for a missing contact and
"Resource Not Found" for a missing tag, 409 ``conflict`` "A contact matching those
details already exists with id=…" on a duplicate email, and 429 ``rate_limit_exceeded``
with ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (epoch seconds).

Two real-world quirks are knobs because Intercom does not document them:

- ``detach_unattached``: what ``DELETE /contacts/{id}/tags/{tag_id}`` answers when the
  tag exists but is not on the contact (404 "Resource Not Found" by default, or 200);
- search lag: ``seed_contact(..., search_misses=n)`` hides a contact from the next ``n``
  searches, as Intercom's search index trails creates by a few seconds;
- ``POST /tags {name, users: [{id}]}`` naming a contact that does not exist: 404 "User
  Not Found" for the whole call, nothing tagged (Intercom does not say).

Search takes ``email`` filters (``=`` or ``IN``) combined with ``AND``/``OR`` within
Intercom's documented limits (at most 15 filters per group, 2 levels of nesting; more is
a 400), and pages of ``pagination.per_page`` (default 50, at most 150) with
``starting_after`` cursors.
"""

from __future__ import annotations

import itertools
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.testing.fakes.server import FakeServer

__all__ = ["FakeContact", "FakeIntercom"]

_CODES = {
    400: "parameter_invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "server_error",
    503: "service_unavailable",
}
_VERSION = re.compile(r"\d+\.\d+|Unstable|Preview")
#: Intercom's default per-app limit (10,000 a minute) per 10 s window, for X-RateLimit-Limit
_DEFAULT_WINDOW_LIMIT = 1666


@dataclass
class FakeContact:
    id: str
    email: str
    role: str = "user"
    external_id: str | None = None
    name: str | None = None
    archived: bool = False
    tag_ids: set[str] = field(default_factory=set)
    created_at: int = field(default_factory=lambda: int(time.time()))

    def as_json(self, workspace_id: str) -> dict[str, Any]:
        """The fields of Intercom's contact object that the adapter may read, and a few more."""
        return {
            "type": "contact",
            "id": self.id,
            "workspace_id": workspace_id,
            "external_id": self.external_id,
            "role": self.role,
            "email": self.email,
            "name": self.name,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "tags": {
                "type": "list",
                "data": [{"type": "tag", "id": t, "url": f"/tags/{t}"} for t in sorted(self.tag_ids)],
                "url": f"/contacts/{self.id}/tags",
                "total_count": len(self.tag_ids),
                "has_more": False,
            },
        }


class FakeIntercom(FakeServer):
    """In-memory contacts, tags and attachments behind Intercom's routes.

    ``region`` is what ``GET /me`` reports (``"US"``, ``"EU"``, ``"AU"``).
    """

    def __init__(
        self,
        token: str,
        *,
        region: str = "US",
        detach_unattached: Literal[200, 404] = 404,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.region = region
        self.detach_unattached = detach_unattached
        self.workspace_id = "fakews01"
        self.contacts: dict[str, FakeContact] = {}
        self.tags: dict[str, str] = {}  # id -> name
        self.search_misses: dict[str, int] = {}  # lower email -> searches still missing it
        #: contacts named per ``POST /tags {users}`` call (to prove bulk tagging)
        self.bulk_tag_sizes: list[int] = []
        #: contact ids whose tagging Intercom refuses with a 400 (alone or in a bulk call)
        self.blocked: set[str] = set()
        self._ids = itertools.count(1)

    # -- arranging state -----------------------------------------------------------------

    def seed_contact(
        self,
        email: str,
        *,
        role: str = "user",
        external_id: str | None = None,
        archived: bool = False,
        search_misses: int = 0,
        tags: tuple[str, ...] = (),
    ) -> str:
        """Add a contact (optionally already carrying ``tags`` by name); return its id."""
        contact = FakeContact(self._contact_id(), email, role, external_id, archived=archived)
        contact.tag_ids = {self.tag_id(name) for name in tags}
        self.contacts[contact.id] = contact
        if search_misses:
            self.search_misses[email.lower()] = search_misses
        return contact.id

    def tag_id(self, name: str) -> str:
        """The id of tag ``name`` (case-insensitive), created if need be, as ``POST /tags``."""
        for tag_id, existing in self.tags.items():
            if existing.casefold() == name.casefold():
                return tag_id
        tag_id = str(100 + next(self._ids))
        self.tags[tag_id] = name
        return tag_id

    def delete_tag(self, name: str) -> None:
        """Delete a tag and detach it everywhere, as an admin would in the Intercom UI."""
        tag_id = self.tag_id(name)
        del self.tags[tag_id]
        for contact in self.contacts.values():
            contact.tag_ids.discard(tag_id)

    def delete_contact(self, contact_id: str) -> None:
        del self.contacts[contact_id]

    # -- reading state -------------------------------------------------------------------

    def with_email(self, email: str) -> list[FakeContact]:
        return [c for c in self.contacts.values() if c.email.lower() == email.lower()]

    def tags_of(self, contact_id: str) -> set[str]:
        """Names of the tags on one contact."""
        return {self.tags[t] for t in self.contacts[contact_id].tag_ids}

    def tags_for_email(self, email: str) -> set[str]:
        """Names of the tags on any contact with ``email``."""
        return {name for c in self.with_email(email) for name in self.tags_of(c.id)}

    # -- vendor shapes -------------------------------------------------------------------

    def error_response(self, status: int, message: str, code: str | None = None) -> Response:
        body = {
            "type": "error.list",
            "request_id": str(uuid.uuid4()),
            "errors": [{"code": code or _CODES.get(status, "client_error"), "message": message}],
        }
        return JSONResponse(body, status_code=status)

    def throttle_response(self, retry_after: float) -> Response:
        limit = self.rate_limit.requests if self.rate_limit else _DEFAULT_WINDOW_LIMIT
        response = self.error_response(429, f"Exceeded rate limit of {limit} in 10_seconds")
        response.headers.update(
            {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(time.time() + retry_after)),
            }
        )
        return response

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/me", self.me, methods=["GET"]),
            Route("/tags", self.create_tag, methods=["POST"]),
            Route("/tags", self.list_tags, methods=["GET"]),
            Route("/contacts", self.create_contact, methods=["POST"]),
            Route("/contacts/search", self.search, methods=["POST"]),
            Route("/contacts/{contact_id}/tags", self.attach, methods=["POST"]),
            Route("/contacts/{contact_id}/tags/{tag_id}", self.detach, methods=["DELETE"]),
        ]

    # -- routes --------------------------------------------------------------------------

    def refuse(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self.error_response(401, "Access Token Invalid")
        if not _VERSION.fullmatch(request.headers.get("intercom-version", "")):
            return self.error_response(400, "The requested version could not be found", "intercom_version_invalid")
        return None

    async def me(self, request: Request) -> Response:
        return JSONResponse(
            {
                "type": "admin",
                "id": "991267459",
                "email": "admin@example.com",
                "name": "Fake Admin",
                "email_verified": True,
                "app": {
                    "type": "app",
                    "id_code": self.workspace_id,
                    "name": "Fake Workspace",
                    "created_at": 1734537243,
                    "secure": False,
                    "identity_verification": False,
                    "timezone": "Europe/Dublin",
                    "region": self.region,
                },
            }
        )

    async def create_tag(self, request: Request) -> Response:
        body = await self.json_body(request)
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip() or set(body) - {"name", "users"}:
            return self.error_response(400, "invalid tag parameters")
        users = body.get("users", [])
        if not isinstance(users, list) or not all(isinstance(u, dict) and isinstance(u.get("id"), str) for u in users):
            return self.error_response(400, "users must be a list of {id}")
        contacts = [self._live(u["id"]) for u in users]
        if "users" in body:
            self.bulk_tag_sizes.append(len(users))
        if any(c is None for c in contacts):
            return self.error_response(404, "User Not Found")
        if any(c.id in self.blocked for c in contacts if c is not None):
            return self.error_response(400, "Contact is blocked")
        tag_id = self.tag_id(name)
        for contact in contacts:
            if contact is not None:
                contact.tag_ids.add(tag_id)
        return JSONResponse({"type": "tag", "id": tag_id, "name": self.tags[tag_id]})

    async def search(self, request: Request) -> Response:
        body = await self.json_body(request)
        query = body.get("query") if isinstance(body, dict) else None
        if isinstance(query, dict) and query.get("field") == "tag_id" and query.get("operator") == "=":
            return self._tagged(str(query.get("value")), body.get("pagination") or {})
        paging = (body.get("pagination") or {}) if isinstance(body, dict) else {}
        try:
            emails = _emails_in(query, depth=0)
            per_page = int(paging.get("per_page", 50))
            start = int(paging.get("starting_after") or 0)
        except (_BadQuery, TypeError, ValueError) as bad:
            return self.error_response(400, str(bad) or "invalid search")
        if not 0 < per_page <= 150:
            return self.error_response(400, "per_page must be between 1 and 150")
        found = [
            c
            for c in self.contacts.values()
            if c.email.lower() in emails and not c.archived and not self._miss(c.email.lower())
        ]
        page = found[start : start + per_page]
        pages: dict[str, Any] = {"type": "pages", "page": start // per_page + 1, "per_page": per_page,
                                 "total_pages": math.ceil(len(found) / per_page)}  # fmt: skip
        if start + per_page < len(found):
            pages["next"] = {"per_page": per_page, "starting_after": str(start + per_page)}
        data = [c.as_json(self.workspace_id) for c in page]
        return JSONResponse({"type": "list", "data": data, "total_count": len(found), "pages": pages})

    async def create_contact(self, request: Request) -> Response:
        body = await self.json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("email"), str):
            return self.error_response(400, "email or external_id is required")
        if body.get("role", "user") not in ("user", "lead"):
            return self.error_response(400, "role must be user or lead")
        clash = next(
            (
                c
                for c in self.contacts.values()
                if c.email.lower() == body["email"].lower()
                or (body.get("external_id") and c.external_id == body["external_id"])
            ),
            None,
        )
        if clash is not None:
            who = "An archived contact" if clash.archived else "A contact"
            return self.error_response(409, f"{who} matching those details already exists with id={clash.id}")
        contact = FakeContact(
            self._contact_id(), body["email"], body.get("role", "user"), body.get("external_id"), body.get("name")
        )
        self.contacts[contact.id] = contact
        return JSONResponse(contact.as_json(self.workspace_id))

    async def attach(self, request: Request) -> Response:
        body = await self.json_body(request)
        contact = self._live(request.path_params["contact_id"])
        if contact is None:
            return self.error_response(404, "User Not Found")
        tag_id = str(body.get("id")) if isinstance(body, dict) else ""
        if tag_id not in self.tags:
            return self.error_response(404, "Resource Not Found")
        if contact.id in self.blocked:
            return self.error_response(400, "Contact is blocked")
        contact.tag_ids.add(tag_id)
        return JSONResponse(self._applied(tag_id))

    async def detach(self, request: Request) -> Response:
        contact = self._live(request.path_params["contact_id"])
        if contact is None:
            return self.error_response(404, "User Not Found")
        tag_id = request.path_params["tag_id"]
        attached = tag_id in contact.tag_ids
        if tag_id not in self.tags or (not attached and self.detach_unattached == 404):
            return self.error_response(404, "Resource Not Found")
        contact.tag_ids.discard(tag_id)
        return JSONResponse(self._applied(tag_id))

    # -- helpers -------------------------------------------------------------------------

    def _contact_id(self) -> str:
        return f"{0x6762F0DD00000000 + next(self._ids):024x}"  # Intercom ids: 24 hex digits

    def _live(self, contact_id: str) -> FakeContact | None:
        contact = self.contacts.get(contact_id)
        return None if contact is None or contact.archived else contact

    def _miss(self, email: str) -> bool:
        left = self.search_misses.get(email, 0)
        if left:
            self.search_misses[email] = left - 1
        return left > 0

    def _applied(self, tag_id: str) -> dict[str, Any]:
        return {
            "type": "tag",
            "id": tag_id,
            "name": self.tags[tag_id],
            "applied_at": int(time.time()),
            "applied_by": {"type": "admin", "id": "991267459"},
        }

    async def list_tags(self, request: Request) -> Response:
        data = [{"type": "tag", "id": i, "name": n} for i, n in sorted(self.tags.items())]
        return JSONResponse({"type": "list", "data": data})

    def _tagged(self, tag_id: str, pagination: dict[str, Any]) -> Response:
        """Search by ``tag_id``: contacts in id order, ``per_page`` a page, cursor = last id seen."""
        per_page, after = int(pagination.get("per_page", 50)), pagination.get("starting_after")
        found = sorted(
            (c for c in self.contacts.values() if tag_id in c.tag_ids and not c.archived), key=lambda c: c.id
        )
        rest = [c for c in found if after is None or c.id > after]
        data = [c.as_json(self.workspace_id) for c in rest[:per_page]]
        pages: dict[str, Any] = {"type": "pages", "per_page": per_page}
        if len(rest) > per_page:
            pages["next"] = {"per_page": per_page, "starting_after": rest[per_page - 1].id}
        return JSONResponse({"type": "list", "data": data, "total_count": len(found), "pages": pages})


class _BadQuery(ValueError):
    pass


def _emails_in(query: Any, depth: int) -> set[str]:
    """The (lower-cased) emails a search query matches; _BadQuery beyond what the fake,
    or Intercom's documented limits, allow. AND of different emails matches nothing."""
    if not isinstance(query, dict):
        raise _BadQuery("query must be an object")
    if query.get("operator") in ("AND", "OR"):
        parts = query.get("value")
        if depth >= 2:
            raise _BadQuery("There's a limit of max 2 nested filters")
        if not isinstance(parts, list) or not parts or len(parts) > 15:
            raise _BadQuery("There's a limit of max 15 filters for each AND or OR group")
        sets = [_emails_in(part, depth + 1) for part in parts]
        return set.union(*sets) if query["operator"] == "OR" else set.intersection(*sets)
    value = query.get("value")
    if query.get("field") == "email" and query.get("operator") == "=" and isinstance(value, str):
        return {value.lower()}
    if query.get("field") == "email" and query.get("operator") == "IN" and isinstance(value, list):
        return {str(v).lower() for v in value}
    raise _BadQuery("this fake only searches email = <value> or email IN [...]")
