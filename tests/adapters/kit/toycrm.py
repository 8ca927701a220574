"""ToyCRM: a complete adapter in one module (the example in docs/adapters.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from connector.adapters import (
    NO_EMAIL,
    Change,
    CrmError,
    HttpAdapter,
    HttpTargetConfig,
    OptionsError,
    Outcome,
    RateLimit,
    has_email,
)


class ToyCrmConfig(HttpTargetConfig):
    token: str
    create_missing_contacts: bool = False


class ToyCrmAdapter(HttpAdapter):
    type_name = "toycrm"
    config_model = ToyCrmConfig
    default_base_url = "https://api.toycrm.example"
    default_rate_limit = RateLimit(requests=50, per_seconds=10, max_concurrency=4)

    config: ToyCrmConfig

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        if set(options) != {"list"} or not isinstance(options["list"], str):
            raise OptionsError("toycrm needs exactly one option: list: <list id>")
        return dict(options)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token}"}

    async def check_online(self, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
        try:
            await self.request("GET", "/api/me")
        except CrmError as error:
            return [error.reason]
        return []

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        # One call per change; gather keeps the order, the limiter keeps the pace.
        return list(await asyncio.gather(*(self._apply_one(c) for c in changes)))

    async def _apply_one(self, change: Change) -> Outcome:
        if not has_email(change):
            return Outcome.skipped(NO_EMAIL)
        try:
            contact_id = await self._contact_id(change.email)
            if contact_id is None:
                return Outcome.skipped("not in ToyCRM and create_missing_contacts is off")
            method = "PUT" if change.action == "add" else "DELETE"  # both idempotent
            await self.request(method, f"/api/lists/{change.options['list']}/members/{contact_id}")
        except CrmError as error:
            return error.outcome
        return Outcome.done()

    async def _contact_id(self, email: str) -> str | None:
        found = await self.request("GET", f"/api/contacts/{quote(email)}", accept={404})
        if found.status_code == 200:
            return str(found.json()["id"])
        if not self.config.create_missing_contacts:
            return None
        created = await self.request("POST", "/api/contacts", json={"email": email})
        return str(created.json()["id"])
