"""The base of every in-repo fake CRM: routes you write, trouble you dial in.

A vendor fake subclasses :class:`FakeServer`, keeps its state in plain attributes, and
implements three hooks::

    class FakeIntercom(FakeServer):
        def routes(self):                       # the API, as Starlette routes
            return [Route("/contacts/search", self.search, methods=["POST"])]
        def throttle_response(self, retry_after):  # the vendor's own 429
            reset = math.ceil(time.time() + retry_after)
            return JSONResponse({...}, 429, headers={"X-RateLimit-Reset": str(reset)})
        def error_response(self, status, message):  # the vendor's error body
            return JSONResponse({"type": "error.list", "errors": [{"message": message}]}, status)

Tests then run it with ``with fake.serve() as base_url:`` and arrange trouble:

- scripted, for exact tests: :meth:`~FakeServer.throttle_next`,
  :meth:`~FakeServer.fail_next`, :meth:`~FakeServer.drop_next`, :meth:`~FakeServer.enqueue`;
- random, for soak tests: ``fake.faults = Faults(error_rate=0.05, drop_rate=0.01, …)``;
- vendor limits: ``rate_limit=WindowLimit(100, 10)``, ``max_concurrency=10``.

Everything the fake saw is in ``fake.log`` (:class:`~.log.RequestLog`), with a counter per
cause (``rate_limited`` counts only 429s the client earned by going too fast).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from connector.testing.fakes.limits import ConcurrencyLimit, WindowLimit
from connector.testing.fakes.log import RecordedRequest, RequestLog, _matches
from connector.testing.fakes.runner import serve_app

__all__ = ["DROP", "FakeServer", "Faults", "Message", "Receive", "Scope", "Send"]


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


#: Return this from an :meth:`FakeServer.enqueue` factory to drop the connection.
DROP = _Drop()


class _DroppedConnection(Exception):
    fake_drop = True  # tells the runner's log filter this traceback is expected


@dataclass
class Faults:
    """Random trouble, drawn per request from the fake's seeded RNG.

    Rates are shares of requests (0.05 = 5 %). ``latency`` seconds are added before
    every answer. A drop sends the response head and then closes the connection, which
    the client sees as ``httpx.RemoteProtocolError``.
    """

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    throttle_rate: float = 0.0
    throttle_seconds: float = 1.0
    drop_rate: float = 0.0
    latency: float = 0.0


@dataclass
class _Scripted:
    respond: Callable[[], Response | _Drop]
    cause: str
    remaining: int
    method: str | None
    path: str | None


class FakeServer:
    """A fake HTTP service: Starlette routes + request log + faults + vendor limits.

    The fake runs in a uvicorn thread; tests read ``log`` and the subclass's state from
    their own thread. Keep state changes in route handlers simple (one dict or set
    update): the GIL makes those atomic, which is all a fake needs.
    """

    def __init__(
        self,
        *,
        rate_limit: WindowLimit | None = None,
        max_concurrency: int | None = None,
        faults: Faults | None = None,
        seed: int = 0,
    ) -> None:
        self.log = RequestLog()
        self.faults = faults or Faults()
        self.rate_limit = rate_limit
        self.concurrency = ConcurrencyLimit(max_concurrency) if max_concurrency else None
        self.rng = random.Random(seed)
        #: wall-clock epoch before which a retry would ignore the last 429 we sent
        self.retry_not_before = 0.0
        self.base_url: str | None = None
        self._scripted: list[_Scripted] = []
        self._lock = threading.Lock()
        self._app: Starlette | None = None

    # -- vendor hooks ------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """The fake API. Handlers may be ``async def handler(request) -> Response``."""
        return []

    def throttle_response(self, retry_after: float) -> Response:
        """A 429 telling the client to wait at least ``retry_after`` seconds."""
        headers = {"Retry-After": str(math.ceil(retry_after))}
        return JSONResponse({"message": "Too Many Requests"}, status_code=429, headers=headers)

    def error_response(self, status: int, message: str) -> Response:
        """An error in the vendor's shape, carrying ``message``."""
        return JSONResponse({"message": message}, status_code=status)

    def refuse(self, request: Request) -> Response | None:
        """The vendor's answer to a request its routes must not see (bad credentials,
        a missing version header); None to let it through. Checked before every route,
        after scripted and random trouble; only the headers are read."""
        return None

    def answer_headers(self, path: str) -> dict[str, str]:
        """Headers the vendor puts on every answer to ``path`` (rate-limit counters, usage);
        computed as the answer starts, added only where the answer lacks them."""
        return {}

    @staticmethod
    async def json_body(request: Request) -> Any:
        """The request's decoded JSON body; None when it is not JSON."""
        try:
            return await request.json()
        except ValueError:
            return None

    @classmethod
    async def json_object(cls, request: Request) -> dict[str, Any] | None:
        """The request's JSON object; None when it is not JSON or not an object."""
        body = await cls.json_body(request)
        return body if isinstance(body, dict) else None

    # -- arranging trouble ---------------------------------------------------------------

    def enqueue(
        self,
        respond: Callable[[], Response | _Drop],
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        cause: str = "canned",
    ) -> None:
        """Answer the next ``times`` matching requests with ``respond()`` instead of the route.

        ``path`` matches exactly, or as a prefix when it ends with ``*``. Scripts are used
        in the order they were added.
        """
        with self._lock:
            self._scripted.append(_Scripted(respond, cause, times, method, path))

    def throttle_next(self, retry_after: float, *, times: int = 1, **match: Any) -> None:
        """The next request(s) get the vendor's 429 asking for ``retry_after`` seconds."""
        self.enqueue(lambda: self._throttle(retry_after), times=times, cause="throttled", **match)

    def fail_next(
        self,
        status: int = 503,
        message: str = "temporarily unavailable",
        *,
        times: int = 1,
        **match: Any,
    ) -> None:
        """The next request(s) get ``error_response(status, message)``."""
        self.enqueue(lambda: self.error_response(status, message), times=times, cause="fault", **match)

    def drop_next(self, *, times: int = 1, **match: Any) -> None:
        """The next request(s) lose their connection mid-response."""
        self.enqueue(lambda: DROP, times=times, cause="dropped", **match)

    def reset(self) -> None:
        """Forget requests, scripts and limit windows (state is the subclass's business)."""
        with self._lock:
            self._scripted.clear()
        self.log.clear()
        if self.rate_limit:
            self.rate_limit.reset()
        self.retry_not_before = 0.0

    # -- running -------------------------------------------------------------------------

    @contextlib.contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Run on loopback in a background thread; yield the base URL.

        State (contacts, members, the request log) lives in this object, so serving it
        again on the same ``port`` is a CRM that restarted without losing data.
        """
        with serve_app(self, port=port) as url:
            self.base_url = url
            try:
                yield url
            finally:
                self.base_url = None

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.log.requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._app = Starlette(routes=self.routes())
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        body = await _read_body(receive)
        record = _record(scope, body)
        self.log.append(record)
        entered = self.concurrency.enter() if self.concurrency else True
        try:
            if self.faults.latency:
                await asyncio.sleep(self.faults.latency)
            cause, answer = self._decide(record, entered)
            record.cause = cause
            if cause != "route":
                self.log.count(cause)
            if isinstance(answer, _Drop):
                await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
                raise _DroppedConnection()
            answer = answer or self.refuse(Request(scope))
            sent = _capture_status(send, record, lambda: self.answer_headers(scope["path"]))
            await (answer or self._app)(scope, _replay(body, receive), sent)
        finally:
            if entered and self.concurrency:
                self.concurrency.leave()

    def _decide(self, record: RecordedRequest, entered: bool) -> tuple[str, Response | _Drop | None]:
        script = self._take_script(record)
        if script is not None:
            return script.cause, script.respond()
        if not entered:
            return "concurrency", self._throttle(1.0)
        if self.rate_limit is not None:
            wait = self.rate_limit.admit()
            if wait is not None:
                return "rate_limited", self._throttle(wait)
        faults, rng = self.faults, self.rng
        if faults.drop_rate and rng.random() < faults.drop_rate:
            return "dropped", DROP
        if faults.throttle_rate and rng.random() < faults.throttle_rate:
            return "throttled", self._throttle(faults.throttle_seconds)
        if faults.error_rate and rng.random() < faults.error_rate:
            return "fault", self.error_response(rng.choice(faults.error_statuses), "injected fault")
        return "route", None

    def _take_script(self, record: RecordedRequest) -> _Scripted | None:
        with self._lock:
            for script in self._scripted:
                if _matches(record, script.method, script.path):
                    script.remaining -= 1
                    if script.remaining <= 0:
                        self._scripted.remove(script)
                    return script
        return None

    def _throttle(self, retry_after: float) -> Response:
        self.retry_not_before = max(self.retry_not_before, time.time() + retry_after)
        return self.throttle_response(retry_after)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the already-read body to the app once, then the real channel (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _capture_status(send: Send, record: RecordedRequest, extra: Callable[[], dict[str, str]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            record.status = message["status"]
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            added = [(k.lower().encode(), v.encode()) for k, v in extra().items()]
            message = {**message, "headers": headers + [(k, v) for k, v in added if k not in present]}
        await send(message)

    return wrapped


def _record(scope: Scope, body: bytes) -> RecordedRequest:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        decoded = json.loads(body) if body else None
    except ValueError:
        decoded = None
    return RecordedRequest(
        method=scope["method"],
        path=scope["path"],
        query=dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)),
        headers=headers,
        body=body,
        json=decoded,
        at=time.time(),
    )
