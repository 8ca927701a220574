"""A minimal HTTP adapter to exercise the shared HTTP layer in isolation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar

import httpx
from connector.adapters import (
    Change,
    CrmError,
    HttpAdapter,
    HttpTargetConfig,
    Outcome,
    RateLimit,
    TargetConfig,
    json_body,
)
from connector.adapters.hubspot import HubSpotAdapter, HubSpotConfig
from connector.adapters.intercom import IntercomAdapter, IntercomConfig
from connector.adapters.mailchimp import MailchimpAdapter, MailchimpConfig
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


class SalesforceRules(HttpAdapter):
    """Salesforce's limit signals, as hooks: until the Salesforce adapter exists, the
    proof that a vendor whose rate limit is a 403 plugs into the kit without touching it."""

    type_name: ClassVar[str] = "salesforce-rules"

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        raise NotImplementedError

    def is_transient(self, response: httpx.Response) -> bool:
        return super().is_transient(response) or bool(_limit_errors(response))

    def retry_delay(self, response: httpx.Response) -> float | None:
        delay = super().retry_delay(response)
        if delay is None and any("TotalRequests" in str(e.get("message", "")) for e in _limit_errors(response)):
            return 3600.0
        return delay

    def error_message(self, response: httpx.Response) -> str:
        body = json_body(response)
        first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
        if isinstance(first.get("message"), str):
            return f"{first.get('errorCode')}: {first['message']}"
        return super().error_message(response)


def _limit_errors(response: httpx.Response) -> list[dict[str, Any]]:
    body = json_body(response) if response.status_code == 403 else None
    items = body if isinstance(body, list) else []
    return [e for e in items if isinstance(e, dict) and e.get("errorCode") == "REQUEST_LIMIT_EXCEEDED"]


#: a real adapter per vendor, to judge responses with that vendor's hooks
VENDORS: dict[str, Callable[[], HttpAdapter]] = {
    "hubspot": lambda: HubSpotAdapter("hubspot", HubSpotConfig(type="hubspot", token=TOKEN)),  # type: ignore[arg-type]
    "intercom": lambda: IntercomAdapter("intercom", IntercomConfig(type="intercom", token=TOKEN)),  # type: ignore[arg-type]
    "mailchimp": lambda: MailchimpAdapter(
        "mailchimp",
        MailchimpConfig(type="mailchimp", api_key=TOKEN + "-us1", audience_id="a1"),  # type: ignore[arg-type]
    ),
    "salesforce": lambda: SalesforceRules("salesforce", HttpTargetConfig(type="salesforce")),
}


class VendorProbe(ProbeAdapter):
    """The probe's calls, with a vendor's hooks reading the answers."""

    vendor: HttpAdapter

    def is_transient(self, response: httpx.Response) -> bool:
        return self.vendor.is_transient(response)

    def retry_delay(self, response: httpx.Response) -> float | None:
        return self.vendor.retry_delay(response)

    def error_message(self, response: httpx.Response) -> str:
        return self.vendor.error_message(response)


def make_probe(vendor: str | None = None, **config: Any) -> ProbeAdapter:
    """A probe adapter; with ``vendor`` (a key of VENDORS) it reads answers as that vendor."""
    raw = {"type": "probe", "token": TOKEN, **config}
    if vendor is None:
        return ProbeAdapter("probe", ProbeConfig.model_validate(raw))
    probe = VendorProbe("probe", ProbeConfig.model_validate(raw))
    probe.vendor = VENDORS[vendor]()
    return probe


def with_probe(body: Callable[[ProbeAdapter], Awaitable[T]], vendor: str | None = None, **config: Any) -> T:
    """Run ``body(adapter)`` on virtual time with a started probe adapter."""

    async def main() -> T:
        adapter = make_probe(vendor, **config)
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
