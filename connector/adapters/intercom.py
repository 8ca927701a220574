"""``type: intercom``: a Plain customer group as an Intercom contact tag.

A change costs at most three calls, each idempotent, so a change sent again after a crash
is harmless (docs/architecture.md, "in-flight is unknown"):

1. the tag id: ``POST /tags {name}`` creates the tag or returns the existing one (Intercom
   tag names are case-insensitive); cached per name for the adapter's life;
2. the contacts with the email: ``POST /contacts/search``; cached per email;
3. ``POST /contacts/{id}/tags {id}`` to add, ``DELETE /contacts/{id}/tags/{tag_id}`` to
   remove. A DELETE answering 404 about the tag (not attached, or deleted) is done.

Several contacts may share an email (a lead and a user, or users with different external
ids). An add tags the best match only: the users whose ``external_id`` is the Plain
customer's external id, else every user, else every lead. A remove untags every contact
with the email, so no stale tag survives whichever one was tagged earlier.

A cached id can go stale (contact deleted or merged, tag deleted): the 404 drops it and
the change is tried once more with fresh lookups.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr, field_validator

from connector.adapters.base import TargetConfig
from connector.adapters.change import Change, Outcome
from connector.adapters.errors import CrmError
from connector.adapters.http import HttpAdapter, json_object
from connector.adapters.http_config import HttpTargetConfig, secret_check
from connector.adapters.ledger import Ledger
from connector.adapters.lru import LruCache
from connector.adapters.options import tag_option
from connector.adapters.ratelimit import RateLimit, seconds
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


@dataclass(frozen=True, slots=True)
class _Contact:
    id: str
    role: str
    external_id: str | None


def _key(email: str) -> str:
    return email.strip().lower()


def _contacts_in(body: Mapping[str, Any], email: str) -> tuple[_Contact, ...]:
    """The search result's contacts that really have ``email`` (compared case-blind)."""
    found = []
    for item in body.get("data") or ():
        contact = _contact(item)
        if contact and isinstance(item.get("email"), str) and _key(item["email"]) == _key(email):
            found.append(contact)
    return tuple(found)


def _contact(item: Any) -> _Contact | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        return None
    external = item.get("external_id")
    role = item["role"] if isinstance(item.get("role"), str) else "user"
    return _Contact(item["id"], role, external if isinstance(external, str) and external else None)


def _best_matches(contacts: Sequence[_Contact], external_id: str | None) -> Sequence[_Contact]:
    """Whom an add tags: the user with our external id, else all users, else all leads."""
    users = [c for c in contacts if c.role == "user"]
    same = [c for c in users if external_id and c.external_id == external_id]
    return same or users or contacts


def _error_text(body: Mapping[str, Any] | None) -> str | None:
    """``{code}: {message}`` of the first error of Intercom's ``error.list``."""
    for item in (body or {}).get("errors") or ():
        message = item.get("message") if isinstance(item, dict) else item
        if isinstance(message, str) and message:
            code = item.get("code") if isinstance(item, dict) else None
            return f"{code}: {message}" if isinstance(code, str) and code not in message else message
    return None


def _reset_delay(value: str, now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset``: epoch seconds (or milliseconds)."""
    stamp = seconds(value)
    if stamp is None:
        return None
    if stamp > 1e12:  # epoch milliseconds
        stamp /= 1000.0
    # Intercom sends epoch seconds; a small number can only mean "seconds from now".
    return max(0.0, stamp - now) if stamp > 1e9 else max(0.0, stamp)


class IntercomAdapter(HttpAdapter):
    """Tags and untags Intercom contacts; see the module docstring for the calls."""

    type_name: ClassVar[str] = "intercom"
    config_model: ClassVar[type[TargetConfig]] = IntercomConfig
    # Intercom allows 10,000 calls a minute per app (25,000 per workspace for all private
    # apps together), enforced in 10 s windows: 1,666 per window. 1,500 keeps 10 % spare.
    default_rate_limit: ClassVar[RateLimit] = RateLimit(requests=1500, per_seconds=10, max_concurrency=10)

    config: IntercomConfig

    def __init__(self, name: str, config: TargetConfig, **kwargs: Any) -> None:
        super().__init__(name, config, **kwargs)
        # email -> contacts; expiring, so a contact added later with the same email (a
        # user next to a cached lead) is seen within the hour
        self._contacts: LruCache[str, tuple[_Contact, ...]] = LruCache(20_000, ttl=3600.0)
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
            return _reset_delay(reset, time.time())
        return delay

    def error_message(self, response: httpx.Response) -> str:
        """``{code}: {message}`` of Intercom's ``error.list`` body."""
        return _error_text(json_object(response)) or super().error_message(response)

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
        problems.extend(_tag_name_problems(destinations))
        return problems

    # -- apply ----------------------------------------------------------------------

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        """Different people concurrently (the limiter keeps the pace); one person's
        changes one after another, so the first lookup serves the rest."""
        batch = Ledger(self.name, changes)
        people: dict[str, list[int]] = {}
        for index in batch.skip_without_email():
            people.setdefault(_key(str(changes[index].email)), []).append(index)

        async def run(indexes: list[int]) -> None:
            for index in indexes:
                batch.settle([index], await self._apply_one(changes[index]))

        await asyncio.gather(*(run(indexes) for indexes in people.values()))
        return batch.result()

    async def _apply_one(self, change: Change) -> Outcome:
        try:
            for _ in range(2):  # a second pass only after a 404 showed a cached id was stale
                outcome = await self._try_change(change)
                if outcome is not None:
                    return outcome
        except CrmError as error:
            return error.outcome
        return Outcome.retry(
            f"{self.name}: {mask_email(change.email)}: Intercom answered 404 twice for "
            "contacts that search had just returned (search lags behind deletes and merges)"
        )

    async def _try_change(self, change: Change) -> Outcome | None:
        """One try at a change; None when a stale cached id was dropped and a retry helps."""
        email, tag = str(change.email), str(change.options["tag"])
        contacts = await self._find(email)
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
            stale = await self._attach(_best_matches(contacts, change.external_id), tag_id)
        else:
            stale = await self._detach(contacts, tag_id)
        if stale == "contact":
            self._contacts.forget(_key(email))
        elif stale == "tag":
            self._tag_ids.pop(tag.casefold(), None)
        return None if stale else Outcome.done()

    async def _attach(self, contacts: Sequence[_Contact], tag_id: str) -> Stale | None:
        for contact in contacts:
            path = f"/contacts/{quote(contact.id, safe='')}/tags"
            response = await self.request("POST", path, json={"id": tag_id}, accept={404})
            if response.status_code == 404:
                return self._missing(response)
        return None

    async def _detach(self, contacts: Sequence[_Contact], tag_id: str) -> Stale | None:
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

    async def _find(self, email: str) -> tuple[_Contact, ...]:
        cached = self._contacts.get(_key(email))
        if cached is not None:
            return cached
        found = await self._search(email)
        if found:  # absence is not cached: the contact may be created any moment
            self._contacts.put(_key(email), found)
        return found

    async def _search(self, email: str) -> tuple[_Contact, ...]:
        query = {"query": {"field": "email", "operator": "=", "value": email}}
        body = await self._json_call("POST", "/contacts/search", json=query)
        found = _contacts_in(body, email)
        if len(found) > 1:
            roles = ", ".join(sorted(c.role for c in found))
            logger.info("%s: %d contacts share %s (%s)", self.name, len(found), mask_email(email), roles)
        return found

    async def _create(self, change: Change) -> tuple[_Contact, ...] | Outcome:
        """Create the contact; a 409 (someone created it since our search) is looked up."""
        email, role = str(change.email), self.config.contact_role
        body: dict[str, str] = {"role": role, "email": email}
        if change.external_id and role == "user":  # Intercom leads carry no external_id
            body["external_id"] = change.external_id
        if change.full_name:
            body["name"] = change.full_name
        response = await self.request("POST", "/contacts", json=body, accept={409})
        if response.status_code != 409:
            contact = _contact(self._body(response))
            if contact is None:
                raise self._unusable(response, "answer has no contact id")
            self._contacts.put(_key(email), (contact,))
            return (contact,)
        message = self.redact(self.crm_message(response))
        if "archived" in message.lower():
            return Outcome.skipped(f"{mask_email(email)} is archived in Intercom: unarchive the contact to sync it")
        found = await self._search(email)
        if found:
            self._contacts.put(_key(email), found)
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

    # -- resync --verify -------------------------------------------------------------------

    async def members(self, options: Mapping[str, Any]) -> AsyncIterator[str]:
        """Emails of the contacts with the tag (``GET /tags``: never creates it), by search pages."""
        listed = await self._json_call("GET", "/tags")
        name = str(options["tag"]).casefold()
        tag = next(
            (t for t in listed.get("data") or () if isinstance(t, dict) and str(t.get("name", "")).casefold() == name),
            None,
        )
        query: dict[str, Any] = {"query": {"field": "tag_id", "operator": "=", "value": str((tag or {}).get("id"))},
                                 "pagination": {"per_page": 150}}  # fmt: skip
        while tag is not None:
            page = await self._json_call("POST", "/contacts/search", json=query)
            for contact in page.get("data") or ():
                if isinstance(contact, dict) and isinstance(contact.get("email"), str):
                    yield contact["email"]
            after = ((page.get("pages") or {}).get("next") or {}).get("starting_after")
            if not after:
                return
            query["pagination"] = {"per_page": 150, "starting_after": after}


def _tag_name_problems(destinations: Sequence[Mapping[str, Any]]) -> list[str]:
    """Mapped names that Intercom would treat as one tag (its names are case-insensitive)."""
    spellings: dict[str, set[str]] = {}
    for options in destinations:
        tag = options.get("tag")
        if isinstance(tag, str):
            spellings.setdefault(tag.casefold(), set()).add(tag)
    return [
        f"tags {', '.join(repr(n) for n in sorted(names))} are one tag in Intercom "
        "(names are case-insensitive): use one spelling"
        for names in spellings.values()
        if len(names) > 1
    ]
