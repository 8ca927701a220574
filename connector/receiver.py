"""POST /webhooks/plain as a raw ASGI app: the one route that runs for every event.

The webhook path is kept short on purpose (docs/architecture.md, "Facts we design for"): check, verify, parse once,
one group-committed store call, answer. A 2xx means "durably stored", never "delivered".
It skips Starlette's request/response objects and middleware stack (profiled at about a
third of the loop's time per webhook); :class:`connector.app.create_app` dispatches to
it before Starlette sees the request, and every other route stays a Starlette route.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from starlette.types import Receive, Scope, Send

from connector.config import PlainSection
from connector.delivery.fairness import ReceiveFirst
from connector.logs import log_context
from connector.mappings import MappingSet
from connector.metrics import Metrics
from connector.plain.changes import ParsedEvent, UnprocessableEvent, parse_event
from connector.plain.signature import ATTEMPT_TIME_HEADER, is_fresh, replay_time, verify
from connector.store.base import Store, StoreUnavailable

log = logging.getLogger("connector.receiver")

WEBHOOK_PATH = "/webhooks/plain"
_JSON_TYPES = ("application/json",)
_STALE = "attempt timestamp missing or outside the replay window"
_READ_HEADERS = {
    name.encode(): name for name in ("content-type", "content-length", "plain-request-signature", ATTEMPT_TIME_HEADER)
}


class MappingSource(Protocol):
    """Where the live mappings come from (a :class:`connector.mappings.MappingWatcher`)."""

    @property
    def current(self) -> MappingSet: ...

    @property
    def last_error(self) -> str | None: ...


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def _read_body(receive: Receive, declared: str | None, limit: int, timeout: float) -> bytes:
    """The raw body, refused early when too large and cut off when it trickles in too slowly."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


#: (HTTP status, result as counted in plain_webhooks_total, JSON answer)
_Reply = tuple[int, str, bytes]


def _reply(status: int, result: str, message: str, **extra: object) -> _Reply:
    return status, result, orjson.dumps({"status": message, **extra})


async def _send(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class WebhookReceiver:
    """The ASGI app of ``POST /webhooks/plain``; ``wake`` is told which targets got new work."""

    def __init__(
        self,
        plain: PlainSection,
        store: Store,
        mappings: MappingSource,
        metrics: Metrics,
        wake: Callable[[Iterable[str]], None],
        receiving: ReceiveFirst | None = None,
    ) -> None:
        self.plain = plain
        self.store = store
        self.mappings = mappings
        self.metrics = metrics
        self.wake = wake
        self.receiving = receiving or ReceiveFirst()
        self._secret = plain.signing_secret.get_secret_value()
        # prometheus_client's labels() takes a lock and builds a key on every call
        self._results: dict[str, Any] = {}
        self._events: dict[tuple[str, str], Any] = {}
        self._commit_seconds = metrics.store_commit_seconds.labels("accept")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        # ASGI header names are lower case; the first of repeated headers wins, as in Starlette.
        # Only the few we read are decoded: this runs for every webhook.
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = _READ_HEADERS.get(name)
            if key is not None and key not in headers:
                headers[key] = value.decode("latin-1")
        self.receiving.enter()
        try:
            status, result, body = await self._receive(headers, receive)
        finally:
            self.receiving.leave()
        self._count(result)
        await _send(send, status, body)
        self.metrics.receive_seconds.observe(time.perf_counter() - started)

    def _count(self, result: str) -> None:
        child = self._results.get(result)
        if child is None:
            child = self._results[result] = self.metrics.webhooks.labels(result)
        child.inc()

    async def _receive(self, headers: dict[str, str], receive: Receive) -> _Reply:
        plain = self.plain
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in _JSON_TYPES:
            return _reply(415, "unsupported_media_type", "unsupported media type", expected="application/json")
        try:
            body = await _read_body(receive, headers.get("content-length"), plain.max_body_bytes,
                                    plain.body_timeout_seconds)  # fmt: skip
        except TimeoutError:
            return _reply(408, "body_timeout", "body not received in time")
        except _TooLarge:
            return _reply(413, "too_large", "body too large", limit_bytes=plain.max_body_bytes)
        except _Disconnected:
            return _reply(400, "client_disconnect", "client disconnected")
        if not verify(body, headers.get("plain-request-signature"), self._secret):
            self.metrics.signature_failures.inc()
            return _reply(401, "bad_signature", "invalid signature")
        now = datetime.now(UTC)
        try:
            event = parse_event(body)
        except UnprocessableEvent as exc:
            attempt = replay_time(exc.attempt_time, headers)  # a stale body is refused, parsed or not
            if not is_fresh(attempt, now, plain.replay_tolerance_seconds):
                return _reply(401, "stale", _STALE)
            return await self._keep_unprocessable(body, exc)
        if not is_fresh(replay_time(event.attempt_time, headers), now, plain.replay_tolerance_seconds):
            return _reply(401, "stale", _STALE)
        with log_context(event_id=event.event_id):
            return await self._accept(event)

    async def _accept(self, event: ParsedEvent) -> _Reply:
        live = self.mappings.current
        routes = live.routes(event.changes)
        started = time.perf_counter()
        try:
            result = await self.store.accept(event, routes, live.policy)
        except StoreUnavailable as exc:
            log.error("cannot store event %s, answering 503 so Plain retries: %s", event.event_id, exc)
            return _reply(503, "store_unavailable", "store unavailable")
        self._commit_seconds.observe(time.perf_counter() - started)
        handling = event.kind if result.status != "duplicate" else "duplicate"
        child = self._events.get((event.event_type, handling))
        if child is None:
            child = self._events[(event.event_type, handling)] = self.metrics.events.labels(event.event_type, handling)
        child.inc()
        if result.work_created:  # lifecycle events make work wherever the customer or group is synced
            self.wake({r.target for rs in routes for r in rs} if event.changes else live.policy.targets())
        return _reply(200, result.status, result.status, event_id=event.event_id, changes=len(event.changes))

    async def _keep_unprocessable(self, body: bytes, exc: UnprocessableEvent) -> _Reply:
        try:
            result = await self.store.accept_unprocessable(body, exc.reason, exc.event_id, exc.event_type)
        except StoreUnavailable as err:
            log.error("cannot store an unprocessable event, answering 503: %s", err)
            return _reply(503, "store_unavailable", "store unavailable")
        log.warning("kept unprocessable event %s (%s): %s", exc.event_id, exc.event_type, exc.reason)
        return _reply(200, result.status, result.status, reason=exc.reason)
