"""A fake of Plain's Core GraphQL API (``POST /graphql/v1``) for backfill and register tests.

Every query is parsed and validated against Plain's published schema (a vendored copy in
``connector/testing/data/plain-schema.graphql``) and executed by graphql-core over
:class:`~.plain_data.PlainData`, so a field the real API lacks fails here as it would
there (400 ``GRAPHQL_VALIDATION_FAILED``; each such query is kept in ``invalid_queries``).

What it enforces, as Plain does:

- ``Authorization: Bearer <api key>``; anything else is 401 ``UNAUTHENTICATED``.
- A per-key fixed-window limit (``rate_limit`` requests a ``window_seconds``; Plain's plans
  allow 450, 600 or 1,000 a minute). Every answer carries ``x-ratelimit-limit``,
  ``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (an ISO time); past the limit the
  answer is 429 with ``errors[0].extensions.code == "RATE_LIMITED"``.
- Relay pages (25 by default, at most 100), cursors that follow the sort order.

For tests: :meth:`FakePlainApi.fail_next` (5xx), :meth:`~FakePlainApi.error_next` (a GraphQL
error with a code), :meth:`~FakePlainApi.throttle_next` (429 for N seconds), ``on_read`` (called
with each root field's name and arguments before it is resolved: change memberships
mid-read there), and ``early_requests``: requests that arrived while the fake had told
the client to wait (after ``remaining: 0`` or a 429, before the reset it announced).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from graphql import GraphQLError, GraphQLSchema, build_schema, execute_sync, parse, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connector.testing.fakes.log import RecordedRequest, RequestLog
from connector.testing.fakes.plain_data import PlainData, fake_error
from connector.testing.fakes.runner import serve_app

__all__ = ["PATH", "FakePlainApi", "plain_schema"]

PATH = "/graphql/v1"
OnRead = Callable[[str, dict[str, Any]], None]


@functools.cache
def plain_schema() -> GraphQLSchema:
    """Plain's Core API schema, built once per process (the SDL is ~280 kB)."""
    sdl = resources.files("connector.testing").joinpath("data/plain-schema.graphql").read_text(encoding="utf-8")
    return build_schema(sdl)


def _iso(at: float) -> str:
    # Rounded up to the millisecond, so a client that waits until the announced time
    # never arrives before the window really turns.
    at = math.ceil(at * 1000) / 1000
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _errors(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers)


class FakePlainApi:
    """Plain's GraphQL API on loopback: ``with fake.serve() as url`` gives ``…/graphql/v1``."""

    def __init__(self, api_key: str, *, rate_limit: int = 1000, window_seconds: float = 60.0) -> None:
        self.api_key = api_key
        self.data = PlainData()
        self.rate_limit = rate_limit
        self.window_seconds = window_seconds
        self.log = RequestLog()
        self.on_read: OnRead | None = None
        #: (query, [error messages]) for every query the schema refused
        self.invalid_queries: list[tuple[str, list[str]]] = []
        #: arrival times of requests sent while the fake had said "wait until reset"
        self.early_requests: list[float] = []
        #: root field names resolved, in order (one entry per field per request)
        self.fields_read: list[str] = []
        self._window_start = 0.0
        self._used = 0
        self._wait_until = 0.0
        self._script: list[Callable[[], JSONResponse]] = []
        self._lock = threading.Lock()
        self._app = Starlette(routes=[Route(PATH, self._graphql, methods=["POST"])])

    # -- arranging trouble ---------------------------------------------------------------

    def fail_next(self, status: int = 503, *, times: int = 1) -> None:
        """The next ``times`` requests get ``status`` (a 5xx is Plain having a bad moment)."""
        self._enqueue(lambda: JSONResponse({"message": "injected fault"}, status_code=status), times)

    def error_next(self, code: str, message: str = "injected error", *, times: int = 1) -> None:
        """The next ``times`` requests get a 200 whose ``errors[0].extensions.code`` is ``code``."""
        self._enqueue(lambda: _errors(200, message, code), times)

    def throttle_next(self, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` requests get a 429 asking the client to wait ``seconds``."""
        self._enqueue(lambda: self._throttled(time.time() + seconds), times)

    def _enqueue(self, respond: Callable[[], JSONResponse], times: int) -> None:
        with self._lock:
            self._script.extend([respond] * times)

    # -- running -------------------------------------------------------------------------

    @contextlib.contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Run on loopback in a background thread; yield the API URL (``http://…/graphql/v1``)."""
        plain_schema()  # build before the first request, not inside its time budget
        with serve_app(self._app, port=port) as base:
            yield base + PATH

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.log.requests

    async def _graphql(self, request: Request) -> JSONResponse:
        body = await request.body()
        record = _record(request, body)
        self.log.append(record)
        response = self._answer(record)
        record.status = response.status_code
        return response

    def _answer(self, record: RecordedRequest) -> JSONResponse:
        if record.headers.get("authorization") != f"Bearer {self.api_key}":
            record.cause = "unauthenticated"
            return _errors(401, "You must be authenticated to do this", "UNAUTHENTICATED")
        with self._lock:
            if record.at < self._wait_until:
                self.early_requests.append(record.at)
                self.log.count("early")
            scripted = self._script.pop(0) if self._script else None
        if scripted is not None:
            record.cause = "canned"
            return scripted()
        admitted, headers = self._admit(record.at)
        if not admitted:
            record.cause = "rate_limited"
            self.log.count("rate_limited")
            return self._throttled(self._window_start + self.window_seconds)
        response = self._execute(record.json)
        response.headers.update(headers)
        return response

    def _admit(self, now: float) -> tuple[bool, dict[str, str]]:
        with self._lock:
            if now >= self._window_start + self.window_seconds:
                self._window_start, self._used = now, 0
            reset = self._window_start + self.window_seconds
            if self._used >= self.rate_limit:
                return False, {}
            self._used += 1
            remaining = self.rate_limit - self._used
            if remaining == 0:
                self._wait_until = max(self._wait_until, reset)
        return True, self._limit_headers(remaining, reset)

    def _limit_headers(self, remaining: int, reset: float) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": _iso(reset),
        }

    def _throttled(self, reset: float) -> JSONResponse:
        with self._lock:
            self._wait_until = max(self._wait_until, reset)
        headers = self._limit_headers(0, reset)
        return _errors(429, "Rate limit exceeded", "RATE_LIMITED", headers)

    def _execute(self, payload: Any) -> JSONResponse:
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return _errors(400, "expected a JSON body with a 'query' string", "BAD_REQUEST")
        query, variables = payload["query"], payload.get("variables")
        try:
            document = parse(query)
        except GraphQLError as exc:
            self.invalid_queries.append((query, [exc.message]))
            return _errors(400, exc.message, "GRAPHQL_PARSE_FAILED")
        problems = validate(plain_schema(), document)
        if problems:
            self.invalid_queries.append((query, [p.message for p in problems]))
            return _errors(400, problems[0].message, "GRAPHQL_VALIDATION_FAILED")
        result = execute_sync(
            plain_schema(),
            document,
            root_value=_Root(self),
            variable_values=variables,
            operation_name=payload.get("operationName"),
        )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        return JSONResponse(body)


#: root fields the fake implements; any other field of Plain's schema is valid but refused
RESOLVED = frozenset(
    {"customerGroups", "customers", "customer", "webhookTargets", "webhookVersions",
     "createWebhookTarget", "updateWebhookTarget", "deleteWebhookTarget"}
)  # fmt: skip


class _Root:
    """Root value: each root field goes through ``on_read`` first, then to the data."""

    def __init__(self, fake: FakePlainApi) -> None:
        self._fake = fake

    def __getattr__(self, name: str) -> Any:
        def resolve(info: Any, **args: Any) -> Any:
            self._fake.fields_read.append(name)
            if name not in RESOLVED:
                raise fake_error(f"the fake Plain API does not implement {name}", "FAKE_UNSUPPORTED")
            resolver = getattr(self._fake.data, f"resolve_{name}")
            if self._fake.on_read is not None:
                self._fake.on_read(name, args)
            return resolver(info, **args)

        return resolve


def _record(request: Request, body: bytes) -> RecordedRequest:
    try:
        decoded = json.loads(body) if body else None
    except ValueError:
        decoded = None
    return RecordedRequest(
        method=request.method,
        path=request.url.path,
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        json=decoded,
        at=time.time(),
    )
