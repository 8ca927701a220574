"""The operator's pages: ``/status`` and ``/status/customers``, mounted by ``create_app``.

Server-rendered HTML from Python string templates (every value through ``html.escape``),
no JavaScript needed; the only writes are the dead-letter forms, POSTed with a CSRF token
and answered with a redirect back to the page.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from connector.store.base import Store
from connector.web.access import Access
from connector.web.customers_page import render_customers
from connector.web.status_page import MappingView, render_status

__all__ = ["Access", "operator_routes"]

log = logging.getLogger("connector.web")

#: a form post is a few fields; anything bigger is not ours
_FORM_LIMIT = 4096


async def _form(request: Request) -> dict[str, list[str]] | None:
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        return None
    return parse_qs(body.decode("utf-8", "replace"))


def operator_routes(store: Store, mappings: Any, access: Access, targets: Sequence[str]) -> list[BaseRoute]:
    """``mappings`` is the live mapping source (``current``, ``last_error``, and where it has
    them ``loaded_at``, ``last_refused``, ``refused_at``)."""

    async def status(request: Request) -> Response:
        report = await store.status()
        letters = await store.dead_letters(None, 500)
        events = await store.recent_events(20)
        view = MappingView(
            mappings.current, getattr(mappings, "loaded_at", None), mappings.last_error,
            getattr(mappings, "last_refused", None), getattr(mappings, "refused_at", None),
        )  # fmt: skip
        notice = request.query_params.get("notice")
        html = render_status(report, letters, events, view, targets, access.csrf_token(), notice)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def customers(request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        found = await store.customer_history(query) if query else []
        return HTMLResponse(render_customers(query, found), headers={"Cache-Control": "no-store"})

    async def act(request: Request, replay: bool) -> Response:
        form = await _form(request)
        if form is None or not access.csrf_ok(request, _first(form, "csrf")):
            return PlainTextResponse("forbidden: stale or missing form token; reload the page\n", status_code=403)
        try:
            ids = [int(v) for v in form.get("id", [])]
        except ValueError:
            return PlainTextResponse("bad request: id must be a number\n", status_code=400)
        target = _first(form, "target")
        if not ids and not target:
            return PlainTextResponse("bad request: give id or target\n", status_code=400)
        if replay:
            count = await store.replay_dead_letters(ids or None, target)
            message = f"Replayed: {count} change(s) queued again."
        elif ids:
            count = await store.discard_dead_letters(ids)
            message = f"Discarded {count} dead letter(s)."
        else:
            return PlainTextResponse("bad request: discard takes ids\n", status_code=400)
        log.info("operator: %s", message)
        return RedirectResponse("/status?" + urlencode({"notice": message}) + "#dead-letters", status_code=303)

    async def replay(request: Request) -> Response:
        return await act(request, replay=True)

    async def discard(request: Request) -> Response:
        return await act(request, replay=False)

    return [
        Route("/status", access.guard(status), methods=["GET"]),
        Route("/status/customers", access.guard(customers), methods=["GET"]),
        Route("/status/dead-letters/replay", access.guard(replay), methods=["POST"]),
        Route("/status/dead-letters/discard", access.guard(discard), methods=["POST"]),
    ]


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None
