"""``type: mailchimp``: a Plain group becomes a tag on members of one Mailchimp audience.

A Mailchimp tag is a static segment. Each mapped tag is resolved to its segment id once
(listed, or created empty when missing) and cached; then one call per tag adds and
removes up to 500 members each (``POST /lists/{id}/segments/{segment_id}``), so a burst
costs about one call per 500 changes. Both lists are declarative, so sending them again
is harmless, which is what at-least-once delivery needs. Addresses the answer names in
``errors`` (not in the audience, refused) take the member's own tags call, which tells
those cases apart. A member's changes to one tag are sent in event order.

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
import itertools
import re
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr, field_validator, model_validator

from connector.adapters.base import TargetConfig
from connector.adapters.change import Change, Outcome
from connector.adapters.errors import CrmError
from connector.adapters.http import HttpAdapter, json_object
from connector.adapters.http_config import HttpTargetConfig, secret_check
from connector.adapters.ledger import Ledger
from connector.adapters.mailchimp_batches import (
    chunks as _chunks,
)
from connector.adapters.mailchimp_batches import (
    email as _email,
)
from connector.adapters.mailchimp_batches import (
    error_emails as _error_emails,
)
from connector.adapters.mailchimp_batches import (
    kind as _kind,
)
from connector.adapters.mailchimp_batches import (
    list_segments,
)
from connector.adapters.mailchimp_batches import (
    rounds as _rounds,
)
from connector.adapters.mailchimp_batches import (
    tag_key as _tag_key,
)
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
#: documented: members_to_add and members_to_remove take at most 500 addresses each
SEGMENT_MEMBERS = 500


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
    # One segment call carries 500 adds and 500 removes of one tag.
    max_batch: ClassVar[int] = 500

    config: MailchimpConfig

    def __init__(self, name: str, config: TargetConfig, **kwargs: Any) -> None:
        super().__init__(name, config, **kwargs)
        # Confirmed once is enough; "missing" is re-checked after a while, as an operator
        # may create it, but not once per member of a batch.
        self._audience_seen = False
        self._audience_missing_at = float("-inf")
        self._audience_lock = asyncio.Lock()
        self._segments: dict[str, int] = {}  # tag key (casefolded name) -> static segment id
        self._segments_lock = asyncio.Lock()

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
        """Per tag, its static segment's batch call; members the call refuses go one by one."""
        batch = Ledger(self.name, changes)
        by_tag: dict[str, list[int]] = {}
        for index in batch.skip_without_email():
            by_tag.setdefault(_tag_key(changes[index]), []).append(index)
        if not by_tag:
            return batch.result()
        try:
            segments = await self._segment_ids({str(changes[ix[0]].options["tag"]) for ix in by_tag.values()})
        except CrmError as error:
            batch.settle(batch.open(), error.outcome)
            return batch.result()
        if segments is None:
            batch.settle(batch.open(), Outcome.failed(self._no_audience()))
            return batch.result()
        await asyncio.gather(*(self._apply_segment(batch, segments[key], ix) for key, ix in by_tag.items()))
        return batch.result()

    async def _apply_segment(self, batch: Ledger, segment: int | Outcome, indices: list[int]) -> None:
        """One tag's changes, in rounds: a member's n-th change goes in the n-th round."""
        if isinstance(segment, Outcome):
            batch.settle(indices, segment)
            return
        held: set[str] = set()
        for round_ in _rounds(batch.changes, indices):
            # Sending a later change before an earlier one went through could leave the
            # older state in place once the earlier one is retried.
            waiting = [i for i in round_ if _email(batch.changes[i]) in held]
            batch.settle(waiting, Outcome.retry("waiting for an earlier change of this member"))
            ready = [i for i in round_ if batch.is_open(i)]
            adds = _chunks([i for i in ready if batch.changes[i].action == "add"], SEGMENT_MEMBERS)
            removes = _chunks([i for i in ready if batch.changes[i].action == "remove"], SEGMENT_MEMBERS)
            none: list[int] = []
            calls = itertools.zip_longest(adds, removes, fillvalue=none)
            await asyncio.gather(*(self._segment_call(batch, segment, add, rem) for add, rem in calls))
            held.update(_email(batch.changes[i]) for i in round_ if _kind(batch, i) in ("retry", "failed"))

    async def _segment_call(self, batch: Ledger, segment: int, adds: list[int], removes: list[int]) -> None:
        """``members_to_add`` / ``members_to_remove`` for up to 500 each; each member once."""
        path = f"/3.0/lists/{self._audience}/segments/{segment}"
        body = {
            key: [str(batch.changes[i].email).strip() for i in part]
            for key, part in (("members_to_add", adds), ("members_to_remove", removes))
            if part
        }
        sent = adds + removes
        try:
            answer = await self.request("POST", path, json=body, accept={404})
        except CrmError as error:
            batch.settle(sent, error.outcome)
            return
        if answer.status_code == 404:
            self._forget_segment(segment)
            batch.settle(sent, Outcome.retry(f"{self.name}: tag segment {segment} is gone; looked up again on retry"))
            return
        # Whatever Mailchimp names in errors (not on the list, cleaned, refused) goes the
        # member's own way, which knows what each case means; the rest is in place.
        named = _error_emails(json_object(answer))
        alone = [i for i in sent if _email(batch.changes[i]) in named]
        batch.settle([i for i in sent if i not in alone], Outcome.done())
        outcomes = await asyncio.gather(*(self._send_tags(batch.changes[i]) for i in alone))
        for i, outcome in zip(alone, outcomes, strict=True):
            batch.settle([i], outcome)

    # -- tag segments ---------------------------------------------------------------------

    async def _segment_ids(self, tags: set[str]) -> dict[str, int | Outcome] | None:
        """Tag key -> its static segment's id (created when missing), or the outcome of
        failing to create it; None when the audience does not exist."""
        async with self._segments_lock:  # concurrent batches must not create a tag twice
            wanted = {tag.casefold(): tag for tag in tags}
            if not await self._cache_segments(wanted.keys()):
                return None
            found: dict[str, int | Outcome] = {}
            for key, tag in wanted.items():
                if key not in self._segments:
                    try:
                        self._segments[key] = await self._create_segment(tag)
                    except CrmError as error:
                        found[key] = error.outcome
                        continue
                found[key] = self._segments[key]
            return found

    async def _cache_segments(self, keys: Collection[str]) -> bool:
        """With the lock held: list the audience's segments into the cache unless every tag key
        of ``keys`` is in it already. False when the audience does not exist."""
        if not set(keys) - self._segments.keys():
            return True
        listed = await list_segments(self.request, self._audience)
        if listed is None:
            return False
        self._audience_seen = True
        self._segments.update(listed)
        return True

    async def _create_segment(self, tag: str) -> int:
        path = f"/3.0/lists/{self._audience}/segments"
        created = await self.request("POST", path, json={"name": tag, "static_segment": []})
        segment = (json_object(created) or {}).get("id")
        if not isinstance(segment, int):
            raise self.response_error(created)
        return segment

    def _forget_segment(self, segment: int) -> None:
        self._segments = {k: v for k, v in self._segments.items() if v != segment}

    # -- one member at a time: what the segment call refused ----------------------------

    async def _send_tags(self, change: Change) -> Outcome:
        member = subscriber_hash(str(change.email))
        path = f"/3.0/lists/{self._audience}/members/{member}/tags"
        body = {"tags": [{"name": change.options["tag"], "status": "active" if change.action == "add" else "inactive"}]}
        try:
            sent = await self.request("POST", path, json=body, accept={404})
            if sent.status_code != 404:
                return Outcome.done()
            return await self._not_a_member(member, change, path, body)
        except CrmError as error:
            return error.outcome

    async def _not_a_member(self, member: str, change: Change, path: str, body: dict[str, Any]) -> Outcome:
        """The tags call said 404: a missing audience, or a person not in it."""
        if not await self._audience_exists():
            return Outcome.failed(self._no_audience())
        if change.action == "remove":
            return Outcome.done()  # nothing to remove from a non-member
        email = change.email or ""
        if not self.config.create_missing_contacts:
            return Outcome.skipped(
                f"{mask_email(email)} is not a member of audience {self._audience} (create_missing_contacts is off)"
            )
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
            return Outcome.retry("member was just added but Mailchimp does not show it yet")
        return Outcome.done()

    # -- resync --verify -------------------------------------------------------------------

    async def members(self, options: Mapping[str, Any]) -> AsyncIterator[str]:
        """Emails of the audience's members with the tag: a tag is a static segment of that name."""
        lists = f"/3.0/lists/{self._audience}/segments"
        key = str(options["tag"]).casefold()
        async with self._segments_lock:
            if not await self._cache_segments([key]):
                raise self.crm_error("GET", lists, 404, self._no_audience(), transient=False)
            segment = self._segments.get(key)
        offset = 0
        while segment is not None:
            params = {"count": 1000, "offset": offset, "fields": "members.email_address,total_items"}
            page = json_object(await self.request("GET", f"{lists}/{segment}/members", params=params)) or {}
            found = [m for m in page.get("members") or () if isinstance(m, dict)]
            for member in found:
                if isinstance(member.get("email_address"), str):
                    yield member["email_address"]
            offset += len(found)
            if not found or offset >= int(page.get("total_items") or 0):
                return
