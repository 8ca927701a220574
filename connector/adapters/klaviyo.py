"""``type: klaviyo``: a Plain customer group as a Klaviyo list.

A batch costs few calls, each idempotent (docs/targets/klaviyo.md):

1. profile ids by email: ``GET /api/profiles?filter=any(email,[…])``, 100 emails a call
   (the page size cap), cached per email for the adapter's life (absence is not cached);
2. ``POST`` / ``DELETE /api/lists/{id}/relationships/profiles``, 1,000 profiles a call:
   adding a member or removing a non-member is a no-op answered 204;
3. only with ``create_missing_contacts``: one ``POST /api/profile-bulk-import-jobs`` for
   the joiners Klaviyo does not know, with the list as the job's relationship, so the job
   creates them *in* the list. The job is asynchronous: it is read back once or twice, and
   a job still running is a ``retry`` (the next attempt finds the profiles and adds them).

Klaviyo limits list relationships and bulk imports to 10/s burst and 150/min steady per
account: the target's limiter paces the burst and a second limiter here the steady rate.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx
import orjson
from pydantic import SecretStr, field_validator

from connector.adapters.base import Change, OptionsError, Outcome, TargetConfig
from connector.adapters.http import CrmError, HttpAdapter, HttpTargetConfig
from connector.adapters.ratelimit import RateLimit, RateLimiter
from connector.redact import mask_email

__all__ = ["DEFAULT_REVISION", "KlaviyoAdapter", "KlaviyoConfig"]

#: the revision of the spec this adapter was written against (specs/klaviyo, 2026-07-15)
DEFAULT_REVISION = "2026-07-15"
#: list relationships and bulk imports: 150 a minute per account (x-klaviyo-ratelimit)
STEADY_LIMIT = RateLimit(requests=150, per_seconds=60, max_concurrency=4)
_LOOKUP_CHUNK = 100  # page[size] max of GET /api/profiles
_MEMBERS_CHUNK = 1000  # "This endpoint accepts a maximum of 1000 profiles per call."
_JSON_API = "application/vnd.api+json"
_THROTTLE_DETAIL = re.compile(r"available in (\d+(?:\.\d+)?) second", re.IGNORECASE)


class KlaviyoConfig(HttpTargetConfig):
    """``{type: klaviyo, api_key: ${KLAVIYO_API_KEY}}``; ``revision`` pins the API version."""

    api_key: SecretStr
    revision: str = DEFAULT_REVISION
    create_missing_contacts: bool = False

    @field_validator("api_key")
    @classmethod
    def _check_key(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().strip()) < 8:
            raise ValueError("api_key is empty or too short (is ${KLAVIYO_API_KEY} set?)")
        return value

    @field_validator("revision")
    @classmethod
    def _check_revision(cls, value: str) -> str:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?", value):
            raise ValueError("revision is a dated Klaviyo API revision such as 2026-07-15")
        return value


def _key(email: str) -> str:
    return email.strip().lower()


class _ProfileIds:
    """email -> Klaviyo profile id, least recently used dropped first."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, str] = OrderedDict()

    def get(self, email: str) -> str | None:
        found = self._ids.get(email)
        if found is not None:
            self._ids.move_to_end(email)
        return found

    def put(self, email: str, profile_id: str) -> None:
        self._ids[email] = profile_id
        self._ids.move_to_end(email)
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)

    def forget(self, emails: Sequence[str]) -> None:
        for email in emails:
            self._ids.pop(email, None)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _filter_value(emails: Sequence[str]) -> str:
    quoted = ",".join(f'"{email}"' for email in emails)
    return f"equals(email,{quoted})" if len(emails) == 1 else f"any(email,[{quoted}])"


class KlaviyoAdapter(HttpAdapter):
    """Adds and removes Klaviyo list members; see the module docstring for the calls."""

    type_name: ClassVar[str] = "klaviyo"
    config_model: ClassVar[type[TargetConfig]] = KlaviyoConfig
    default_base_url: ClassVar[str] = "https://a.klaviyo.com"
    # The burst limit of the strictest call we make (list relationships: 10/s); profile
    # reads allow 75/s, so one pace serves both.
    default_rate_limit: ClassVar[RateLimit] = RateLimit(requests=10, per_seconds=1.0, max_concurrency=4)
    max_batch: ClassVar[int] = _MEMBERS_CHUNK
    #: how often a bulk import job is read back before the change is left to a retry
    import_polls: ClassVar[tuple[float, ...]] = (1.0, 2.0)

    config: KlaviyoConfig

    def __init__(self, name: str, config: TargetConfig, **kwargs: Any) -> None:
        super().__init__(name, config, **kwargs)
        self._ids = _ProfileIds()
        self._steady: RateLimiter | None = None

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        if set(options) != {"list"}:
            raise OptionsError("klaviyo needs exactly one option: list: <list id>")
        list_id = options["list"]
        if not isinstance(list_id, str) or not re.fullmatch(r"[A-Za-z0-9]+", list_id):
            raise OptionsError("list must be a Klaviyo list id such as Y6nRLr (Lists > list > Settings)")
        return {"list": list_id}

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Klaviyo-API-Key {self.config.api_key.get_secret_value()}"}

    def default_headers(self) -> dict[str, str]:
        return {"revision": self.config.revision, "Accept": _JSON_API}

    async def start(self) -> None:
        await super().start()
        steady = STEADY_LIMIT.model_copy(update={"max_concurrency": self.rate_limit.max_concurrency})
        self._steady = RateLimiter(steady, clock=self._clock)

    # -- vendor rules (hooks of the adapter kit) --------------------------------------

    def retry_delay(self, response: httpx.Response) -> float | None:
        """``Retry-After`` seconds; else the delay in the throttle error's detail."""
        header = response.headers.get("retry-after", "").strip()
        if re.fullmatch(r"\d+(\.\d+)?", header):
            return float(header)
        match = _THROTTLE_DETAIL.search(self.error_message(response)) if response.status_code == 429 else None
        return float(match.group(1)) if match else None

    def error_message(self, response: httpx.Response) -> str:
        """JSON:API ``errors[]``: ``code: detail`` of the first, and how many more."""
        try:
            errors = response.json().get("errors")
        except (ValueError, AttributeError):
            errors = None
        if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
            return " ".join(response.text.split())[:300] or response.reason_phrase
        first = errors[0]
        text = first.get("detail") or first.get("title") or "error"
        code = first.get("code")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return (f"{code}: {text}" if code else str(text)) + more

    # -- check --online ---------------------------------------------------------------

    async def check_online(self, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
        """The key reads profiles, and every mapped list exists. Read-only."""
        try:
            await self.request("GET", "/api/profiles", params={"page[size]": "1", "fields[profile]": "email"})
        except CrmError as error:
            return [error.reason + _scope_hint(error, "profiles:read")]
        problems = []
        for list_id in sorted({str(d["list"]) for d in destinations if "list" in d}):
            try:
                await self.request("GET", f"/api/lists/{list_id}")
            except CrmError as error:
                hint = " (no such list in this account)" if error.status == 404 else _scope_hint(error, "lists:read")
                problems.append(error.reason + hint)
        return problems

    # -- apply ------------------------------------------------------------------------

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(changes)
        emails: dict[int, str] = {}
        for index, change in enumerate(changes):
            if not change.email or not change.email.strip():
                outcomes[index] = Outcome.skipped("customer has no email")
            elif '"' in change.email or "\\" in change.email:
                outcomes[index] = Outcome.failed(
                    f"{self.name}: {mask_email(change.email)}: a quote or backslash cannot be written in Klaviyo's filter"
                )
            else:
                emails[index] = _key(change.email)
        failed = await self._resolve(sorted(set(emails.values())))
        groups: dict[tuple[str, str], list[int]] = {}
        for index, email in emails.items():
            if email in failed:
                outcomes[index] = failed[email]
            else:
                groups.setdefault((str(changes[index].options["list"]), changes[index].action), []).append(index)
        for (list_id, action), indexes in groups.items():
            for index, outcome in zip(indexes, await self._apply_group(list_id, action, indexes, emails), strict=True):
                outcomes[index] = outcome
        return [o if o is not None else Outcome.retry("no outcome") for o in outcomes]

    async def _apply_group(
        self, list_id: str, action: str, indexes: list[int], emails: dict[int, str]
    ) -> list[Outcome]:
        """One list, one action: members by id in chunks; joiners Klaviyo lacks imported."""
        known = {i: self._ids.get(emails[i]) for i in indexes}
        missing = [i for i in indexes if known[i] is None]
        results: dict[int, Outcome] = {}
        if action == "remove":  # a profile Klaviyo does not have is in no list: as wanted
            results.update(dict.fromkeys(missing, Outcome.done()))
        elif not self.config.create_missing_contacts:
            for i in missing:
                results[i] = Outcome.skipped(
                    f"{mask_email(emails[i])} not in Klaviyo and create_missing_contacts is off"
                )
        elif missing:
            imported = await self._import(list_id, sorted({emails[i] for i in missing}))
            results.update(dict.fromkeys(missing, imported))
        present = [i for i in indexes if known[i] is not None]
        for chunk in _chunks(present, _MEMBERS_CHUNK):
            ids = sorted({str(known[i]) for i in chunk})
            try:
                await self._members(action, list_id, ids)
                outcome = Outcome.done()
            except CrmError as error:
                if not error.transient:  # a stale cached id may be why: look them up afresh next time
                    self._ids.forget([emails[i] for i in chunk])
                outcome = error.outcome
            results.update(dict.fromkeys(chunk, outcome))
        return [results[i] for i in indexes]

    async def _members(self, action: str, list_id: str, profile_ids: list[str]) -> None:
        body = {"data": [{"type": "profile", "id": pid} for pid in profile_ids]}
        method = "POST" if action == "add" else "DELETE"
        await self._steady_call(method, f"/api/lists/{list_id}/relationships/profiles", body)

    async def _steady_call(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        if self._steady is None:
            raise RuntimeError(f"{self.name}: start() was not called")
        async with self._steady.slot():
            return await self.request(method, path, content=orjson.dumps(body), headers={"Content-Type": _JSON_API})

    # -- profiles ---------------------------------------------------------------------

    async def _resolve(self, emails: list[str]) -> dict[str, Outcome]:
        """Cache the ids of ``emails`` Klaviyo has; return the outcome for those whose
        lookup failed (their changes cannot go further in this batch)."""
        unknown = [e for e in emails if self._ids.get(e) is None]
        chunks = _chunks(unknown, _LOOKUP_CHUNK)
        answers = await asyncio.gather(*(self._lookup(chunk) for chunk in chunks), return_exceptions=True)
        failed: dict[str, Outcome] = {}
        for chunk, answer in zip(chunks, answers, strict=True):
            if isinstance(answer, CrmError):
                failed.update(dict.fromkeys(chunk, answer.outcome))
            elif isinstance(answer, BaseException):
                raise answer
        return failed

    async def _lookup(self, emails: Sequence[str]) -> None:
        wanted = set(emails)
        params: dict[str, str] | None = {
            "filter": _filter_value(emails),
            "fields[profile]": "email",
            "page[size]": str(_LOOKUP_CHUNK),
        }
        path = "/api/profiles"
        while path:
            body = self._document(await self.request("GET", path, params=params))
            for item in body.get("data") or ():
                attributes = item.get("attributes") if isinstance(item, dict) else None
                email = attributes.get("email") if isinstance(attributes, dict) else None
                if isinstance(email, str) and _key(email) in wanted and isinstance(item.get("id"), str):
                    self._ids.put(_key(email), item["id"])
            following = _object(body.get("links")).get("next")
            path, params = (following, None) if isinstance(following, str) else ("", None)

    async def _import(self, list_id: str, emails: list[str]) -> Outcome:
        """Create the missing joiners in the list through one bulk import job."""
        body = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": [{"type": "profile", "attributes": {"email": e}} for e in emails]}},
                "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}},
            }
        }
        path = "/api/profile-bulk-import-jobs"
        try:
            job = _job(self._document(await self._steady_call("POST", path, body)))
            for pause in self.import_polls:
                if job["status"] in ("complete", "cancelled"):
                    break
                await asyncio.sleep(pause)
                job = _job(self._document(await self.request("GET", f"{path}/{job['id']}")))
        except CrmError as error:
            return error.outcome
        if job["status"] == "complete" and not job["failed"]:
            return Outcome.done()
        # Still running, cancelled, or some rows refused: the next attempt looks the
        # profiles up again and adds whoever the job did create.
        failed = f", {job['failed']} failed" if job["failed"] else ""
        return Outcome.retry(f"{self.name}: profile import job {job['id']} is {job['status']}{failed}")

    def _document(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            request = response.request
            raise self.crm_error(
                request.method, request.url.path, response.status_code, "answer is not a JSON object", transient=True
            )
        return body


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _job(document: dict[str, Any]) -> dict[str, Any]:
    """A bulk import job's id, status and failed count (absent fields read as unknown)."""
    data = _object(document.get("data"))
    attributes = _object(data.get("attributes"))
    failed = attributes.get("failed_count")
    return {
        "id": str(data.get("id") or ""),
        "status": str(attributes.get("status") or "unknown"),
        "failed": failed if isinstance(failed, int) else 0,
    }


def _scope_hint(error: CrmError, scope: str) -> str:
    if error.status == 401:
        return " (check api_key: a private API key, pk_…)"
    if error.status == 403:
        return f" (the key lacks the {scope} scope)"
    return ""
