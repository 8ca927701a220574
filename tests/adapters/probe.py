"""A minimal HTTP adapter to exercise the shared HTTP layer in isolation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar

import httpx
from connector.adapters.base import Change, Outcome, TargetConfig
from connector.adapters.http import CrmError, HttpAdapter, HttpTargetConfig
from connector.adapters.ratelimit import RateLimit
from connector.testing.fakes.clock import run_virtual

TOKEN = "pat-na1-0123456789abcdef"
BASE = "https://api.crm.test"
T = TypeVar("T")


class ProbeConfig(HttpTargetConfig):
    token: str


class ProbeAdapter(HttpAdapter):
    type_name: ClassVar[str] = "probe"
    config_model: ClassVar[type[TargetConfig]] = ProbeConfig
    default_base_url: ClassVar[str] = BASE
    default_rate_limit: ClassVar[RateLimit] = RateLimit(requests=100, per_seconds=10, max_concurrency=4)

    config: ProbeConfig

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token}"}

    def default_headers(self) -> dict[str, str]:
        return {"Probe-Version": "7"}

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        try:
            await self.request("PUT", "/lists/1/members", json=[c.email for c in changes])
        except CrmError as error:
            return [error.outcome] * len(changes)
        return [Outcome.done()] * len(changes)


def make_probe(**config: Any) -> ProbeAdapter:
    raw = {"type": "probe", "token": TOKEN, **config}
    return ProbeAdapter("probe", ProbeConfig.model_validate(raw))


def with_probe(body: Callable[[ProbeAdapter], Awaitable[T]], **config: Any) -> T:
    """Run ``body(adapter)`` on virtual time with a started probe adapter."""

    async def main() -> T:
        adapter = make_probe(**config)
        await adapter.start()
        try:
            return await body(adapter)
        finally:
            await adapter.close()

    return run_virtual(main())


def vnow() -> float:
    return asyncio.get_running_loop().time()


async def outcome_of(adapter: ProbeAdapter, method: str = "GET", path: str = "/things") -> Any:
    """The response, or the CrmError the call raised."""
    try:
        return await adapter.request(method, path)
    except CrmError as error:
        return error


def reply(status: int, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, **kwargs)
