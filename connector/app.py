"""The HTTP surface: Plain's webhook endpoint, health, readiness and metrics.

The webhook path is kept short on purpose (DESIGN.md §5): check, verify, parse once,
one group-committed store call, answer. A 2xx means "durably stored", never "delivered".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from connector.config import PlainSection
from connector.logs import log_context
from connector.mappings import MappingSet
from connector.metrics import Metrics
from connector.plain.changes import ParsedEvent, UnprocessableEvent, parse_event
from connector.plain.signature import is_fresh, replay_time, verify
from connector.store.base import Store, StoreUnavailable
from connector.web import Access, operator_routes

log = logging.getLogger("connector.receiver")

_JSON_TYPES = ("application/json",)


class MappingSource(Protocol):
    """Where the live mappings come from (a :class:`connector.mappings.MappingWatcher`)."""

    @property
    def current(self) -> MappingSet: ...

    @property
    def last_error(self) -> str | None: ...


def _answer(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"status": message, **extra}, status_code=status)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The raw body, refused early when too large and cut off when it trickles in too slowly."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    plain: PlainSection,
    store: Store,
    mappings: MappingSource,
    metrics: Metrics,
    wake: Callable[[Iterable[str]], None],
    *,
    refresh_gauges: Callable[[], Awaitable[None]] | None = None,
    admin_token: str | None = None,
    targets: Sequence[str] = (),
) -> Starlette:
    """The ASGI app, built from what it uses: no service object, so no import of the service.

    ``wake`` is told which targets got new work; ``refresh_gauges`` runs before each scrape
    of ``/metrics``. ``admin_token`` guards ``/status*`` and ``/metrics`` (see
    :mod:`connector.web.access`); ``targets`` are the configured names the page lists.
    """
    secret = plain.signing_secret.get_secret_value()
    access = Access(admin_token)

    async def webhook(request: Request) -> Response:
        started = time.perf_counter()
        response = await _receive(request)
        metrics.receive_seconds.observe(time.perf_counter() - started)
        return response

    async def _receive(request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in _JSON_TYPES:
            metrics.webhooks.labels("unsupported_media_type").inc()
            return _answer(415, "unsupported media type", expected="application/json")
        try:
            body = await _read_body(request, plain.max_body_bytes, plain.body_timeout_seconds)
        except TimeoutError:
            metrics.webhooks.labels("body_timeout").inc()
            return _answer(408, "body not received in time")
        except _TooLarge:
            metrics.webhooks.labels("too_large").inc()
            return _answer(413, "body too large", limit_bytes=plain.max_body_bytes)
        except ClientDisconnect:
            metrics.webhooks.labels("client_disconnect").inc()
            return _answer(400, "client disconnected")
        if not verify(body, request.headers.get("plain-request-signature"), secret):
            metrics.webhooks.labels("bad_signature").inc()
            metrics.signature_failures.inc()
            return _answer(401, "invalid signature")
        now = datetime.now(UTC)
        try:
            event = parse_event(body)
        except UnprocessableEvent as exc:
            attempt = replay_time(exc.attempt_time, request.headers)  # a stale body is refused, parsed or not
            if not is_fresh(attempt, now, plain.replay_tolerance_seconds):
                metrics.webhooks.labels("stale").inc()
                return _answer(401, "attempt timestamp missing or outside the replay window")
            return await _keep_unprocessable(body, exc)
        if not is_fresh(replay_time(event.attempt_time, request.headers), now, plain.replay_tolerance_seconds):
            metrics.webhooks.labels("stale").inc()
            return _answer(401, "attempt timestamp missing or outside the replay window")
        with log_context(event_id=event.event_id):
            return await _store_event(event)

    async def _store_event(event: ParsedEvent) -> Response:
        live = mappings.current
        routes = live.routes(event.changes)
        started = time.perf_counter()
        try:
            result = await store.accept(event, routes, live.policy)
            metrics.store_commit_seconds.labels("accept").observe(time.perf_counter() - started)
        except StoreUnavailable as exc:
            log.error("cannot store event %s, answering 503 so Plain retries: %s", event.event_id, exc)
            metrics.webhooks.labels("store_unavailable").inc()
            return _answer(503, "store unavailable")
        metrics.webhooks.labels(result.status).inc()
        metrics.events.labels(event.event_type, event.kind if result.status != "duplicate" else "duplicate").inc()
        if result.work_created:  # lifecycle events make work wherever the customer or group is synced
            wake({r.target for rs in routes for r in rs} if event.changes else live.policy.targets())
        return _answer(200, result.status, event_id=event.event_id, changes=len(event.changes))

    async def _keep_unprocessable(body: bytes, exc: UnprocessableEvent) -> Response:
        try:
            result = await store.accept_unprocessable(body, exc.reason, exc.event_id, exc.event_type)
        except StoreUnavailable as err:
            log.error("cannot store an unprocessable event, answering 503: %s", err)
            metrics.webhooks.labels("store_unavailable").inc()
            return _answer(503, "store unavailable")
        log.warning("kept unprocessable event %s (%s): %s", exc.event_id, exc.event_type, exc.reason)
        metrics.webhooks.labels(result.status).inc()
        return _answer(200, result.status, reason=exc.reason)

    async def healthz(request: Request) -> Response:
        return _answer(200, "ok")

    async def readyz(request: Request) -> Response:
        store_ok = await store.ping()
        body = {
            "store": "ok" if store_ok else "unreachable",
            "mappings": "loaded",
            "mapping_groups": len(mappings.current.by_group),
            "mapping_error": mappings.last_error,
        }
        return JSONResponse(
            {"status": "ready" if store_ok else "not ready", **body}, status_code=200 if store_ok else 503
        )

    async def metrics_endpoint(request: Request) -> Response:
        if refresh_gauges is not None:
            await refresh_gauges()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            HttpRoute("/webhooks/plain", webhook, methods=["POST"]),
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/readyz", readyz, methods=["GET"]),
            HttpRoute("/metrics", access.guard(metrics_endpoint), methods=["GET"]),
            *operator_routes(store, mappings, access, targets),
        ]
    )
