"""A fake receiver for the ``webhook`` target: verifies signatures, keeps membership state."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.adapters.webhook import SIGNATURE_HEADER, sign
from connector.testing.fakes.server import FakeServer

__all__ = ["FakeWebhookReceiver"]


class FakeWebhookReceiver(FakeServer):
    """Accepts signed POSTs at ``path``; 401 for a bad signature, 400 for a bad body.

    ``deliveries`` holds every accepted body in arrival order; ``members`` maps a group
    key to the emails currently in it, applying "add"/"remove" as they arrive (what a
    real receiver keeping a list would do). Changes for an email in ``reject`` get 422.
    """

    def __init__(self, secret: str, *, path: str = "/hooks/crm", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.secret = secret
        self.path = path
        self.deliveries: list[dict[str, Any]] = []
        self.members: dict[str, set[str]] = {}
        self.reject: set[str] = set()
        self.bad_signatures = 0

    @property
    def url(self) -> str:
        if self.base_url is None:
            raise RuntimeError("the receiver is not running (use `with fake.serve():`)")
        return self.base_url + self.path

    def routes(self) -> list[BaseRoute]:
        return [Route(self.path, self.receive, methods=["POST"])]

    def error_response(self, status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    def is_member(self, group_key: str, email: str) -> bool:
        return email in self.members.get(group_key, set())

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given, sign(body, self.secret)):
            self.bad_signatures += 1
            return self.error_response(401, "bad signature")
        try:
            change = await request.json()
            group, email, action = change["group_key"], change["email"], change["action"]
        except (ValueError, KeyError, TypeError):
            return self.error_response(400, "not a change")
        if email in self.reject:
            return self.error_response(422, "this receiver refuses that contact")
        self.deliveries.append(change)
        members = self.members.setdefault(group, set())
        if action == "add":
            members.add(email)
        elif action == "remove":
            members.discard(email)
        else:
            return self.error_response(400, f"unknown action {action!r}")
        return JSONResponse({"ok": True})
