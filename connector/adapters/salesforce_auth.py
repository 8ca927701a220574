"""OAuth 2.0 for the Salesforce adapter: the token request and the one current session.

Client-credentials flow (``client_id`` + ``client_secret``, the connected app's run-as
user) or refresh-token flow (``refresh_token``). The token answer's ``instance_url`` is the
API host. A 401 gets one fresh token, shared by every call that saw the stale one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

__all__ = ["Session", "Sessions", "session_from", "token_form", "token_hint"]


@dataclass(frozen=True)
class Session:
    access_token: str
    instance_url: str


def token_form(client_id: str, client_secret: SecretStr | None, refresh_token: SecretStr | None) -> dict[str, str]:
    """The form of ``POST /services/oauth2/token`` for the configured flow."""
    form = {"grant_type": "refresh_token" if refresh_token else "client_credentials", "client_id": client_id}
    if refresh_token:
        form["refresh_token"] = refresh_token.get_secret_value()
    if client_secret:
        form["client_secret"] = client_secret.get_secret_value()
    return form


def token_hint(refresh_token: SecretStr | None) -> str:
    """What to check when Salesforce refuses the credentials of this flow."""
    if refresh_token:
        return "refresh_token"
    return "client_id/client_secret and the connected app's client credentials flow (run-as user)"


def session_from(body: Any, login_url: str) -> Session | None:
    """The session a token answer grants; None if it grants none."""
    if not isinstance(body, dict) or "access_token" not in body:
        return None
    return Session(str(body["access_token"]), str(body.get("instance_url") or login_url).rstrip("/"))


class Sessions:
    """The current session: fetched on first use, renewed once however many calls saw it fail."""

    def __init__(self, fetch: Callable[[], Awaitable[Session]]) -> None:
        self.session: Session | None = None
        self._fetch = fetch
        self._lock = asyncio.Lock()

    async def current(self) -> Session:
        async with self._lock:
            if self.session is None:
                self.session = await self._fetch()
            return self.session

    async def renew(self, stale: Session) -> None:
        async with self._lock:
            if self.session is stale:  # many 401s at once: one new token
                self.session = await self._fetch()
