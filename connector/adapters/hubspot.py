"""HubSpot: Plain customer groups kept as members of HubSpot contact lists.

A mapping names a MANUAL or SNAPSHOT contact list (``list: "123"``, the ILS id, or
``list_name:``). Per batch: a cached name lookup, one ``batch/read`` per 100 unknown emails,
one ``batch/upsert`` per 100 contacts to create (opt-in), and per list one idempotent
``memberships/remove`` and one ``memberships/add``. See docs/targets/hubspot.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from connector.adapters.change import Change, Outcome
from connector.adapters.errors import CrmError, OptionsError
from connector.adapters.http import HttpAdapter, json_object
from connector.adapters.http_config import HttpTargetConfig, secret_check
from connector.adapters.hubspot_shapes import (
    CONTACT_OBJECT_TYPE,
    error_text,
    ids_by_email,
    list_problem,
    norm,
    policy_delay,
    properties,
    required_scopes,
)
from connector.adapters.ledger import Ledger
from connector.adapters.lru import LruCache
from connector.adapters.ratelimit import RateLimit
from connector.redact import mask_email

__all__ = ["HubSpotAdapter", "HubSpotConfig"]

CONTACTS = "/crm/v3/objects/contacts"
BATCH_READ = CONTACTS + "/batch/read"
BATCH_UPSERT = CONTACTS + "/batch/upsert"
LISTS = "/crm/v3/lists"
#: documented: batch/read and batch/upsert take at most 100 inputs
BATCH_INPUTS = 100
#: record ids per membership call. HubSpot documents no limit for the v3 calls (only
#: that a list may hold 100,000 members for some of them); a batch never holds more.
MEMBERSHIP_IDS = 2500
#: the most record ids HubSpot lists in one page of a list's memberships
MEMBERSHIPS_PAGE = 250
#: email -> record id entries kept; HubSpot ids never change for a live contact
ID_CACHE_SIZE = 50_000

T = TypeVar("T")


class HubSpotConfig(HttpTargetConfig):
    """``targets.<name>`` for ``type: hubspot``."""

    token: SecretStr
    create_missing_contacts: bool = False

    _token_is_set = secret_check("token", "token is empty: set the private app's access token (is the variable set?)")


class HubSpotAdapter(HttpAdapter):
    type_name = "hubspot"
    config_model = HubSpotConfig
    default_base_url = "https://api.hubapi.com"
    # The lower published tier (Free/Starter: 100 per 10 s per app); operators on
    # Professional/Enterprise raise it with rate_limit: {requests: 190}.
    default_rate_limit = RateLimit(requests=100, per_seconds=10, max_concurrency=10)
    # 2,500 changes to one list: 25 reads + 1 membership call = 1.04 calls per 100 (0.04
    # once the ids are cached); 26 calls take ~3 s at 100 per 10 s, inside the 120 s lease.
    max_batch = 2500

    config: HubSpotConfig

    def __init__(self, name: str, config: Any, **kwargs: Any) -> None:
        super().__init__(name, config, **kwargs)
        self._ids: LruCache[str, str] = LruCache(ID_CACHE_SIZE)  # email -> record id
        self._list_names: dict[str, str] = {}  # list_name as written -> ILS list id

    # -- configuration -------------------------------------------------------------------

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        usage = 'hubspot takes exactly one of list: "<ILS list id>" or list_name: "<list name>"'
        if len(options) != 1 or not set(options) <= {"list", "list_name"}:
            raise OptionsError(usage)
        [(key, value)] = options.items()
        if key == "list" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML reads list: 123 as a number
        if not isinstance(value, str) or not value.strip() or (key == "list" and not value.strip().isdigit()):
            what = "the numeric ILS list id (to name a list use list_name:)" if key == "list" else "a list name"
            raise OptionsError(f"{key} must be {what}; {usage}")
        return {key: value.strip()}

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.token.get_secret_value()}"}

    def retry_delay(self, response: httpx.Response) -> float | None:
        """``Retry-After`` if given; else a 429's ``policyName``, as HubSpot sends no Retry-After."""
        delay = super().retry_delay(response)
        if delay is None and response.status_code == 429:
            return policy_delay(json_object(response), response.headers)
        return delay

    def error_message(self, response: httpx.Response) -> str:
        """``{category}: {message}`` of HubSpot's error body."""
        return error_text(json_object(response)) or super().error_message(response)

    # -- check --online ------------------------------------------------------------------

    async def check_online(self, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
        """The token reads contacts; every mapped list exists and takes API writes."""
        try:
            await self._call("GET", CONTACTS, params={"limit": 1})
        except CrmError as error:
            return [error.reason]  # with a bad token every list check would say the same
        problems: list[str] = []
        for ref in dict.fromkeys(_list_ref(options) for options in destinations):
            try:
                await self._list_info(ref)
            except CrmError as error:
                problems.append(error.reason)
        return problems

    # -- apply ---------------------------------------------------------------------------

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        batch = Ledger(self.name, changes)
        batch.skip_without_email("HubSpot contacts are matched by email")
        lists = await self._resolve_lists(batch)
        records = await self._resolve_contacts(batch, batch.open())
        vanished = await self._write_lists(batch, lists, records)
        if vanished:
            # HubSpot says these record ids no longer exist (deleted or merged since we
            # cached them): look the emails up afresh and try once more.
            for i in vanished:
                self._ids.forget(norm(changes[i].email))
            records = await self._resolve_contacts(batch, vanished)
            again = await self._write_lists(batch, lists, records)
            batch.settle(again, Outcome.skipped("contact vanished from HubSpot during the update (deleted or merged)"))
        return batch.result()

    async def _resolve_lists(self, batch: Ledger) -> dict[int, str]:
        """Change index -> ILS list id; changes whose list cannot be resolved are settled."""
        by_ref: dict[tuple[str, str], list[int]] = {}
        for i in batch.open():
            by_ref.setdefault(_list_ref(batch.changes[i].options), []).append(i)
        resolved: dict[int, str] = {}
        for ref, indices in by_ref.items():
            try:
                list_id = await self._list_id(ref)
            except CrmError as error:
                batch.settle(indices, error.outcome)
                continue
            resolved.update((i, list_id) for i in indices)
        return resolved

    async def _resolve_contacts(self, batch: Ledger, indices: Sequence[int]) -> dict[int, str]:
        """Change index -> contact record id; missing contacts are created or settled."""
        emails = {i: norm(batch.changes[i].email) for i in indices if batch.is_open(i)}
        found, errors = await self._lookup(set(emails.values()))
        if self.config.create_missing_contacts:
            # Only adds create: a contact HubSpot never had is in no list to leave.
            names = {emails[i]: batch.changes[i].full_name for i in emails if batch.changes[i].action == "add"}
            wanted = {e: n for e, n in names.items() if e not in found and e not in errors}
            created, failed = await self._create(wanted)
            found.update(created)
            errors.update(failed)
        records: dict[int, str] = {}
        for i, email in emails.items():
            if email in found:
                records[i] = found[email]
            else:
                batch.settle([i], errors.get(email) or _missing(batch.changes[i]))
        return records

    async def _write_lists(self, batch: Ledger, lists: Mapping[int, str], records: Mapping[int, str]) -> list[int]:
        """Apply membership per list, lists in parallel; return indices whose record vanished."""
        by_list: dict[str, list[int]] = {}
        for i in records:
            if batch.is_open(i):
                by_list.setdefault(lists[i], []).append(i)
        done = await asyncio.gather(*(self._write_list(batch, lid, ix, records) for lid, ix in by_list.items()))
        return [i for vanished in done for i in vanished]

    async def _write_list(
        self, batch: Ledger, list_id: str, indices: list[int], records: Mapping[int, str]
    ) -> list[int]:
        vanished: list[int] = []
        # Removes first: if two groups mapped to this list disagree, the add wins and
        # nobody is dropped from a list that one of their groups still puts them in.
        for action in ("remove", "add"):
            chosen = [i for i in indices if batch.changes[i].action == action]
            if not chosen:
                continue
            try:
                missing = await self._membership(list_id, action, [records[i] for i in chosen])
            except CrmError as error:
                batch.settle(chosen, error.outcome)
                continue
            for i in chosen:
                if records[i] in missing:
                    vanished.append(i)
                else:
                    batch.settle([i], Outcome.done())
        return vanished

    # -- HubSpot calls -------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, accept: Collection[int] = (), **kwargs: Any) -> httpx.Response:
        """``request`` that words 401/403 for an operator (token, missing scopes)."""
        response = await self.request(method, path, accept={401, 403, *accept}, **kwargs)
        if response.status_code in (401, 403):
            message = self._access_message(response)
            raise self.crm_error(method, path, response.status_code, message, transient=False)
        return response

    async def _list_id(self, ref: tuple[str, str]) -> str:
        kind, value = ref
        if kind == "list":
            return value  # used as written: a wrong id fails on the membership call
        if value not in self._list_names:
            info = await self._list_info(ref)
            self._list_names[value] = str(info["listId"])
        return self._list_names[value]

    async def _list_info(self, ref: tuple[str, str]) -> dict[str, Any]:
        """The list's definition, or a permanent CrmError saying why it cannot be used."""
        kind, value = ref
        if kind == "list":
            path, label = f"{LISTS}/{quote(value, safe='')}", f"list {value}"
        else:
            path = f"{LISTS}/object-type-id/{CONTACT_OBJECT_TYPE}/name/{quote(value, safe='')}"
            label = f"list named {value!r}"
        response = await self._call("GET", path, accept={404})
        info = _json(response).get("list") if response.status_code == 200 else None
        problem = list_problem(info, label, self.crm_message(response))
        if problem:
            raise self.crm_error("GET", path, response.status_code, problem, transient=False)
        assert info is not None
        return info

    async def _lookup(self, emails: set[str]) -> tuple[dict[str, str], dict[str, Outcome]]:
        """Record ids of existing contacts by email: cache first, then batch/read."""
        cached = {e: self._ids.get(e) for e in emails}  # a hit refreshes its place in the LRU
        found = {e: record_id for e, record_id in cached.items() if record_id is not None}
        unknown = sorted(emails - found.keys())
        errors: dict[str, Outcome] = {}
        for part_found, part_errors in await asyncio.gather(*map(self._read, _chunks(unknown, BATCH_INPUTS))):
            found.update(part_found)
            errors.update(part_errors)
        return found, errors

    async def _read(self, emails: list[str]) -> tuple[dict[str, str], dict[str, Outcome]]:
        body = {"idProperty": "email", "inputs": [{"id": e} for e in emails],
                "properties": ["email"], "propertiesWithHistory": []}  # fmt: skip
        try:
            response = await self._call("POST", BATCH_READ, json=body)
        except CrmError as error:
            return {}, dict.fromkeys(emails, error.outcome)
        payload = _json(response)
        found = ids_by_email(payload.get("results"), emails)
        self._remember(found)
        # 207 lists absent emails as OBJECT_NOT_FOUND: those are "not in HubSpot", the
        # caller's business. Any other per-input error fails only the inputs it names.
        errors = self._item_errors(payload, set(emails) - found.keys(), BATCH_READ, attribute_only=True)
        return found, errors

    async def _create(self, names: Mapping[str, str | None]) -> tuple[dict[str, str], dict[str, Outcome]]:
        found: dict[str, str] = {}
        errors: dict[str, Outcome] = {}
        for emails in _chunks(sorted(names), BATCH_INPUTS):
            inputs = [{"id": e, "idProperty": "email", "properties": properties(e, names[e])} for e in emails]
            try:
                response = await self._call("POST", BATCH_UPSERT, json={"inputs": inputs})
            except CrmError as error:
                errors.update(dict.fromkeys(emails, error.outcome))
                continue
            payload = _json(response)
            created = ids_by_email(payload.get("results"), emails)
            self._remember(created)
            found.update(created)
            errors.update(self._item_errors(payload, set(emails) - created.keys(), BATCH_UPSERT, attribute_only=False))
        return found, errors

    async def _membership(self, list_id: str, action: str, record_ids: list[str]) -> set[str]:
        """Add or remove records; return the ids HubSpot reported missing."""
        path = f"{LISTS}/{quote(list_id, safe='')}/memberships/{action}"
        missing: set[str] = set()
        for ids in _chunks(list(dict.fromkeys(record_ids)), MEMBERSHIP_IDS):
            response = await self._call("PUT", path, json=ids, accept={404})
            if response.status_code == 404:
                # A list resolved by name may have been recreated: look the name up again next time.
                self._list_names = {n: i for n, i in self._list_names.items() if i != list_id}
                message = f"HubSpot has no list {list_id} (deleted? check the mapping): {self.crm_message(response)}"
                raise self.crm_error("PUT", path, 404, message, transient=False)
            missing.update(str(x) for x in _json(response).get("recordIdsMissing") or ())
        return missing

    def _item_errors(
        self, payload: Mapping[str, Any], pending: set[str], path: str, *, attribute_only: bool
    ) -> dict[str, Outcome]:
        """Outcomes for inputs a 207 answer reports as failed (other than "not found")."""
        errors: dict[str, Outcome] = {}
        first: str | None = None
        for item in payload.get("errors") or ():
            if not isinstance(item, dict) or item.get("category") == "OBJECT_NOT_FOUND":
                continue
            text = f"{item.get('category', 'ERROR')}: {item.get('message', 'no message')}"
            first = first or text
            context: dict[str, Any] = item["context"] if isinstance(item.get("context"), dict) else {}
            named = {norm(str(x)) for key in ("ids", "id", "email") for x in context.get(key) or ()}
            outcome = self.crm_error("POST", path, 207, text, transient=False).outcome
            errors.update(dict.fromkeys(pending & named, outcome))
        if not attribute_only:
            text = first or "HubSpot returned no record for this contact"
            outcome = self.crm_error("POST", path, 207, text, transient=False).outcome
            errors.update(dict.fromkeys(pending - errors.keys(), outcome))
        return errors

    def _remember(self, ids: Mapping[str, str]) -> None:
        for email, record_id in ids.items():
            self._ids.put(email, record_id)

    def _access_message(self, response: httpx.Response) -> str:
        said = self.crm_message(response)
        if response.status_code == 401:
            return f"the private app token was refused (revoked, rotated or mistyped; check token:): {said}"
        scopes = required_scopes(_json(response))
        if scopes:
            return (f"the private app lacks scope {' or '.join(scopes)}; add it in HubSpot "
                    f"(Settings > Integrations > Private apps) and use the new token: {said}")  # fmt: skip
        return f"the private app may not do this (scopes or permissions): {said}"

    # -- resync --verify -----------------------------------------------------------------

    async def members(self, options: Mapping[str, Any]) -> AsyncIterator[str]:
        """The emails of a list's members: ``GET .../memberships`` pages, then contacts by record id."""
        list_id = await self._list_id(_list_ref(options))
        path, after = f"{LISTS}/{quote(list_id, safe='')}/memberships", None
        while True:
            params: dict[str, Any] = {"limit": MEMBERSHIPS_PAGE, **({"after": after} if after else {})}
            page = _json(await self._call("GET", path, params=params))
            ids = [str(r["recordId"]) for r in page.get("results") or () if isinstance(r, dict) and "recordId" in r]
            for chunk in _chunks(ids, BATCH_INPUTS):
                body = {"inputs": [{"id": i} for i in chunk], "properties": ["email"], "propertiesWithHistory": []}
                for item in _json(await self._call("POST", BATCH_READ, json=body)).get("results") or ():
                    email = (item.get("properties") or {}).get("email") if isinstance(item, dict) else None
                    if isinstance(email, str) and email:
                        yield email
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return


# -- small pure helpers --------------------------------------------------------------


def _list_ref(options: Mapping[str, Any]) -> tuple[str, str]:
    kind = "list" if "list" in options else "list_name"
    return (kind, str(options[kind]))


def _chunks(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _json(response: httpx.Response) -> dict[str, Any]:
    return json_object(response) or {}


def _missing(change: Change) -> Outcome:
    if change.action == "remove":
        return Outcome.done()  # a contact HubSpot does not have is in no list: already so
    return Outcome.skipped(f"contact {mask_email(change.email)} not in HubSpot and create_missing_contacts is off")
