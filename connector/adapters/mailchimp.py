"""``type: mailchimp``: a Plain group becomes a tag on members of one Mailchimp audience.

Mailchimp's tag call is declarative (``{"name", "status": "active"|"inactive"}``, 204), so
sending it again is harmless, which is what at-least-once delivery needs. One call carries
every tag change of one member, so a customer joining three groups costs one call.

A person who is not in the audience is not created unless the operator says so
(``create_missing_contacts: true``) *and* says with which status (``status_if_new``):
adding someone to a marketing audience is a consent decision this service must never make
on its own. Mailchimp allows 10 simultaneous connections per account, and that, not a
request rate, is the limit that matters (docs/targets/mailchimp.md).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr, field_validator, model_validator

from connector.adapters.base import TargetConfig
from connector.adapters.change import Change, Outcome
from connector.adapters.errors import CrmError
from connector.adapters.http import HttpAdapter, json_object
from connector.adapters.http_config import HttpTargetConfig, secret_check
from connector.adapters.ledger import Ledger
from connector.adapters.options import tag_option
from connector.adapters.ratelimit import RateLimit
from connector.redact import mask_email

__all__ = ["MAX_CONNECTIONS", "MailchimpAdapter", "MailchimpConfig", "data_centre", "subscriber_hash"]

#: Mailchimp's documented limit of simultaneous connections per account
MAX_CONNECTIONS = 10

StatusIfNew = Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional"]

_DC = re.compile(r"-([a-z]{2,}[0-9]+)$")
_AUDIENCE_ID = re.compile(r"^[A-Za-z0-9]+$")
_RECHECK_MISSING_SECONDS = 60.0


def data_centre(api_key: str) -> str | None:
    """``us21`` for ``…-us21``; None if the key carries no data centre."""
    found = _DC.search(api_key.strip())
    return found.group(1) if found else None


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address (not a security use)."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


class MailchimpConfig(HttpTargetConfig):
    """``{type: mailchimp, api_key: ${MAILCHIMP_API_KEY}, audience_id: abc123, …}``."""

    api_key: SecretStr
    audience_id: str
    create_missing_contacts: bool = False
    status_if_new: StatusIfNew | None = None

    _key_not_empty = secret_check("api_key", "api_key is empty (is the environment variable set?)")

    @field_validator("audience_id")
    @classmethod
    def _audience_id_shape(cls, value: str) -> str:
        if not _AUDIENCE_ID.match(value):
            raise ValueError(
                "audience_id must be the audience's id, letters and digits only "
                "(Audience → Settings → Audience name and defaults)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MailchimpConfig:
        # Messages never quote the key: config errors are printed and logged.
        if self.base_url is None and data_centre(self.api_key.get_secret_value()) is None:
            raise ValueError(
                "api_key must end in its data centre, like '…-us21' (the part after "
                "the last '-' picks https://us21.api.mailchimp.com); or set base_url"
            )
        if self.create_missing_contacts and self.status_if_new is None:
            raise ValueError(
                "create_missing_contacts: true needs status_if_new (transactional, "
                "subscribed, pending, unsubscribed or cleaned); there is no default "
                "because it decides whether new people get marketing email"
            )
        limit = self.rate_limit
        if limit and "max_concurrency" in limit.model_fields_set and limit.max_concurrency > MAX_CONNECTIONS:
            raise ValueError(
                f"rate_limit.max_concurrency must be at most {MAX_CONNECTIONS}: "
                "Mailchimp refuses more simultaneous connections per account"
            )
        return self


class MailchimpAdapter(HttpAdapter):
    """Tags members of one audience; see the module docstring and docs/targets/mailchimp.md."""

    type_name: ClassVar[str] = "mailchimp"
    config_model: ClassVar[type[TargetConfig]] = MailchimpConfig
    # No request quota is documented, only the connection cap; the rate is a safety net.
    default_rate_limit: ClassVar[RateLimit] = RateLimit(requests=100, per_seconds=1, max_concurrency=MAX_CONNECTIONS)

    config: MailchimpConfig

    def __init__(self, name: str, config: TargetConfig, **kwargs: Any) -> None:
        super().__init__(name, config, **kwargs)
        # Confirmed once is enough; "missing" is re-checked after a while, as an operator
        # may create it, but not once per member of a batch.
        self._audience_seen = False
        self._audience_missing_at = float("-inf")
        self._audience_lock = asyncio.Lock()

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        return {"tag": tag_option(cls.type_name, options, trim=True)}

    def vendor_base_url(self) -> str:
        return f"https://{data_centre(self.config.api_key.get_secret_value())}.api.mailchimp.com"

    def auth_headers(self) -> dict[str, str]:
        # HTTP Basic with any user name and the key as the password, as Mailchimp documents.
        pair = f"plain-crm-sync:{self.config.api_key.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}

    def error_message(self, response: httpx.Response) -> str:
        """Mailchimp's Problem Detail documents: ``{title}: {detail}``."""
        body = json_object(response) or {}
        title, detail = body.get("title"), body.get("detail")
        if isinstance(title, str) and isinstance(detail, str) and title and detail:
            return f"{title}: {detail}"
        return super().error_message(response)

    @property
    def _audience(self) -> str:
        return self.config.audience_id

    # -- check --------------------------------------------------------------------------

    async def check_online(self, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
        """The key works (``/ping``) and the audience exists. Tags need no check: Mailchimp
        creates a tag the first time it is set active."""
        try:
            await self.request("GET", "/3.0/ping")
        except CrmError as error:
            return [f"{error.reason} (check api_key and that base_url/data centre match it)"]
        try:
            if not await self._audience_exists():
                return [self._no_audience()]
        except CrmError as error:
            return [error.reason]
        return []

    async def _audience_exists(self) -> bool:
        async with self._audience_lock:  # many members hitting 404 at once: one lookup
            if self._audience_seen:
                return True
            if time.monotonic() - self._audience_missing_at < _RECHECK_MISSING_SECONDS:
                return False
            found = await self.request(
                "GET", f"/3.0/lists/{self._audience}", params={"fields": "id,name"}, accept={404}
            )
            self._audience_seen = found.status_code != 404
            if not self._audience_seen:
                self._audience_missing_at = time.monotonic()
            return self._audience_seen

    def _no_audience(self) -> str:
        return f"{self.name}: audience {self._audience!r} does not exist in this Mailchimp account (check audience_id)"

    # -- apply --------------------------------------------------------------------------

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        """One tags call per member (all of that member's changes); members run concurrently."""
        batch = Ledger(self.name, changes)
        members: dict[str, list[int]] = {}
        for index in batch.skip_without_email():
            members.setdefault(subscriber_hash(str(changes[index].email)), []).append(index)
        results = await asyncio.gather(
            *(self._apply_member(h, [changes[i] for i in idx]) for h, idx in members.items())
        )
        for indexes, member_outcomes in zip(members.values(), results, strict=False):
            for index, outcome in zip(indexes, member_outcomes, strict=False):
                batch.settle([index], outcome)
        return batch.result()

    async def _apply_member(self, member: str, changes: list[Change]) -> list[Outcome]:
        """Send this member's changes in event order; one call unless a tag repeats."""
        order = sorted(range(len(changes)), key=lambda i: changes[i].event_time or "")
        ledger = Ledger(self.name, changes)
        for round_ in _rounds([changes[i] for i in order], order):
            if any(o is not None and o.kind in ("retry", "failed") for o in map(ledger.outcome, order)):
                # Sending a later change before an earlier one went through could leave the
                # older state in place once the earlier one is retried.
                ledger.settle(round_, Outcome.retry("waiting for an earlier change of this member"))
                continue
            sent = await self._send_tags(member, [changes[i] for i in round_])
            for i, outcome in zip(round_, sent, strict=False):
                ledger.settle([i], outcome)
        return ledger.result()

    async def _send_tags(self, member: str, changes: list[Change]) -> list[Outcome]:
        path = f"/3.0/lists/{self._audience}/members/{member}/tags"
        body = {
            "tags": [
                {"name": c.options["tag"], "status": "active" if c.action == "add" else "inactive"} for c in changes
            ]
        }
        try:
            sent = await self.request("POST", path, json=body, accept={404})
            if sent.status_code != 404:
                return [Outcome.done()] * len(changes)
            return await self._not_a_member(member, changes, path, body)
        except CrmError as error:
            return [error.outcome] * len(changes)

    async def _not_a_member(self, member: str, changes: list[Change], path: str, body: dict[str, Any]) -> list[Outcome]:
        """The tags call said 404: a missing audience, or a person not in it."""
        if not await self._audience_exists():
            return [Outcome.failed(self._no_audience())] * len(changes)
        if all(c.action == "remove" for c in changes):
            return [Outcome.done()] * len(changes)  # nothing to remove from a non-member
        email = changes[0].email or ""
        if not self.config.create_missing_contacts:
            reason = (
                f"{mask_email(email)} is not a member of audience {self._audience} (create_missing_contacts is off)"
            )
            return [Outcome.skipped(reason) if c.action == "add" else Outcome.done() for c in changes]
        await self.request(
            "PUT",
            f"/3.0/lists/{self._audience}/members/{member}",
            json={
                # No merge_fields: an audience may lack FNAME/LNAME or require others, and a
                # 400 there would block the tag. status_if_new leaves an existing member's
                # status alone if someone else added them meanwhile.
                "email_address": email.strip(),
                "status_if_new": self.config.status_if_new,
            },
        )
        again = await self.request("POST", path, json=body, accept={404})
        if again.status_code == 404:
            return [Outcome.retry("member was just added but Mailchimp does not show it yet")] * len(changes)
        return [Outcome.done()] * len(changes)

    # -- resync --verify -------------------------------------------------------------------

    async def members(self, options: Mapping[str, Any]) -> AsyncIterator[str]:
        """Emails of the audience's members with the tag: a tag is a static segment of that name."""
        lists = f"/3.0/lists/{self._audience}/segments"
        answer = json_object(await self.request("GET", lists, params={"type": "static", "count": 1000})) or {}
        segment = next(
            (s for s in answer.get("segments") or () if isinstance(s, dict) and s.get("name") == options["tag"]), None
        )
        offset = 0
        while segment is not None:
            params = {"count": 1000, "offset": offset, "fields": "members.email_address,total_items"}
            page = json_object(await self.request("GET", f"{lists}/{segment['id']}/members", params=params)) or {}
            found = [m for m in page.get("members") or () if isinstance(m, dict)]
            for member in found:
                if isinstance(member.get("email_address"), str):
                    yield member["email_address"]
            offset += len(found)
            if not found or offset >= int(page.get("total_items") or 0):
                return


def _rounds(changes: list[Change], indexes: list[int]) -> list[list[int]]:
    """Split one member's changes (in event order) so no call names a tag twice.

    Two groups can map to the same tag; what Mailchimp does with a repeated name in one
    call is undocumented, so each repeat goes in the next call, keeping event order.
    """
    rounds: list[list[int]] = []
    names: list[set[str]] = []
    for change, index in zip(changes, indexes, strict=False):
        name = str(change.options["tag"]).casefold()
        last = next((r for r in range(len(rounds) - 1, -1, -1) if name in names[r]), -1)
        if last + 1 == len(rounds):
            rounds.append([])
            names.append(set())
        rounds[last + 1].append(index)
        names[last + 1].add(name)
    return rounds
