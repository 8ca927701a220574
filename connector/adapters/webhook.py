"""``type: webhook``: POST each applied change, signed, to a URL the operator owns.

The escape hatch for CRMs without an adapter: a small receiver verifies the signature
and does whatever it likes. Delivery is at-least-once and, within a batch, concurrent:
receivers should be idempotent and order by ``event_time``, not by arrival.

Signature: ``X-Plain-CRM-Sync-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw
body bytes with the target's ``secret`` (verify with :func:`sign` and
``hmac.compare_digest``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr, field_validator

from connector.adapters.base import TargetConfig
from connector.adapters.change import Change, Outcome
from connector.adapters.errors import CrmError, OptionsError
from connector.adapters.http import HttpAdapter
from connector.adapters.http_config import HttpTargetConfig, secret_check
from connector.adapters.ratelimit import RateLimit

__all__ = ["SIGNATURE_HEADER", "WebhookAdapter", "WebhookConfig", "sign"]

SIGNATURE_HEADER = "X-Plain-CRM-Sync-Signature"


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookConfig(HttpTargetConfig):
    """``{type: webhook, url: https://…, secret: ${HOOK_SECRET}, headers: {…}}``.

    ``base_url``, if set, replaces the scheme and host of ``url`` (tests, proxies).
    ``headers`` are sent on every call and treated as secrets (they usually carry auth).
    """

    url: str
    secret: SecretStr
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("url must be an http(s) URL")
        if url.userinfo:
            raise ValueError("put credentials in headers:, not in the url")
        return value

    # An unset ${VAR} gives "", and a short secret is guessable.
    _check_secret = secret_check("secret", "secret must be at least 8 characters", min_length=8)


class WebhookAdapter(HttpAdapter):
    type_name: ClassVar[str] = "webhook"
    config_model: ClassVar[type[TargetConfig]] = WebhookConfig
    default_rate_limit: ClassVar[RateLimit] = RateLimit(requests=20, per_seconds=1, max_concurrency=4)

    config: WebhookConfig

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Any plain values (a label, a list name…) are passed through in ``options``."""
        for key, value in options.items():
            if not isinstance(value, (str, int, float, bool)):
                raise OptionsError(f"option {key!r} must be a string, number or boolean")
        return dict(options)

    def vendor_base_url(self) -> str:
        url = httpx.URL(self.config.url)
        return f"{url.scheme}://{url.netloc.decode('ascii')}"

    def auth_headers(self) -> dict[str, str]:
        return dict(self.config.headers)

    def secrets(self) -> list[str]:
        # A token in the URL's query is as secret as one in a header.
        query = [value for _, value in httpx.URL(self.config.url).params.multi_items()]
        return sorted({*super().secrets(), *query}, key=len, reverse=True)

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        # gather keeps the order of its arguments: outcome i belongs to change i.
        return list(await asyncio.gather(*(self.deliver(change) for change in changes)))

    async def deliver(self, change: Change) -> Outcome:
        body = json.dumps(self.payload(change), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.config.secret.get_secret_value()),
        }
        path = httpx.URL(self.config.url).raw_path.decode("ascii")
        try:
            await self.request("POST", path, content=body, headers=headers)
        except CrmError as error:
            return error.outcome
        return Outcome.done()

    def payload(self, change: Change) -> dict[str, Any]:
        return {
            "action": change.action,
            "customer_id": change.customer_id,
            "email": change.email,
            "external_id": change.external_id,
            "full_name": change.full_name,
            "group_id": change.group_id,
            "group_key": change.group_key,
            "group_name": change.group_name,
            "event_id": change.event_id,
            "event_time": change.event_time,
            "target": self.name,
            "options": dict(change.options),
        }
