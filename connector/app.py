"""The HTTP surface: Plain's webhook endpoint, health, readiness and metrics.

The webhook itself is :mod:`connector.receiver`, kept short on purpose (docs/architecture.md,
"Facts we design for").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.routing import Route as HttpRoute
from starlette.types import Receive, Scope, Send

from connector.config import PlainSection
from connector.delivery.fairness import ReceiveFirst
from connector.metrics import Metrics
from connector.receiver import WEBHOOK_PATH, MappingSource, WebhookReceiver
from connector.store.base import Store
from connector.web import Access, operator_routes

__all__ = ["MappingSource", "create_app"]


def _answer(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"status": message, **extra}, status_code=status)


class _App(Starlette):
    """Starlette, except that the webhook goes straight to its raw ASGI app (see
    :mod:`connector.receiver`); other methods on its path still get Starlette's 405."""

    def __init__(self, receiver: WebhookReceiver, routes: list[BaseRoute]) -> None:
        super().__init__(routes=routes)
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == WEBHOOK_PATH:
            await self.receiver(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    plain: PlainSection,
    store: Store,
    mappings: MappingSource,
    metrics: Metrics,
    wake: Callable[[Iterable[str]], None],
    *,
    refresh_gauges: Callable[[], Awaitable[None]] | None = None,
    receiving: ReceiveFirst | None = None,
    admin_token: str | None = None,
    targets: Sequence[str] = (),
) -> Starlette:
    """The ASGI app, built from what it uses: no service object, so no import of the service.

    ``wake`` is told which targets got new work; ``refresh_gauges`` runs before each scrape
    of ``/metrics``; ``receiving`` counts webhooks in flight for delivery to give way to.
    ``admin_token`` guards ``/status*`` and ``/metrics`` (see :mod:`connector.web.access`);
    ``targets`` are the configured names the page lists.
    """
    receiver = WebhookReceiver(plain, store, mappings, metrics, wake, receiving)
    access = Access(admin_token)

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

    return _App(
        receiver,
        [
            HttpRoute(WEBHOOK_PATH, receiver, methods=["POST"]),
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/readyz", readyz, methods=["GET"]),
            HttpRoute("/metrics", access.guard(metrics_endpoint), methods=["GET"]),
            *operator_routes(store, mappings, access, targets),
        ],
    )
