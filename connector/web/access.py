"""Who may see ``/status*`` and ``/metrics``, and the CSRF token of the page's forms.

With ``server.admin_token`` set: a bearer header, or basic auth with any user name and the
token as password (so a browser can log in: a refusal asks for basic auth). Without one,
only loopback clients; behind a reverse proxy every client looks local, so set a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

Handler = Callable[[Request], Awaitable[Response]]

_LOOPBACK = ("127.", "::1", "::ffff:127.")


def _presented(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    return host == "localhost" or host.startswith(_LOOPBACK)


class Access:
    """Guards handlers; holds the per-process key the forms' CSRF token derives from."""

    def __init__(self, admin_token: str | None) -> None:
        self._token = admin_token or None
        self._key = secrets.token_bytes(32)

    def allowed(self, request: Request) -> Response | None:
        """None if the request may pass, else the refusal to send."""
        if self._token is None:
            if is_loopback(request):
                return None
            return PlainTextResponse(
                "forbidden: without server.admin_token this page answers loopback clients only\n", status_code=403
            )
        given = _presented(request)
        if given is not None and hmac.compare_digest(given.encode(), self._token.encode()):
            return None
        return PlainTextResponse(
            "unauthorized: give server.admin_token as a bearer token or as the basic-auth password\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="plain-crm-sync", charset="UTF-8"'},
        )

    def guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            refusal = self.allowed(request)
            return refusal if refusal is not None else await handler(request)

        return guarded

    def csrf_token(self) -> str:
        return hmac.new(self._key, b"status-forms", hashlib.sha256).hexdigest()

    def csrf_ok(self, request: Request, token: str | None) -> bool:
        """The form's token is ours, and a browser that names the page's origin names ours."""
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
            return False
        return token is not None and hmac.compare_digest(token, self.csrf_token())
