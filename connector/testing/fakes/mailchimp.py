"""A fake Mailchimp Marketing API 3.0: the calls the ``mailchimp`` adapter makes, no more.

Answers the way the real API is documented to (specs/mailchimp, mailchimp.com/developer):

- ``GET /3.0/ping`` → ``{"health_status": "Everything's Chimpy!"}``;
- ``GET /3.0/lists/{list_id}`` → the audience, or 404;
- ``PUT /3.0/lists/{list_id}/members/{hash}`` → upsert, 200 with the member; a new member
  needs ``email_address`` and ``status_if_new``, and the hash must be the address's;
- ``POST /3.0/lists/{list_id}/members/{hash}/tags`` → 204; 404 for a non-member;
- ``GET /3.0/lists/{list_id}/segments`` (``type``, ``count`` ≤ 1000, ``offset``) → a page of
  segments with ``total_items``; a tag is a static segment, so every tag is listed;
- ``GET /3.0/lists/{list_id}/segments/{id}/members`` (``count`` ≤ 1000, ``offset``) → a page
  of the members with that tag, with ``total_items``;
- ``POST /3.0/lists/{list_id}/segments`` ``{name, static_segment}`` → the new segment
  (400 if the name is taken);
- ``POST /3.0/lists/{list_id}/segments/{id}`` ``{members_to_add, members_to_remove}``
  (≤ 500 each) → ``total_added``, ``total_removed``, ``members_added``,
  ``members_removed``, ``errors: [{email_addresses, error}]``, ``error_count``; an address
  not in the audience (or refused) is named in ``errors`` and changes nothing.

Errors are Problem Detail documents (``type, title, status, detail, instance``). Auth is
HTTP Basic with any user and the key as password, or ``Bearer <key>``; anything else 401.
More than ``max_connections`` (10) requests at once get Mailchimp's 429, which states no
delay. Only scripted throttles (:meth:`FakeMailchimp.throttle_next`) add ``Retry-After``,
so tests can check that a stated vendor delay is honoured.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.testing.fakes.mailchimp_checks import (
    is_email_list as _is_email_list,
)
from connector.testing.fakes.mailchimp_checks import (
    is_tag as _is_tag,
)
from connector.testing.fakes.mailchimp_checks import (
    new_member_problem as _new_member_problem,
)
from connector.testing.fakes.mailchimp_checks import (
    paging as _paging,
)
from connector.testing.fakes.mailchimp_checks import (
    subscriber_hash as _hash,
)
from connector.testing.fakes.server import FakeServer, Receive, Scope, Send

__all__ = ["FakeMailchimp", "FakeMember"]

ERROR_DOCS = "https://mailchimp.com/developer/marketing/docs/errors/"
_TITLES = {
    400: "Invalid Resource",
    401: "API Key Invalid",
    403: "Forbidden",
    404: "Resource Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class FakeMember:
    email: str
    status: str
    tags: set[str] = field(default_factory=set)

    def as_json(self, list_id: str) -> dict[str, Any]:
        return {
            "id": _hash(self.email),
            "email_address": self.email,
            "unique_email_id": _hash(self.email)[:10],
            "status": self.status,
            "list_id": list_id,
            "merge_fields": {},
            "tags_count": len(self.tags),
            "tags": [{"id": abs(hash(t)) % 10**6, "name": t} for t in sorted(self.tags)],
        }


class FakeMailchimp(FakeServer):
    """In-memory audiences → members → tags, behind Mailchimp's paths, auth and limits.

    ``tag_calls`` counts tags calls per subscriber hash (to prove one call per member);
    ``reject`` holds emails whose writes get a 400, as Mailchimp gives for addresses it
    will not take.
    """

    def __init__(
        self,
        api_key: str,
        audiences: Iterable[str] = (),
        *,
        max_connections: int | None = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_concurrency=max_connections, **kwargs)
        self.api_key = api_key
        self.audiences: dict[str, dict[str, FakeMember]] = {a: {} for a in audiences}
        self.reject: set[str] = set()
        self.tag_calls: dict[str, int] = {}
        #: audience -> static segment id -> its name (the tag); every tag has one
        self.segments: dict[str, dict[int, str]] = {a: {} for a in self.audiences}
        #: batch calls per segment id (to prove one call per tag, not per member)
        self.segment_calls: dict[int, int] = {}
        self._next_segment = 1001
        #: most requests in flight at once, those refused with 429 included (the base's
        #: limit stops counting at its cap, so it could never show a client going over)
        self.peak_connections = 0
        self._open = 0
        self._state = threading.Lock()  # tests read from their thread while routes write

    # -- helpers for tests -------------------------------------------------------------------

    def seed_member(self, audience: str, email: str, status: str = "subscribed", tags: Iterable[str] = ()) -> None:
        with self._state:
            self.audiences[audience][_hash(email)] = FakeMember(email, status, set(tags))
            for tag in tags:
                self._segment_for(audience, tag)

    def seed_segment(self, audience: str, name: str) -> int:
        """A static segment (tag) with no members yet; its id."""
        with self._state:
            return self._segment_for(audience, name)

    def _segment_for(self, audience: str, name: str) -> int:
        """The id of the tag's segment, created as Mailchimp does on first use. Holds _state."""
        segments = self.segments.setdefault(audience, {})
        for segment, known in segments.items():
            if known == name:
                return segment
        segment = self._next_segment
        self._next_segment += 1
        segments[segment] = name
        return segment

    def member(self, audience: str, email: str) -> FakeMember | None:
        with self._state:
            return self.audiences[audience].get(_hash(email))

    def tags_of(self, audience: str, email: str) -> set[str]:
        """The member's active tags; empty for a non-member."""
        found = self.member(audience, email)
        return set(found.tags) if found else set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        self._open += 1  # only the server's event loop touches these
        self.peak_connections = max(self.peak_connections, self._open)
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._open -= 1

    # -- vendor shapes --------------------------------------------------------------------------

    def error_response(self, status: int, message: str) -> Response:
        return self.problem(status, _TITLES.get(status, "Error"), message)

    def problem(self, status: int, title: str, detail: str) -> Response:
        """A Problem Detail document, Mailchimp's shape for every error."""
        return JSONResponse(
            {"type": ERROR_DOCS, "title": title, "status": status, "detail": detail, "instance": str(uuid.uuid4())},
            status_code=status,
            media_type="application/problem+json",
        )

    def throttle_response(self, retry_after: float) -> Response:
        # Mailchimp documents no Retry-After for this; the client must back off on its own.
        return self.error_response(429, "You have exceeded the limit of 10 simultaneous connections.")

    def throttle_next(self, retry_after: float, *, times: int = 1, **match: Any) -> None:
        """A scripted 429 that *does* ask for ``retry_after`` seconds (see module docstring)."""

        def respond() -> Response:
            self.retry_not_before = max(self.retry_not_before, time.time() + retry_after)
            response = self.throttle_response(retry_after)
            response.headers["Retry-After"] = str(math.ceil(retry_after))
            return response

        self.enqueue(respond, times=times, cause="throttled", **match)

    # -- the API ------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/3.0/ping", self._ping, methods=["GET"]),
            Route("/3.0/lists/{list_id}", self._list, methods=["GET"]),
            Route("/3.0/lists/{list_id}/members/{hash}", self._put_member, methods=["PUT"]),
            Route("/3.0/lists/{list_id}/members/{hash}/tags", self._tags, methods=["POST"]),
            Route("/3.0/lists/{list_id}/segments", self._segments, methods=["GET", "POST"]),
            Route("/3.0/lists/{list_id}/segments/{segment_id:int}", self._segment_batch, methods=["POST"]),
            Route("/3.0/lists/{list_id}/segments/{segment_id:int}/members", self._segment_members, methods=["GET"]),
            Route("/{rest:path}", self._unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]

    def refuse(self, request: Request) -> Response | None:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if not value:
            return self.problem(401, "API Key Missing", "Your request did not include an API key.")
        if scheme.lower() == "bearer" and value == self.api_key:
            return None
        if scheme.lower() == "basic":
            try:
                _user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                password = ""
            if password == self.api_key:
                return None
        return self.error_response(
            401, "Your API key may be invalid, or you've attempted to access the wrong datacenter."
        )

    def _not_found(self) -> Response:
        return self.error_response(404, "The requested resource could not be found.")

    async def _ping(self, request: Request) -> Response:
        return JSONResponse({"health_status": "Everything's Chimpy!"})

    async def _list(self, request: Request) -> Response:
        list_id = request.path_params["list_id"]
        with self._state:
            members = self.audiences.get(list_id)
            if members is None:
                return self._not_found()
            body = {"id": list_id, "web_id": 1, "name": f"Audience {list_id}", "stats": {"member_count": len(members)}}
        fields = request.query_params.get("fields")
        if fields:
            body = {k: v for k, v in body.items() if k in fields.split(",")}
        return JSONResponse(body)

    async def _put_member(self, request: Request) -> Response:
        list_id, member_hash = request.path_params["list_id"], request.path_params["hash"]
        body = await self.json_object(request)
        if body is None:
            return self.error_response(400, "We encountered an unspecified JSON parsing error.")
        email, status = body.get("email_address"), body.get("status_if_new")
        with self._state:
            members = self.audiences.get(list_id)
            if members is None:
                return self._not_found()
            existing = members.get(member_hash)
            if existing is None:
                problem = _new_member_problem(email, status, member_hash, self.reject)
                if problem:
                    return self.error_response(400, problem)
                existing = members[member_hash] = FakeMember(str(email), str(status))
            return JSONResponse(existing.as_json(list_id))

    async def _tags(self, request: Request) -> Response:
        list_id, member_hash = request.path_params["list_id"], request.path_params["hash"]
        body = await self.json_object(request)
        tags = body.get("tags") if body else None
        if not isinstance(tags, list) or not all(_is_tag(t) for t in tags):
            return self.error_response(
                400,
                "The resource submitted could not be validated. tags: each needs a name and status active|inactive.",
            )
        with self._state:
            self.tag_calls[member_hash] = self.tag_calls.get(member_hash, 0) + 1
            member = self.audiences.get(list_id, {}).get(member_hash)
            if member is None:
                return self._not_found()  # unknown audience and non-member look the same
            if member.email in self.reject:
                return self.error_response(400, f"{member.email} cannot be changed in this audience.")
            for tag in tags:
                if tag["status"] == "active":
                    self._segment_for(list_id, tag["name"])
                    member.tags.add(tag["name"])
                else:
                    member.tags.discard(tag["name"])
        return Response(status_code=204)

    async def _segments(self, request: Request) -> Response:
        list_id = request.path_params["list_id"]
        if request.method == "POST":
            return await self._create_segment(request, list_id)
        query = request.query_params
        paging = _paging(query)
        if isinstance(paging, str):
            return self.error_response(400, paging)
        count, offset = paging
        with self._state:
            if list_id not in self.audiences:
                return self._not_found()
            listed = sorted(self.segments.get(list_id, {}).items())
            if query.get("type") not in (None, "static"):
                listed = []  # the fake holds static segments only
            members = self.audiences[list_id].values()
            page = [
                {
                    "id": segment,
                    "name": name,
                    "member_count": sum(1 for m in members if name in m.tags),
                    "type": "static",
                    "list_id": list_id,
                }
                for segment, name in listed[offset : offset + count]
            ]
        return JSONResponse({"segments": page, "list_id": list_id, "total_items": len(listed)})

    async def _create_segment(self, request: Request, list_id: str) -> Response:
        body = await self.json_object(request)
        name = body.get("name") if body else None
        emails = body.get("static_segment", []) if body else None
        if not isinstance(name, str) or not name or not isinstance(emails, list):
            return self.error_response(400, "The resource submitted could not be validated. name: required.")
        with self._state:
            if list_id not in self.audiences:
                return self._not_found()
            if name in self.segments.get(list_id, {}).values():
                return self.error_response(400, f"Sorry, a tag or segment named {name!r} already exists.")
            segment = self._segment_for(list_id, name)
            members = self.audiences[list_id]
            for email in emails:
                if isinstance(email, str) and _hash(email) in members:
                    members[_hash(email)].tags.add(name)
            count = sum(1 for m in members.values() if name in m.tags)
        return JSONResponse({"id": segment, "name": name, "member_count": count, "type": "static", "list_id": list_id})

    async def _segment_batch(self, request: Request) -> Response:
        list_id, segment = request.path_params["list_id"], request.path_params["segment_id"]
        body = await self.json_object(request)
        lists = [(body or {}).get(key, []) for key in ("members_to_add", "members_to_remove")]
        if body is None or not all(_is_email_list(emails) for emails in lists):
            return self.error_response(
                400,
                "The resource submitted could not be validated. members_to_add, members_to_remove: "
                "at most 500 email addresses each.",
            )
        with self._state:
            self.segment_calls[segment] = self.segment_calls.get(segment, 0) + 1
            name = self.segments.get(list_id, {}).get(segment)
            if name is None:
                return self._not_found()
            answer = self._apply_segment(list_id, name, lists[0], lists[1])
        return JSONResponse(answer)

    def _apply_segment(self, list_id: str, name: str, adds: list[str], removes: list[str]) -> dict[str, Any]:
        """Mailchimp's batch answer; errors group addresses by message. Holds _state."""
        members = self.audiences[list_id]
        changed: dict[str, list[dict[str, Any]]] = {"add": [], "remove": []}
        errors: dict[str, list[str]] = {}
        for action, emails in (("add", adds), ("remove", removes)):
            for email in emails:
                member = members.get(_hash(email))
                if member is None:
                    errors.setdefault("Email address is not subscribed to the list", []).append(email)
                elif member.email in self.reject:
                    errors.setdefault("Email address cannot be changed in this audience", []).append(email)
                elif (name in member.tags) != (action == "add"):
                    (member.tags.add if action == "add" else member.tags.discard)(name)
                    changed[action].append(member.as_json(list_id))
        return {
            "members_added": changed["add"],
            "members_removed": changed["remove"],
            "errors": [{"email_addresses": found, "error": error} for error, found in errors.items()],
            "total_added": len(changed["add"]),
            "total_removed": len(changed["remove"]),
            "error_count": sum(len(found) for found in errors.values()),
        }

    async def _segment_members(self, request: Request) -> Response:
        """A page of a static segment's members: the list's members with that tag, by email."""
        list_id, segment = request.path_params["list_id"], request.path_params["segment_id"]
        paging = _paging(request.query_params)
        if isinstance(paging, str):
            return self.error_response(400, paging)
        count, offset = paging
        with self._state:
            name = self.segments.get(list_id, {}).get(segment) if list_id in self.audiences else None
            if name is None:
                return self._not_found()
            tagged = sorted((m for m in self.audiences[list_id].values() if name in m.tags), key=lambda m: m.email)
            page = [m.as_json(list_id) for m in tagged[offset : offset + count]]
        return JSONResponse({"members": page, "total_items": len(tagged)})

    async def _unknown(self, request: Request) -> Response:
        return self._not_found()
