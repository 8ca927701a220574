"""``type: brevo``: a Plain customer group as membership of one Brevo contact list.

A mapping names a list by its numeric id (``list: 12``). Per batch and list: one
``POST /v3/contacts/lists/{id}/contacts/remove`` and one ``…/add`` per 150 emails (Brevo's
documented maximum), removes first so that when two groups share a list the add wins.

Brevo answers both with ``{"contacts": {"success": [...], "failure": [...]}}``, or with 400
``invalid_parameter`` when nothing changed ("Contact already in list and/or does not
exist"). For a remove, "failure" means not in the list or not in Brevo: already so, done.
For an add it is ambiguous, so each failed email is looked up (``GET /v3/contacts/{email}``):
already in the list is done, unknown to Brevo is "not in CRM" or created with the list
(``create_missing_contacts``), anything else is a failure. See docs/targets/brevo.md.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from connector.adapters import (
    Change,
    CrmError,
    HttpAdapter,
    HttpTargetConfig,
    Ledger,
    OptionsError,
    Outcome,
    RateLimit,
    TargetConfig,
    json_object,
    secret_check,
)
from connector.redact import mask_email

__all__ = ["EMAILS_PER_CALL", "BrevoAdapter", "BrevoConfig"]

#: Brevo's documented maximum of emails per list add/remove call
EMAILS_PER_CALL = 150

Verb = Literal["add", "remove"]


class BrevoConfig(HttpTargetConfig):
    """``{type: brevo, api_key: ${BREVO_API_KEY}, create_missing_contacts: false}``."""

    api_key: SecretStr
    create_missing_contacts: bool = False

    _key_is_set = secret_check("api_key", "api_key is empty (is the environment variable set?)")


class BrevoAdapter(HttpAdapter):
    """List membership in Brevo; see the module docstring."""

    type_name: ClassVar[str] = "brevo"
    config_model: ClassVar[type[TargetConfig]] = BrevoConfig
    default_base_url: ClassVar[str] = "https://api.brevo.com"
    # /v3/contacts/* allows 10 requests per second (20 on Enterprise: raise it with
    # rate_limit: {requests: 20}).
    default_rate_limit: ClassVar[RateLimit] = RateLimit(requests=10, per_seconds=1, max_concurrency=4)
    # Four full calls per list and verb; a batch finishes in a few seconds.
    max_batch: ClassVar[int] = 4 * EMAILS_PER_CALL

    config: BrevoConfig

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        value = options.get("list")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if set(options) != {"list"} or isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise OptionsError("brevo needs exactly one option: list: <numeric Brevo list id>")
        return {"list": value}

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.config.api_key.get_secret_value()}

    # -- vendor hooks of the HTTP layer ---------------------------------------------

    def retry_delay(self, response: httpx.Response) -> float | None:
        """Brevo's 429 says when its window resets in ``x-sib-ratelimit-reset`` (seconds)."""
        if response.status_code == 429:
            reset = _seconds(response.headers.get("x-sib-ratelimit-reset"))
            if reset is not None:
                return reset
        return super().retry_delay(response)

    def error_message(self, response: httpx.Response) -> str:
        """Brevo's errors are ``{"code", "message"}``."""
        body = json_object(response) or {}
        code, message = body.get("code"), body.get("message")
        if isinstance(message, str) and message:
            return f"{code}: {message}" if isinstance(code, str) and code else message
        return super().error_message(response)

    # -- check --online ---------------------------------------------------------------

    async def check_online(self, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
        """The key works (``GET /v3/account``) and every mapped list exists."""
        try:
            await self._call("GET", "/v3/account")
        except CrmError as error:
            return [error.reason]
        problems: list[str] = []
        for list_id in sorted({int(options["list"]) for options in destinations}):
            path = f"/v3/contacts/lists/{list_id}"
            try:
                found = await self._call("GET", path, accept={404})
            except CrmError as error:
                problems.append(error.reason)
                continue
            if found.status_code == 404:
                problems.append(f"{self.name}: list {list_id} not found in Brevo (check the mapping's list:)")
        return problems

    # -- apply ------------------------------------------------------------------------

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        ledger = Ledger(self.name, changes)
        groups: dict[tuple[int, Verb], list[int]] = {}
        for i in ledger.skip_without_email("Brevo contacts are matched by email"):
            groups.setdefault((int(changes[i].options["list"]), changes[i].action), []).append(i)
        lists = sorted({list_id for list_id, _ in groups})
        await asyncio.gather(*(self._apply_list(ledger, groups, list_id) for list_id in lists))
        return ledger.result()

    async def _apply_list(self, ledger: Ledger, groups: Mapping[tuple[int, Verb], list[int]], list_id: int) -> None:
        changes = ledger.changes
        for verb in ("remove", "add"):  # removes first: an add for the same list wins
            by_email: dict[str, list[int]] = {}
            for i in groups.get((list_id, verb), []):
                by_email.setdefault(_norm(changes[i].email), []).append(i)
            emails = list(by_email)
            for start in range(0, len(emails), EMAILS_PER_CALL):
                chunk = emails[start : start + EMAILS_PER_CALL]
                settled = await self._send(list_id, verb, chunk, changes, by_email)
                for email, outcome in settled.items():
                    ledger.settle(by_email[email], outcome)

    async def _send(
        self, list_id: int, verb: Verb, emails: list[str], changes: Sequence[Change], by_email: Mapping[str, list[int]]
    ) -> dict[str, Outcome]:
        """One add or remove call for ``emails``; the outcome per email."""
        path = f"/v3/contacts/lists/{list_id}/contacts/{verb}"
        try:
            response = await self._call("POST", path, json={"emails": emails}, accept={400, 404})
        except CrmError as error:
            return dict.fromkeys(emails, error.outcome)
        if response.status_code == 404:
            message = f"Brevo has no list {list_id} (check the mapping): {self.error_message(response)}"
            return dict.fromkeys(emails, self.crm_error("POST", path, 404, message, transient=False).outcome)
        if response.status_code == 400 and not _nothing_changed(response):
            refused = self.crm_error("POST", path, 400, self.error_message(response), transient=False)
            return dict.fromkeys(emails, refused.outcome)
        succeeded = _succeeded(response)
        if verb == "remove":
            return dict.fromkeys(emails, Outcome.done())  # not in the list or not in Brevo: already so
        failed = [e for e in emails if e not in succeeded]
        settled = dict.fromkeys((e for e in emails if e in succeeded), Outcome.done())
        found = await asyncio.gather(*(self._explain_failed_add(list_id, e, changes[by_email[e][0]]) for e in failed))
        settled.update(zip(failed, found, strict=True))
        return settled

    async def _explain_failed_add(self, list_id: int, email: str, change: Change) -> Outcome:
        """An add listed under "failure": already a member, not in Brevo, or refused."""
        path = f"/v3/contacts/{quote(email, safe='@')}"
        try:
            response = await self._call("GET", path, accept={404})
            if response.status_code == 200:
                if list_id in ((json_object(response) or {}).get("listIds") or ()):
                    return Outcome.done()
                add = f"/v3/contacts/lists/{list_id}/contacts/add"
                message = (
                    f"Brevo refused to add contact {email} to list {list_id} (listed under failure, yet it exists)"
                )
                return self.crm_error("POST", add, 201, message, transient=False).outcome
            if not self.config.create_missing_contacts:
                reason = f"contact {mask_email(change.email)} not in Brevo and create_missing_contacts is off"
                return Outcome.skipped(reason)
            # updateEnabled: someone creating the contact meanwhile turns this into an update
            # that still adds the list; no attributes, as accounts name them differently.
            body = {"email": email, "listIds": [list_id], "updateEnabled": True}
            await self._call("POST", "/v3/contacts", json=body)
            return Outcome.done()
        except CrmError as error:
            return error.outcome

    # -- Brevo calls ----------------------------------------------------------------

    async def _call(self, method: str, path: str, *, accept: Collection[int] = (), **kwargs: Any) -> httpx.Response:
        """``request`` that words a refused key, and slows down when Brevo's window is spent."""
        response = await self.request(method, path, accept={401, 403, *accept}, **kwargs)
        if response.status_code in (401, 403):
            message = (
                "the api_key was refused (revoked or mistyped; if the account restricts API access "
                f"to authorised IPs, add this server's address): {self.error_message(response)}"
            )
            raise self.crm_error(method, path, response.status_code, message, transient=False)
        remaining = _seconds(response.headers.get("x-sib-ratelimit-remaining"))
        reset = _seconds(response.headers.get("x-sib-ratelimit-reset"))
        if remaining is not None and remaining <= 0 and reset:
            # Another client shares this key's window: wait for its reset instead of earning a 429.
            self.limiter.pause_for(reset)
        return response


def _norm(email: str | None) -> str:
    # Brevo stores emails lower-cased and answers with them so.
    return (email or "").strip().lower()


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def _nothing_changed(response: httpx.Response) -> bool:
    """Brevo's 400 for a call where every email failed: already (not) in the list, or unknown."""
    body = json_object(response) or {}
    message = str(body.get("message", "")).lower()
    return body.get("code") == "invalid_parameter" and ("already" in message or "does not exist" in message)


def _succeeded(response: httpx.Response) -> set[str]:
    contacts = (json_object(response) or {}).get("contacts")
    success = contacts.get("success") if isinstance(contacts, dict) else None
    return {_norm(str(e)) for e in success or ()} if response.status_code < 300 else set()
