"""A fake ToyCRM on the shared fake-server base."""

from __future__ import annotations

from urllib.parse import unquote

from connector.testing.fakes import FakeServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


class FakeToyCrm(FakeServer):
    def __init__(self, token: str, lists: set[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.token = token
        self.contacts: dict[str, str] = {}  # email -> id
        self.lists: dict[str, set[str]] = {name: set() for name in lists}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/me", self.me),
            Route("/api/contacts/{email}", self.get_contact),
            Route("/api/contacts", self.create_contact, methods=["POST"]),
            Route("/api/lists/{list}/members/{id}", self.membership, methods=["PUT", "DELETE"]),
        ]

    def error_response(self, status: int, message: str) -> Response:
        return JSONResponse({"error": {"code": status, "message": message}}, status_code=status)

    def member_emails(self, list_name: str) -> set[str]:
        ids = self.lists[list_name]
        return {email for email, cid in self.contacts.items() if cid in ids}

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    async def me(self, request: Request) -> Response:
        if not self._authorised(request):
            return self.error_response(401, "bad token")
        return JSONResponse({"ok": True})

    async def get_contact(self, request: Request) -> Response:
        if not self._authorised(request):
            return self.error_response(401, "bad token")
        cid = self.contacts.get(unquote(request.path_params["email"]))
        return JSONResponse({"id": cid}) if cid else self.error_response(404, "no such contact")

    async def create_contact(self, request: Request) -> Response:
        if not self._authorised(request):
            return self.error_response(401, "bad token")
        email = (await request.json())["email"]
        cid = self.contacts.setdefault(email, f"ct_{len(self.contacts) + 1}")
        return JSONResponse({"id": cid}, status_code=201)

    async def membership(self, request: Request) -> Response:
        if not self._authorised(request):
            return self.error_response(401, "bad token")
        members = self.lists.get(request.path_params["list"])
        if members is None:
            return self.error_response(404, "no such list")
        if request.method == "PUT":
            members.add(request.path_params["id"])
        else:
            members.discard(request.path_params["id"])
        return Response(status_code=204)
