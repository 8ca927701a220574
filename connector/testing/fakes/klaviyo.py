"""A fake Klaviyo for the ``klaviyo`` target: the calls it makes, answered as specs/klaviyo says.

Covered (revision 2026-07-15): ``GET /api/profiles`` with ``filter=equals(email,"…")`` or
``any(email,[…])`` and ``page[size]`` ≤ 100, ``GET /api/lists/{id}``, ``POST`` /
``DELETE /api/lists/{id}/relationships/profiles`` (≤ 1,000 profiles, 204), and
``POST /api/profile-bulk-import-jobs`` (≤ 10,000 profiles; the job's list relationship
adds them) with ``GET /api/profile-bulk-import-jobs/{id}``. Jobs complete at once unless
``import_delay`` calls are asked to see them ``processing`` first.

Every call needs ``Authorization: Klaviyo-API-Key <key>`` (401 ``not_authenticated``), a
``revision`` header (400), and the key's scopes (403 ``permission_denied``); writes need
the JSON:API content type (415). Errors are JSON:API ``{"errors": [{id, status, code,
title, detail, source}]}``. Limits are per endpoint as the spec's ``x-klaviyo-ratelimit``
gives them: list relationships and bulk imports 10/s burst and 150/min steady, the reads
75/s and 750/min; over a limit is a 429 ``throttled`` with ``Retry-After``.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.testing.fakes.limits import WindowLimit
from connector.testing.fakes.server import FakeServer

__all__ = ["ALL_SCOPES", "FakeKlaviyo"]

ALL_SCOPES = frozenset({"profiles:read", "profiles:write", "lists:read", "lists:write"})
_FILTER = re.compile(r'^(?:equals\(email,"([^"]*)"\)|any\(email,\[((?:"[^"]*",?)*)\]\))$')
_CODES = {400: "invalid", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
          405: "method_not_allowed", 409: "duplicate_profile", 415: "unsupported_media_type",
          429: "throttled"}  # fmt: skip
_JSON_API = "application/vnd.api+json"

Handler = Callable[[Request], Any]


def _errors(status: int, detail: str, title: str | None = None, **source: str) -> JSONResponse:
    error = {"id": str(uuid.uuid4()), "status": status, "code": _CODES.get(status, "error"),
             "title": title or detail.split(".")[0] + ".", "detail": detail, "source": source}  # fmt: skip
    return JSONResponse({"errors": [error]}, status_code=status, media_type=_JSON_API)


class FakeKlaviyo(FakeServer):
    """Profiles (``profiles``: lower-cased email -> id) and lists (``lists``: id -> member ids)."""

    def __init__(self, api_key: str, lists: Iterable[str] = (), *, scopes: Iterable[str] = ALL_SCOPES,
                 limited: bool = True, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.api_key = api_key
        self.scopes = set(scopes)
        self.profiles: dict[str, str] = {}
        self.lists: dict[str, set[str]] = {list_id: set() for list_id in lists}
        self.jobs: dict[str, dict[str, Any]] = {}
        #: emails whose import row fails (Klaviyo refuses the address)
        self.refuse_import: set[str] = set()
        #: how many answers about a new job (its creation included) say "processing"
        self.import_delay = 0
        self.limits: dict[str, tuple[WindowLimit, ...]] = {
            "write": (WindowLimit(10, 1.0), WindowLimit(150, 60.0)),
            "read": (WindowLimit(75, 1.0), WindowLimit(750, 60.0)),
        } if limited else {}  # fmt: skip
        self._state = threading.Lock()

    # -- seeding and reading state ------------------------------------------------------

    def seed_profile(self, email: str) -> str:
        with self._state:
            return self.profiles.setdefault(email.strip().lower(), "01" + uuid.uuid4().hex[:24].upper())

    def member_emails(self, list_id: str) -> set[str]:
        with self._state:
            members = self.lists[list_id]
            return {email for email, pid in self.profiles.items() if pid in members}

    # -- vendor hooks -------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/profiles", self._guard("profiles:read", "read", self.get_profiles), methods=["GET"]),
            Route("/api/lists/{id}", self._guard("lists:read", "read", self.get_list), methods=["GET"]),
            Route("/api/lists/{id}/relationships/profiles", self._guard("lists:write", "write", self.members),
                  methods=["POST", "DELETE"]),
            Route("/api/profile-bulk-import-jobs", self._guard("profiles:write", "write", self.bulk_import),
                  methods=["POST"]),
            Route("/api/profile-bulk-import-jobs/{job_id}", self._guard("profiles:read", "read", self.get_job),
                  methods=["GET"]),
        ]  # fmt: skip

    def error_response(self, status: int, message: str) -> Response:
        return _errors(status, message)

    def throttle_response(self, retry_after: float) -> Response:
        seconds = max(1, int(-(-retry_after // 1)))
        response = _errors(429, f"Request was throttled. Expected available in {seconds} second.",
                           "Request was throttled.")  # fmt: skip
        response.headers["Retry-After"] = str(seconds)
        return response

    def _guard(self, scope: str, limit: str, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if request.headers.get("authorization") != f"Klaviyo-API-Key {self.api_key}":
                return _errors(401, "Missing or invalid private key.", "Authentication credentials were not provided.")
            if not request.headers.get("revision"):
                return _errors(400, "The revision header is required.", "Invalid input.", parameter="revision")
            if scope not in self.scopes:
                return _errors(403, "Your API key is missing required scopes.", "You do not have permission.")
            if request.method != "GET" and request.headers.get("content-type", "").split(";")[0] != _JSON_API:
                return _errors(415, f"Content-Type must be {_JSON_API}.")
            for window in self.limits.get(limit, ()):
                wait = window.admit()
                if wait is not None:
                    self.log.count("rate_limited")
                    return self._throttle(wait)
            return await handler(request)

        return guarded

    # -- routes -------------------------------------------------------------------------

    async def get_profiles(self, request: Request) -> Response:
        size = request.query_params.get("page[size]", "20")
        if not size.isdigit() or not 1 <= int(size) <= 100:
            return _errors(400, "page[size] must be between 1 and 100.", parameter="page[size]")
        text = request.query_params.get("filter")
        match = _FILTER.match(text) if text is not None else None
        if text is not None and not match:
            return _errors(400, "Invalid filter provided.", parameter="filter")
        with self._state:
            if match is None:  # no filter: every profile, one page
                found: list[tuple[str, str | None]] = list(self.profiles.items())
            else:
                wanted = [match.group(1)] if match.group(1) is not None else re.findall(r'"([^"]*)"', match.group(2))
                found = [(e.strip().lower(), self.profiles.get(e.strip().lower())) for e in wanted]
        data = [{"type": "profile", "id": pid, "attributes": {"email": email}, "links": {"self": f"/api/profiles/{pid}/"}}
                for email, pid in found if pid][: int(size)]  # fmt: skip
        return JSONResponse({"data": data, "links": {"self": str(request.url)}},  # no next: one page
                            media_type=_JSON_API)  # fmt: skip

    async def get_list(self, request: Request) -> Response:
        list_id = request.path_params["id"]
        if list_id not in self.lists:
            return _errors(404, f"A list with id {list_id} does not exist.", "Not found.")
        link = {"self": f"https://a.klaviyo.com/api/lists/{list_id}/"}
        attributes = {"name": f"List {list_id}", "created": "2026-01-01T00:00:00+00:00",
                      "updated": "2026-01-01T00:00:00+00:00", "opt_in_process": "single_opt_in"}  # fmt: skip
        data = {"type": "list", "id": list_id, "attributes": attributes, "links": link}
        return JSONResponse({"data": data, "links": link}, media_type=_JSON_API)

    async def members(self, request: Request) -> Response:
        list_id = request.path_params["id"]
        body = await _json(request)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not all(isinstance(d, dict) and d.get("type") == "profile" for d in data):
            return _errors(400, "Invalid input: data must be a list of profile identifiers.", pointer="/data")
        if len(data) > 1000:
            return _errors(400, "This endpoint accepts a maximum of 1000 profiles per call.", pointer="/data")
        with self._state:
            if list_id not in self.lists:
                return _errors(404, f"A list with id {list_id} does not exist.", "Not found.")
            known = set(self.profiles.values())
            for n, item in enumerate(data):
                if item.get("id") not in known:
                    return _errors(400, f"Profile {item.get('id')} does not exist.", pointer=f"/data/{n}/id")
            ids = {str(item["id"]) for item in data}
            if request.method == "POST":
                self.lists[list_id] |= ids
            else:
                self.lists[list_id] -= ids
        return Response(status_code=204)

    async def bulk_import(self, request: Request) -> Response:
        body = await _json(request)
        try:
            job_data = body["data"]
            rows = job_data["attributes"]["profiles"]["data"]
            lists = [str(item["id"]) for item in job_data.get("relationships", {}).get("lists", {}).get("data", [])]
            emails = [str(row["attributes"]["email"]).strip().lower() for row in rows]
            assert job_data["type"] == "profile-bulk-import-job"
        except (KeyError, TypeError, AssertionError):
            return _errors(400, "Invalid input: not a profile bulk import job.", pointer="/data")
        if len(rows) > 10_000:
            return _errors(400, "A job accepts at most 10,000 profiles.", pointer="/data/attributes/profiles/data")
        with self._state:
            missing = [list_id for list_id in lists if list_id not in self.lists]
            if missing:
                return _errors(404, f"A list with id {missing[0]} does not exist.", "Not found.")
            accepted = [e for e in emails if e not in self.refuse_import]
            for email in accepted:
                pid = self.profiles.setdefault(email, "01" + uuid.uuid4().hex[:24].upper())
                for list_id in lists:
                    self.lists[list_id].add(pid)
            job_id = uuid.uuid4().hex
            self.jobs[job_id] = {"total": len(emails), "failed": len(emails) - len(accepted),
                                 "reads_left": self.import_delay}  # fmt: skip
        return JSONResponse(self._job(job_id), status_code=202, media_type=_JSON_API)

    async def get_job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if job_id not in self.jobs:
            return _errors(404, f"A job with id {job_id} does not exist.", "Not found.")
        self.jobs[job_id]["reads_left"] -= 1
        return JSONResponse(self._job(job_id), media_type=_JSON_API)

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        status = "processing" if job["reads_left"] > 0 else "complete"
        attributes = {"status": status, "created_at": "2026-01-01T00:00:00+00:00", "total_count": job["total"],
                      "completed_count": job["total"] - job["failed"], "failed_count": job["failed"]}  # fmt: skip
        self_link = f"https://a.klaviyo.com/api/profile-bulk-import-jobs/{job_id}/"
        return {"data": {"type": "profile-bulk-import-job", "id": job_id, "attributes": attributes,
                         "links": {"self": self_link}}, "links": {"self": self_link}}  # fmt: skip


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None
