"""A fake Customer.io Track API for the ``customerio`` target, answered as specs/customerio says.

Covered: ``GET /api/v1/accounts/region`` and ``POST /api/v1/segments/{id}/add_customers``
/ ``remove_customers`` with ``{"ids": [1..1000]}`` and ``id_type`` = ``id`` (default),
``email`` or ``cio_id``. Both answer ``200 {}``; ids that match nobody are ignored, as are
manual-segment calls for people the spec says cannot be handled: ``remove_customers``
"requires people to have ``id`` attributes", so a person with an email and no id is never
removed. A segment the workspace lacks, or a data-driven one, is a 400 (the spec lists
no 404 for these calls; the wording is ours).

Auth is HTTP Basic ``site_id:api_key`` (401 otherwise). Errors are
``{"meta": {"errors": ["…"]}}``; a 429 carries ``Retry-After``. ``rate_limit`` is off
by default (the Track API's 1,000/s is "not strictly enforced").
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.testing.fakes.server import FakeServer

__all__ = ["FakeCustomerIo", "Person"]


@dataclass(frozen=True)
class Person:
    cio_id: str
    id: str | None
    email: str | None


def _errors(status: int, *messages: str) -> JSONResponse:
    return JSONResponse({"meta": {"errors": list(messages)}}, status_code=status)


class FakeCustomerIo(FakeServer):
    """People (``people``: cio_id -> :class:`Person`) and manual segments (id -> cio_ids)."""

    def __init__(self, site_id: str, api_key: str, segments: Iterable[int] = (), *, region: str = "us",
                 data_driven: Iterable[int] = (), **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.site_id, self.api_key, self.region = site_id, api_key, region
        self.people: dict[str, Person] = {}
        self.segments: dict[int, set[str]] = {int(s): set() for s in segments}
        self.data_driven = {int(s) for s in data_driven}
        self._state = threading.Lock()

    # -- seeding and reading state ------------------------------------------------------

    def seed_person(self, *, id: str | None = None, email: str | None = None) -> Person:
        with self._state:
            person = Person(f"cio_{len(self.people) + 1:06d}", id, email)
            self.people[person.cio_id] = person
            return person

    def member_emails(self, segment: int) -> set[str]:
        with self._state:
            return {str(self.people[c].email) for c in self.segments[segment] if self.people[c].email}

    # -- vendor hooks -------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v1/accounts/region", self.region_answer, methods=["GET"]),
            Route("/api/v1/segments/{segment_id}/{verb}", self.segment_call, methods=["POST"]),
        ]

    def error_response(self, status: int, message: str) -> Response:
        return _errors(status, message)

    def throttle_response(self, retry_after: float) -> Response:
        response = _errors(429, "Too many requests")
        response.headers["Retry-After"] = str(max(1, int(-(-retry_after // 1))))
        return response

    def _authorised(self, request: Request) -> bool:
        pair = base64.b64encode(f"{self.site_id}:{self.api_key}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {pair}"

    # -- routes -------------------------------------------------------------------------

    async def region_answer(self, request: Request) -> Response:
        if not self._authorised(request):
            return _errors(401, "Unauthorized request")
        host = "https://track-eu.customer.io" if self.region == "eu" else "https://track.customer.io"
        return JSONResponse({"url": host, "region": self.region, "environment_id": 1001})

    async def segment_call(self, request: Request) -> Response:
        if not self._authorised(request):
            return _errors(401, "Unauthorized request")
        verb, raw_segment = request.path_params["verb"], request.path_params["segment_id"]
        id_type = request.query_params.get("id_type", "id")
        if verb not in ("add_customers", "remove_customers"):
            return _errors(404, "not found")
        if not raw_segment.isdigit():
            return _errors(400, "segment_id must be an integer")
        if id_type not in ("id", "email", "cio_id"):
            return _errors(400, f"invalid id_type {id_type!r}")
        try:
            ids = (await request.json())["ids"]
        except (ValueError, KeyError, TypeError):
            return _errors(400, "request body must be an object with ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 1000:
            return _errors(400, "ids must hold 1 to 1000 values")
        segment = int(raw_segment)
        with self._state:
            if segment in self.data_driven or segment not in self.segments:
                return _errors(400, f"segment {segment} is not a manual segment")
            matched = self._match(id_type, {str(i) for i in ids})
            if verb == "add_customers":
                self.segments[segment] |= {p.cio_id for p in matched}
            else:
                self.segments[segment] -= {p.cio_id for p in matched if p.id}
        return JSONResponse({})

    def _match(self, id_type: str, values: set[str]) -> list[Person]:
        def key(person: Person) -> str | None:
            if id_type == "email":
                return person.email.lower() if person.email else None
            return person.id if id_type == "id" else person.cio_id

        wanted = {v.lower() for v in values} if id_type == "email" else values
        return [p for p in self.people.values() if key(p) in wanted]
