"""``type: intercom``: a Plain customer group as an Intercom contact tag.

Per batch, every call idempotent, so a change sent again after a crash is harmless
(docs/architecture.md, "in-flight is unknown"):

1. the contacts with each email: ``POST /contacts/search``, 15 emails per ``OR`` query
   (Intercom's documented limit per group); cached per email;
2. adds, per tag: ``POST /tags {name, users: [{id}, …]}``, 50 contacts a call (Intercom
   recommends no more, larger calls can time out); it creates the tag when missing (names
   are case-insensitive) and answers with its id, which is cached;
3. removes, one ``DELETE /contacts/{id}/tags/{tag_id}`` per contact (the API has no bulk
   untag; the tag id comes from ``POST /tags {name}`` once per name). A 404 about the tag
   (not attached, or deleted) is done.

People not in Intercom (created when enabled) and a bulk call that answers 404 (a cached
contact was deleted or merged) go change by change: ``POST /contacts/{id}/tags {id}``,
where a 404 drops the stale id and the change is tried once more with fresh lookups.

Several contacts may share an email (a lead and a user, or users with different external
ids). An add tags the best match only: the users whose ``external_id`` is the Plain
customer's external id, else every user, else every lead. A remove untags every contact
with the email, so no stale tag survives whichever one was tagged earlier.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr, field_validator

from connector.adapters.base import TargetConfig
from connector.adapters.change import Change, Outcome
from connector.adapters.errors import CrmError
from connector.adapters.http import HttpAdapter, json_object
from connector.adapters.http_config import HttpTargetConfig, secret_check
from connector.adapters.intercom_shapes import (
    SEARCH_EMAILS,
    Contact,
    add_targets,
    best_matches,
    contact_from,
    contacts_in,
    email_key,
    email_query,
    error_text,
    next_cursor,
    reset_delay,
    rounds_by_person,
    tag_name_problems,
    tag_packs,
    tagged_emails,
)
from connector.adapters.ledger import Ledger
from connector.adapters.lru import LruCache
from connector.adapters.options import tag_option
from connector.adapters.ratelimit import RateLimit
from connector.redact import mask_email

__all__ = ["REGION_HOSTS", "IntercomAdapter", "IntercomConfig"]

logger = logging.getLogger(__name__)

#: Intercom's regional API hosts (the workspace's region decides; tokens do not travel).
REGION_HOSTS: dict[str, str] = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}

Stale = Literal["contact", "tag"]


class IntercomConfig(HttpTargetConfig):
    """``{type: intercom, token: ${INTERCOM_TOKEN}, region: eu}`` (docs/targets/intercom.md).

    ``base_url``, when set, replaces the region's host (proxies, test servers).
    ``contact_role`` is only the role of contacts this target *creates*.
    """

    token: SecretStr
    region: Literal["us", "eu", "au"] = "us"
    api_version: str = "2.14"
    create_missing_contacts: bool = False
    contact_role: Literal["user", "lead"] = "user"

    # An unset ${INTERCOM_TOKEN} gives "", and a very short value would not be redacted.
    _check_token = secret_check("token", "token is empty or too short (is ${INTERCOM_TOKEN} set?)", min_length=8)

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not re.fullmatch(r"\d+\.\d+|Unstable|Preview", value):
            raise ValueError("api_version is an Intercom API version such as 2.14")
        return value


class IntercomAdapter(HttpAdapter):
    """Tags and untags Intercom contacts; see the module docstring for the calls."""

    type_name: ClassVar[str] = "intercom"
    config_model: ClassVar[type[TargetConfig]] = IntercomConfig
    # Intercom allows 10,000 calls a minute per app (25,000 per workspace for all private
    # apps together), enforced in 10 s windows: 1,666 per window. 1,500 keeps 10 % spare.
    default_rate_limit: ClassVar[RateLimit] = RateLimit(requests=1500, per_seconds=10, max_concurrency=10)
    # 300 adds: 20 searches and 6 tag calls; 300 removes still finish in seconds.
    max_batch: ClassVar[int] = 300

    config: IntercomConfig

    def __init__(self, name: str, config: TargetConfig, **kwargs: Any) -> None:
        super().__init__(name, config, **kwargs)
        # email -> contacts; expiring, so a contact added later with the same email (a
        # user next to a cached lead) is seen within the hour
        self._contacts: LruCache[str, tuple[Contact, ...]] = LruCache(20_000, ttl=3600.0)
        self._tag_ids: dict[str, str] = {}
        self._tag_locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        # Intercom keeps surrounding spaces as part of the name: refuse them, not trim.
        return {"tag": tag_option(cls.type_name, options, trim=False)}

    def vendor_base_url(self) -> str:
        return REGION_HOSTS[self.config.region]

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token.get_secret_value()}"}

    def default_headers(self) -> dict[str, str]:
        return {"Intercom-Version": self.config.api_version}

    def retry_delay(self, response: httpx.Response) -> float | None:
        """``Retry-After`` if given, else ``X-RateLimit-Reset`` (epoch seconds)."""
        delay = super().retry_delay(response)
        reset = response.headers.get("x-ratelimit-reset")
        if delay is None and reset is not None:
            return reset_delay(reset, time.time())
        return delay

    def error_message(self, response: httpx.Response) -> str:
        """``{code}: {message}`` of Intercom's ``error.list`` body."""
        return error_text(json_object(response)) or super().error_message(response)

    def _missing(self, response: httpx.Response) -> Stale:
        """What a tag call's 404 is about: Intercom says "User Not Found" for the contact and
        "Resource Not Found" for the tag (both with code ``not_found``)."""
        text = self.crm_message(response).lower()
        return "contact" if "user" in text or "contact" in text else "tag"

    # -- check --online -------------------------------------------------------------

    async def check_online(self, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
        """The token works (``GET /me``), in the configured region, and the mapped tag
        names are usable. Read-only: a missing tag is not a problem, it is created on use."""
        try:
            me = await self._json_call("GET", "/me")
        except CrmError as error:
            hint = " (check the token, and that region/base_url is the workspace's region)"
            return [error.reason + (hint if error.status == 401 else "")]
        app: dict[str, Any] = me["app"] if isinstance(me.get("app"), dict) else {}
        logger.info(
            "%s: token works for workspace %r (%s, region %s)",
            self.name,
            app.get("name"),
            app.get("id_code"),
            app.get("region"),
        )
        problems = []
        region = app.get("region")
        if not self.config.base_url and isinstance(region, str) and region.lower() != self.config.region:
            problems.append(
                f"the workspace is in region {region.lower()!r} but region is "
                f"{self.config.region!r}: set region: {region.lower()}"
            )
        problems.extend(tag_name_problems(destinations))
        return problems

    # -- apply ----------------------------------------------------------------------

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        """Look every email up in bulk, then each person's changes in order: a person's
        n-th change goes in the n-th round, and a round tags many contacts per call."""
        batch = Ledger(self.name, changes)
        found = await self._look_up(batch, batch.skip_without_email())
        for round_ in rounds_by_person(changes, batch.open()):
            await self._apply_round(batch, round_, found)
        return batch.result()

    async def _look_up(self, batch: Ledger, indices: list[int]) -> dict[str, tuple[Contact, ...]]:
        """Email key -> its contacts (empty: not in Intercom); failed searches settle."""
        emails = {email_key(str(batch.changes[i].email)): str(batch.changes[i].email) for i in indices}
        found: dict[str, tuple[Contact, ...]] = {}
        for key in emails:
            cached = self._contacts.get(key)
            if cached is not None:
                found[key] = cached
        unknown = [emails[key] for key in emails if key not in found]

        async def search(part: list[str]) -> None:
            try:
                found.update(await self._search(part))
            except CrmError as error:
                keys = {email_key(e) for e in part}
                batch.settle([i for i in indices if email_key(str(batch.changes[i].email)) in keys], error.outcome)

        await asyncio.gather(*(search(unknown[i : i + SEARCH_EMAILS]) for i in range(0, len(unknown), SEARCH_EMAILS)))
        return found

    async def _apply_round(self, batch: Ledger, indices: list[int], found: dict[str, tuple[Contact, ...]]) -> None:
        by_tag: dict[str, list[int]] = {}
        alone: list[int] = []
        for i in indices:
            change = batch.changes[i]
            if change.action == "add" and found.get(email_key(str(change.email))):
                by_tag.setdefault(str(change.options["tag"]).casefold(), []).append(i)
            elif batch.is_open(i):
                alone.append(i)

        async def one(index: int) -> None:
            batch.settle(
                [index],
                await self._apply_one(batch.changes[index], found.get(email_key(str(batch.changes[index].email)))),
            )

        packs = [part for ix in by_tag.values() for part in tag_packs(batch.changes, ix, found)]
        calls = [self._tag_many(batch, part, found) for part in packs]
        await asyncio.gather(*calls, *map(one, alone))

    async def _tag_many(self, batch: Ledger, indices: list[int], found: dict[str, tuple[Contact, ...]]) -> None:
        """One ``POST /tags`` with ``users`` for these adds (all of one tag)."""
        name = str(batch.changes[indices[0]].options["tag"])
        ids = dict.fromkeys(c.id for i in indices for c in add_targets(batch.changes[i], found))
        try:
            response = await self.request(
                "POST", "/tags", json={"name": name, "users": [{"id": x} for x in ids]}, accept={404}
            )
        except CrmError as error:
            if error.transient or len(indices) == 1:
                batch.settle(indices, error.outcome)
                return
            response = None  # one contact refused (a 400 names no one): each finds out alone
        if response is None or response.status_code == 404:
            # A cached contact is gone (deleted, merged) or refused: each change alone.
            outcomes = await asyncio.gather(*(self._apply_one(batch.changes[i]) for i in indices))
            for i, outcome in zip(indices, outcomes, strict=True):
                batch.settle([i], outcome)
            return
        tag_id = (json_object(response) or {}).get("id")
        if isinstance(tag_id, (str, int)) and str(tag_id):
            self._tag_ids[name.casefold()] = str(tag_id)
        batch.settle(indices, Outcome.done())

    async def _apply_one(self, change: Change, known: tuple[Contact, ...] | None = None) -> Outcome:
        """One change on its own; ``known``: its contacts, just looked up."""
        try:
            for _ in range(2):  # a second pass only after a 404 showed a cached id was stale
                outcome = await self._try_change(change, known)
                if outcome is not None:
                    return outcome
                known = None
        except CrmError as error:
            return error.outcome
        return Outcome.retry(
            f"{self.name}: {mask_email(change.email)}: Intercom answered 404 twice for "
            "contacts that search had just returned (search lags behind deletes and merges)"
        )

    async def _try_change(self, change: Change, known: tuple[Contact, ...] | None) -> Outcome | None:
        """One try at a change; None when a stale cached id was dropped and a retry helps."""
        email, tag = str(change.email), str(change.options["tag"])
        contacts = known if known is not None else await self._find(email)
        if not contacts:
            if change.action == "remove":  # nobody carries the tag: as wanted (as Mailchimp's target)
                return Outcome.done()
            if not self.config.create_missing_contacts:
                return Outcome.skipped(f"{mask_email(email)} not in Intercom and create_missing_contacts is off")
            created = await self._create(change)
            if isinstance(created, Outcome):
                return created
            contacts = created
        tag_id = await self._tag_id(tag)
        if change.action == "add":
            stale = await self._attach(best_matches(contacts, change.external_id), tag_id)
        else:
            stale = await self._detach(contacts, tag_id)
        if stale == "contact":
            self._contacts.forget(email_key(email))
        elif stale == "tag":
            self._tag_ids.pop(tag.casefold(), None)
        return None if stale else Outcome.done()

    async def _attach(self, contacts: Sequence[Contact], tag_id: str) -> Stale | None:
        for contact in contacts:
            path = f"/contacts/{quote(contact.id, safe='')}/tags"
            response = await self.request("POST", path, json={"id": tag_id}, accept={404})
            if response.status_code == 404:
                return self._missing(response)
        return None

    async def _detach(self, contacts: Sequence[Contact], tag_id: str) -> Stale | None:
        for contact in contacts:
            path = f"/contacts/{quote(contact.id, safe='')}/tags/{quote(tag_id, safe='')}"
            response = await self.request("DELETE", path, accept={404})
            # A 404 about the tag means it is not on this contact: already as wanted.
            if response.status_code == 404 and self._missing(response) == "contact":
                return "contact"
        return None

    # -- lookups --------------------------------------------------------------------

    async def _tag_id(self, name: str) -> str:
        key = name.casefold()  # Intercom's names are case-insensitive, so is this cache
        async with self._tag_locks.setdefault(key, asyncio.Lock()):  # one lookup per name
            if key not in self._tag_ids:
                body = await self._json_call("POST", "/tags", json={"name": name})
                if not isinstance(body.get("id"), (str, int)) or body["id"] == "":
                    raise self.crm_error("POST", "/tags", 200, "answer has no tag id", transient=True)
                self._tag_ids[key] = str(body["id"])
            return self._tag_ids[key]

    async def _find(self, email: str) -> tuple[Contact, ...]:
        cached = self._contacts.get(email_key(email))
        if cached is not None:
            return cached
        return (await self._search([email]))[email_key(email)]

    async def _search(self, emails: list[str]) -> dict[str, tuple[Contact, ...]]:
        """Email key -> contacts with that email, for up to 15 emails in one query."""
        query = email_query(emails)
        body: dict[str, Any] = {"query": query}
        items: list[Any] = []
        while True:
            page = await self._json_call("POST", "/contacts/search", json=body)
            items.extend(page.get("data") or ())
            cursor = next_cursor(page)
            if cursor is None:
                break
            body = {"query": query, "pagination": {"starting_after": cursor}}
        found = {email_key(e): contacts_in({"data": items}, e) for e in emails}
        for email in emails:
            contacts = found[email_key(email)]
            if contacts:  # absence is not cached: the contact may be created any moment
                self._contacts.put(email_key(email), contacts)
            if len(contacts) > 1:
                roles = ", ".join(sorted(c.role for c in contacts))
                logger.info("%s: %d contacts share %s (%s)", self.name, len(contacts), mask_email(email), roles)
        return found

    async def _create(self, change: Change) -> tuple[Contact, ...] | Outcome:
        """Create the contact; a 409 (someone created it since our search) is looked up."""
        email, role = str(change.email), self.config.contact_role
        body: dict[str, str] = {"role": role, "email": email}
        if change.external_id and role == "user":  # Intercom leads carry no external_id
            body["external_id"] = change.external_id
        if change.full_name:
            body["name"] = change.full_name
        response = await self.request("POST", "/contacts", json=body, accept={409})
        if response.status_code != 409:
            contact = contact_from(self._body(response))
            if contact is None:
                raise self._unusable(response, "answer has no contact id")
            self._contacts.put(email_key(email), (contact,))
            return (contact,)
        message = self.redact(self.crm_message(response))
        if "archived" in message.lower():
            return Outcome.skipped(f"{mask_email(email)} is archived in Intercom: unarchive the contact to sync it")
        found = (await self._search([email]))[email_key(email)]
        if found:
            return found
        clash = f", or another contact has external_id {body['external_id']!r}" if "external_id" in body else ""
        return Outcome.retry(
            f"{self.name}: POST /contacts -> HTTP 409: {message}; but search does not show "
            f"{mask_email(email)} yet (search lags behind creates{clash})"
        )

    async def _json_call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._body(await self.request(method, path, **kwargs))

    def _body(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON object of a 2xx; an unreadable one is a proxy's or a blip: transient."""
        body = json_object(response)
        if body is None:
            raise self._unusable(response, "answer is not a JSON object")
        return body

    def _unusable(self, response: httpx.Response, message: str) -> CrmError:
        request = response.request
        return self.crm_error(request.method, request.url.path, response.status_code, message, transient=True)

    async def members(self, options: Mapping[str, Any]) -> AsyncIterator[str]:
        """Emails of the contacts with the tag (``GET /tags``: never creates it), by search pages."""
        async for email in tagged_emails(self._json_call, str(options["tag"])):
            yield email
