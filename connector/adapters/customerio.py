"""``type: customerio``: a Plain customer group as a Customer.io manual segment.

Track API only (docs/targets/customerio.md), one call per 1,000 people and action:
``POST /api/v1/segments/{id}/add_customers`` and ``…/remove_customers`` with
``{"ids": [...]}``. Both are idempotent; both answer ``{}`` whatever happened, so
Customer.io never says whom it did not know (such ids are ignored).

Who is sent, per the spec (specs/customerio): both calls take ``id_type`` = ``id``,
``email`` or ``cio_id``, but ``remove_customers`` "requires people to have ``id``
attributes": a person known to Customer.io by email alone cannot be removed through the
API. So with ``identify_by: email`` (default) joiners are added by email, and leavers are
removed by ``id``: the Plain customer's external id, which must be their Customer.io id.
A leaver without an external id is ``failed`` with that reason. ``identify_by:
external_id`` uses the external id for both (changes without one are skipped).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr, field_validator

from connector.adapters.base import Change, OptionsError, Outcome, TargetConfig
from connector.adapters.http import CrmError, HttpAdapter, HttpTargetConfig
from connector.adapters.ratelimit import RateLimit

__all__ = ["REGION_HOSTS", "CustomerIoAdapter", "CustomerIoConfig"]

logger = logging.getLogger(__name__)

#: the Track API's regional hosts; credentials work only in their workspace's region
REGION_HOSTS: dict[str, str] = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}
_IDS_PER_CALL = 1000  # "You are limited to 1000 customer IDs per request."


class CustomerIoConfig(HttpTargetConfig):
    """``{type: customerio, site_id: …, api_key: ${CUSTOMERIO_API_KEY}, region: eu}``."""

    site_id: str
    api_key: SecretStr
    region: Literal["us", "eu"] = "us"
    identify_by: Literal["email", "external_id"] = "email"

    @field_validator("site_id")
    @classmethod
    def _check_site(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("site_id is empty (is ${CUSTOMERIO_SITE_ID} set?)")
        return value.strip()

    @field_validator("api_key")
    @classmethod
    def _check_key(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().strip()) < 8:
            raise ValueError("api_key is empty or too short (is ${CUSTOMERIO_API_KEY} set?)")
        return value


class CustomerIoAdapter(HttpAdapter):
    """Adds and removes people in Customer.io manual segments."""

    type_name: ClassVar[str] = "customerio"
    config_model: ClassVar[type[TargetConfig]] = CustomerIoConfig
    # The Track API allows about 1,000 requests a second per workspace, loosely enforced;
    # with 1,000 ids a call we need a handful, so stay far below it.
    default_rate_limit: ClassVar[RateLimit] = RateLimit(requests=100, per_seconds=1.0, max_concurrency=4)
    max_batch: ClassVar[int] = _IDS_PER_CALL

    config: CustomerIoConfig

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        if set(options) != {"segment"}:
            raise OptionsError("customerio needs exactly one option: segment: <manual segment id>")
        segment = options["segment"]
        if isinstance(segment, bool) or not re.fullmatch(r"[1-9][0-9]{0,9}", str(segment)):
            raise OptionsError("segment must be the number of a manual segment (Segments > segment > Usage)")
        return {"segment": str(segment)}

    def vendor_base_url(self) -> str:
        return REGION_HOSTS[self.config.region]

    def auth_headers(self) -> dict[str, str]:
        pair = f"{self.config.site_id}:{self.config.api_key.get_secret_value()}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}

    # -- vendor rules (hooks of the adapter kit) --------------------------------------

    def retry_delay(self, response: httpx.Response) -> float | None:
        header = response.headers.get("retry-after", "").strip()
        return float(header) if re.fullmatch(r"\d+(\.\d+)?", header) else None

    def error_message(self, response: httpx.Response) -> str:
        """``{"meta": {"errors": ["…"]}}`` joined; 401 answers carry no body."""
        try:
            meta = response.json().get("meta")
        except (ValueError, AttributeError):
            meta = None
        errors = meta.get("errors") if isinstance(meta, dict) else None
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)[:300]
        return " ".join(response.text.split())[:300] or response.reason_phrase

    # -- check --online ---------------------------------------------------------------

    async def check_online(self, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
        """Credentials work in the configured region (``GET /api/v1/accounts/region``).
        The Track API cannot read segments, so segment ids are not checked."""
        try:
            response = await self.request("GET", "/api/v1/accounts/region")
        except CrmError as error:
            hint = " (check site_id and api_key: a Track API key)" if error.status == 401 else ""
            return [error.reason + hint]
        try:
            body = response.json()
        except ValueError:
            body = None
        region = body.get("region") if isinstance(body, dict) else None
        if not self.config.base_url and isinstance(region, str) and region.lower() != self.config.region:
            return [f"the workspace is in region {region.lower()!r} but region is {self.config.region!r}"]
        return []

    # -- apply ------------------------------------------------------------------------

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(changes)
        calls: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        for index, change in enumerate(changes):
            picked = self._identifier(change)
            if isinstance(picked, Outcome):
                outcomes[index] = picked
                continue
            id_type, value = picked
            calls.setdefault((str(change.options["segment"]), change.action, id_type), []).append((index, value))
        for (segment, action, id_type), items in calls.items():
            for start in range(0, len(items), _IDS_PER_CALL):
                chunk = items[start : start + _IDS_PER_CALL]
                outcome = await self._call(segment, action, id_type, sorted({value for _, value in chunk}))
                for index, _ in chunk:
                    outcomes[index] = outcome
        return [o if o is not None else Outcome.retry("no outcome") for o in outcomes]

    def _identifier(self, change: Change) -> tuple[str, str] | Outcome:
        """``(id_type, value)`` for this change, or its outcome if it cannot be sent."""
        external = (change.external_id or "").strip()
        if self.config.identify_by == "external_id" or change.action == "remove":
            if external:
                return "id", external
            if self.config.identify_by == "external_id":
                return Outcome.skipped("customer has no external id (identify_by: external_id)")
            return Outcome.failed(
                f"{self.name}: Customer.io removes people from a segment only by id, and this customer "
                "has no external id in Plain (see docs/targets/customerio.md)"
            )
        email = (change.email or "").strip()
        if email:
            return "email", email
        return ("id", external) if external else Outcome.skipped("customer has no email and no external id")

    async def _call(self, segment: str, action: str, id_type: str, ids: list[str]) -> Outcome:
        verb = "add_customers" if action == "add" else "remove_customers"
        try:
            await self.request(
                "POST", f"/api/v1/segments/{segment}/{verb}", params={"id_type": id_type}, json={"ids": ids}
            )
        except CrmError as error:
            return error.outcome
        return Outcome.done()
