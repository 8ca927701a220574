"""``type: salesforce``: a Plain customer group as membership of one Salesforce Campaign.

A mapping names a Campaign (``campaign: 701…``, optional member ``status``). Per batch, removes
first (when two groups share a campaign the add wins): SOQL on ``CampaignMember`` by email,
then ``DELETE /composite/sobjects?ids=`` per 200; adds: people by email with SOQL on Contact,
then Lead (``match``), then ``POST /composite/sobjects`` per 200 (``allOrNone: false``;
``DUPLICATE_VALUE`` is done). Nobody is created. OAuth client credentials or refresh token;
the token's ``instance_url`` is the API host; a 401 gets one fresh token. The org's rolling
24-hour API count (``Sforce-Limit-Info``, 403 ``REQUEST_LIMIT_EXCEEDED``) is read on every
answer: see docs/targets/salesforce.md.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

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
    join_url,
)
from connector.adapters.salesforce_soql import QUERY_CHARS, soql_in, soql_list, soql_literal
from connector.redact import mask_email

__all__ = ["RECORDS_PER_CALL", "SalesforceAdapter", "SalesforceConfig"]

logger = logging.getLogger(__name__)

#: composite sObject collections take at most 200 records (POST) or ids (DELETE) a call
RECORDS_PER_CALL = 200
#: the org's API request count is a rolling 24 hours
USAGE_WINDOW_SECONDS = 86_400.0
#: how often to look again once the reserve is reached or the org's limit was hit
QUOTA_RECHECK_SECONDS = 3600.0

_CAMPAIGN_ID = re.compile(r"^701[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")
_USAGE = re.compile(r"(?:^|[\s;,])api-usage=(\d+)/(\d+)")
_DONE_CODES = {"DUPLICATE_VALUE", "ENTITY_IS_DELETED"}  # already a member / already removed

Match = Literal["contact", "lead", "contact_then_lead"]


class SalesforceConfig(HttpTargetConfig):
    """``targets.<name>`` for ``type: salesforce``. ``base_url``, when set, replaces the
    token's ``instance_url`` as the API host (a proxy); ``login_url`` is where tokens come from."""

    login_url: str = "https://login.salesforce.com"
    client_id: str
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    api_version: str = "62.0"
    match: Match = "contact_then_lead"
    api_reserve_percent: float = Field(5.0, ge=0, lt=50)

    @field_validator("login_url")
    @classmethod
    def _check_login_url(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host or url.query or url.userinfo:
            raise ValueError("login_url must be an http(s) URL such as https://MyDomain.my.salesforce.com")
        return value.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not re.fullmatch(r"\d{2,3}\.0", value.strip().removeprefix("v")):
            raise ValueError('api_version must look like "62.0"')
        return value.strip().removeprefix("v")

    @model_validator(mode="after")
    def _check_credentials(self) -> SalesforceConfig:
        # An unset ${VAR} expands to "": say which one instead of failing at the first call.
        if not self.client_id.strip():
            raise ValueError("client_id is empty: set the connected app's consumer key (is the variable set?)")
        for name in ("client_secret", "refresh_token"):
            value = getattr(self, name)
            if value is not None and not value.get_secret_value().strip():
                raise ValueError(f"{name} is empty (is the environment variable set?)")
        if self.client_secret is None and self.refresh_token is None:
            raise ValueError("set client_secret (client-credentials flow) or refresh_token (refresh-token flow)")
        return self


@dataclass(frozen=True)
class _Session:
    access_token: str
    instance_url: str


class SalesforceAdapter(HttpAdapter):
    """Campaign membership in Salesforce; see the module docstring."""

    type_name: ClassVar[str] = "salesforce"
    config_model: ClassVar[type[TargetConfig]] = SalesforceConfig
    # Salesforce has no per-second limit, only the org's daily count and 25 long-running
    # requests at once; this pace is a courtesy to the org's other integrations.
    default_rate_limit: ClassVar[RateLimit] = RateLimit(requests=25, per_seconds=1, max_concurrency=4)
    max_batch: ClassVar[int] = 2 * RECORDS_PER_CALL

    config: SalesforceConfig

    def __init__(self, name: str, config: TargetConfig, **kwargs: Any) -> None:
        super().__init__(name, config, **kwargs)
        self._session: _Session | None = None
        self._session_lock = asyncio.Lock()

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        usage = "salesforce takes campaign: <Campaign Id, 701…> and optionally status: <member status>"
        campaign, status = options.get("campaign"), options.get("status")
        if "campaign" not in options or not set(options) <= {"campaign", "status"}:
            raise OptionsError(usage)
        if not isinstance(campaign, str) or not _CAMPAIGN_ID.match(campaign.strip()):
            raise OptionsError(f"campaign must be a 15- or 18-character Campaign Id starting with 701; {usage}")
        if status is not None and (not isinstance(status, str) or not status.strip()):
            raise OptionsError(f"status must be a member status label such as Sent or Responded; {usage}")
        return {"campaign": campaign.strip(), **({"status": status.strip()} if status else {})}

    def vendor_base_url(self) -> str:
        return self._session.instance_url if self._session else self.config.login_url

    def secrets(self) -> list[str]:
        extra = [self._session.access_token] if self._session else []
        return sorted({*super().secrets(), *extra}, key=len, reverse=True)

    # -- vendor hooks of the HTTP layer ---------------------------------------------

    def is_transient(self, response: httpx.Response) -> bool:
        """The org's limits answer 403 ``REQUEST_LIMIT_EXCEEDED``, not 429: worth retrying."""
        limited = response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in _codes(response)
        return limited or super().is_transient(response)

    def retry_delay(self, response: httpx.Response) -> float | None:
        """The org's daily count (``TotalRequests``): check back in an hour. Other limits
        (``ConcurrentPerOrgLongTxn``) clear in seconds: the layer's own backoff."""
        if response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in _codes(response):
            return QUOTA_RECHECK_SECONDS if "TotalRequests" in response.text else None
        return super().retry_delay(response)

    def error_message(self, response: httpx.Response) -> str:
        """API errors are ``[{"errorCode", "message"}]``; OAuth errors ``{"error", "error_description"}``."""
        body = _json(response)
        if isinstance(body, list) and body and isinstance(body[0], dict):
            first = body[0]
            return f"{first.get('errorCode', 'ERROR')}: {first.get('message', '')}".strip()
        if isinstance(body, dict) and "error" in body:
            return f"{body['error']}: {body.get('error_description', '')}".strip()
        return super().error_message(response)

    # -- check --online ---------------------------------------------------------------

    async def check_online(self, destinations: Sequence[Mapping[str, Any]] = ()) -> list[str]:
        """Credentials work, the user may add and delete campaign members, and every mapped
        campaign exists and knows the mapped member status."""
        try:
            describe = _json(await self._call("GET", self._api("/sobjects/CampaignMember/describe")))
            for kind in self._objects():
                await self._query(f"SELECT Id FROM {kind} LIMIT 1")
            wanted = {str(o["campaign"]): o.get("status") for o in destinations}
            found = (
                await self._query(f"SELECT Id, Name FROM Campaign WHERE Id IN ({soql_list(sorted(wanted))})")
                if wanted
                else []
            )
            statuses = await self._campaign_statuses(sorted(wanted)) if wanted else {}
        except CrmError as error:
            return [error.reason]
        problems = [f"{self.name}: the user may not {verb} CampaignMember records (profile or permission set)"
                    for verb, flag in (("create", "createable"), ("delete", "deletable")) if not describe.get(flag)]  # fmt: skip
        known = {str(r["Id"])[:15] for r in found}
        for options in destinations:
            campaign, status = str(options["campaign"]), options.get("status")
            if campaign[:15] not in known:
                problems.append(
                    f"{self.name}: campaign {campaign} not found in Salesforce (or not visible to the user)"
                )
            elif status and status not in statuses.get(campaign[:15], set()):
                problems.append(f"{self.name}: campaign {campaign} has no member status {status!r}")
        return list(dict.fromkeys(problems))

    async def _campaign_statuses(self, campaigns: list[str]) -> dict[str, set[str]]:
        rows = await self._query(
            f"SELECT CampaignId, Label FROM CampaignMemberStatus WHERE CampaignId IN ({soql_list(campaigns)})"
        )
        statuses: dict[str, set[str]] = {}
        for row in rows:
            statuses.setdefault(str(row["CampaignId"])[:15], set()).add(str(row["Label"]))
        return statuses

    # -- apply ------------------------------------------------------------------------

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        ledger = Ledger(self.name, changes)
        removes: dict[str, list[int]] = {}
        adds: list[int] = []
        for i in ledger.skip_without_email("Salesforce people are matched by email"):
            if changes[i].action == "remove":
                removes.setdefault(str(changes[i].options["campaign"]), []).append(i)
            else:
                adds.append(i)
        for campaign, indices in removes.items():
            await self._remove(campaign, indices, ledger)
        if adds:
            await self._add(adds, ledger)
        return ledger.result()

    async def _remove(self, campaign: str, indices: list[int], ledger: Ledger) -> None:
        changes = ledger.changes
        by_email: dict[str, list[int]] = {}
        for i in indices:
            by_email.setdefault(_norm(changes[i].email), []).append(i)
        kinds = self._objects()
        try:
            members: dict[str, str] = {}  # member id -> email
            for chunk in soql_in(sorted(by_email), QUERY_CHARS // len(kinds)):
                who = " OR ".join(f"{kind}.Email IN ({chunk})" for kind in kinds)
                soql = (f"SELECT Id, {', '.join(f'{kind}.Email' for kind in kinds)} FROM CampaignMember "
                        f"WHERE CampaignId = {soql_literal(campaign)} AND ({who})")  # fmt: skip
                for row in await self._query(soql):
                    email = next((_norm(row[k]["Email"]) for k in kinds if isinstance(row.get(k), dict)), "")
                    members[str(row["Id"])] = email
            failed = await self._composite_delete(list(members))
        except CrmError as error:
            ledger.settle(indices, error.outcome)
            return
        # Not a member (no row) or deleted meanwhile: already so.
        for email, mine in by_email.items():
            failure = next((o for member, o in failed.items() if members[member] == email), None)
            ledger.settle(mine, failure or Outcome.done())

    async def _add(self, indices: list[int], ledger: Ledger) -> None:
        changes = ledger.changes
        try:
            people = await self._people({_norm(changes[i].email) for i in indices})
        except CrmError as error:
            ledger.settle(indices, error.outcome)
            return
        records: dict[tuple[str, str], list[int]] = {}  # (campaign, person id) -> changes
        statuses: dict[tuple[str, str], str | None] = {}
        for i in indices:
            change = changes[i]
            person = people.get(_norm(change.email))
            if person is None:
                ledger.settle([i], Outcome.skipped(f"{mask_email(change.email)} is no {self._wording()} in Salesforce"))
                continue
            key = (str(change.options["campaign"]), person)
            records.setdefault(key, []).append(i)
            statuses.setdefault(key, change.options.get("status"))
        keys = list(records)
        for start in range(0, len(keys), RECORDS_PER_CALL):
            part = keys[start : start + RECORDS_PER_CALL]
            results = await self._composite_insert([(c, p, statuses[(c, p)]) for c, p in part])
            for key, outcome in zip(part, results, strict=True):
                ledger.settle(records[key], outcome)

    async def _people(self, emails: set[str]) -> dict[str, str]:
        """Email -> Contact or Lead Id, per ``match``; the oldest record wins a shared email."""
        found: dict[str, str] = {}
        for kind in self._objects():
            wanted = sorted(emails - found.keys())
            converted = " AND IsConverted = false" if kind == "Lead" else ""  # converted leads take no campaigns
            for chunk in soql_in(wanted):
                soql = f"SELECT Id, Email FROM {kind} WHERE Email IN ({chunk}){converted} ORDER BY CreatedDate, Id"
                for row in await self._query(soql):
                    found.setdefault(_norm(row.get("Email")), str(row["Id"]))
        return found

    def _objects(self) -> list[str]:
        return {"contact": ["Contact"], "lead": ["Lead"]}.get(self.config.match, ["Contact", "Lead"])

    def _wording(self) -> str:
        return {"contact": "Contact", "lead": "unconverted Lead"}.get(self.config.match, "Contact or unconverted Lead")

    # -- Salesforce calls -----------------------------------------------------------

    def _api(self, path: str) -> str:
        return f"/services/data/v{self.config.api_version}{path}"

    async def _query(self, soql: str) -> list[dict[str, Any]]:
        """All records of a SOQL query, following ``nextRecordsUrl``."""
        body = _json(await self._call("GET", self._api("/query"), params={"q": soql}))
        records = list(body.get("records") or ())
        while not body.get("done", True) and body.get("nextRecordsUrl"):
            body = _json(await self._call("GET", str(body["nextRecordsUrl"])))
            records += body.get("records") or ()
        return records

    async def _composite_insert(self, members: list[tuple[str, str, str | None]]) -> list[Outcome]:
        records = [{"attributes": {"type": "CampaignMember"}, "CampaignId": campaign,
                    ("LeadId" if person.startswith("00Q") else "ContactId"): person,
                    **({"Status": status} if status else {})} for campaign, person, status in members]  # fmt: skip
        path = self._api("/composite/sobjects")
        try:
            results = _json(await self._call("POST", path, json={"allOrNone": False, "records": records}))
        except CrmError as error:
            return [error.outcome] * len(members)
        return [self._result_outcome("POST", path, r) for r in _aligned(results, len(members))]

    async def _composite_delete(self, ids: list[str]) -> dict[str, Outcome]:
        """Delete members by id, 200 a call; the outcome of each id that did not go."""
        path = self._api("/composite/sobjects")
        failed: dict[str, Outcome] = {}
        for start in range(0, len(ids), RECORDS_PER_CALL):
            part = ids[start : start + RECORDS_PER_CALL]
            results = _json(await self._call("DELETE", path, params={"ids": ",".join(part), "allOrNone": "false"}))
            for member, result in zip(part, _aligned(results, len(part)), strict=True):
                outcome = self._result_outcome("DELETE", path, result)
                if outcome.kind != "done":
                    failed[member] = outcome
        return failed

    def _result_outcome(self, method: str, path: str, result: Mapping[str, Any]) -> Outcome:
        if result.get("success"):
            return Outcome.done()
        errors = [e for e in result.get("errors") or () if isinstance(e, dict)]
        if errors and all(e.get("statusCode") in _DONE_CODES for e in errors):
            return Outcome.done()
        text = (
            "; ".join(f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}" for e in errors)
            or "no result for this record"
        )
        return self.crm_error(method, path, 200, text, transient=False).outcome

    async def _call(self, method: str, path: str, *, accept: Collection[int] = (), **kwargs: Any) -> httpx.Response:
        """An API call with the current token: one fresh token on a 401; usage noted."""
        for attempt in (1, 2):
            session = await self._current_session()
            base = self.config.base_url or session.instance_url
            headers = {"Authorization": f"Bearer {session.access_token}"}
            response = await self.request(
                method, join_url(base, path), accept={401, *accept}, headers=headers, **kwargs
            )
            self._note_usage(response)
            if response.status_code != 401:
                return response
            if attempt == 1:
                await self._renew(session)
        message = f"the session was refused even with a fresh token: {self.error_message(response)}"
        raise self.crm_error(method, path, 401, message, transient=False)

    async def _current_session(self) -> _Session:
        async with self._session_lock:
            if self._session is None:
                self._session = await self._fetch_token()
            return self._session

    async def _renew(self, stale: _Session) -> None:
        async with self._session_lock:
            if self._session is stale:  # many 401s at once: one new token
                self._session = await self._fetch_token()

    async def _fetch_token(self) -> _Session:
        config = self.config
        form = {
            "grant_type": "refresh_token" if config.refresh_token else "client_credentials",
            "client_id": config.client_id,
        }
        if config.refresh_token:
            form["refresh_token"] = config.refresh_token.get_secret_value()
        if config.client_secret:
            form["client_secret"] = config.client_secret.get_secret_value()
        url = f"{config.login_url}/services/oauth2/token"
        response = await self.request("POST", url, data=form, accept={400, 401, 403})
        body = _json(response)
        if response.status_code >= 400 or not isinstance(body, dict) or "access_token" not in body:
            flow = (
                "refresh_token"
                if config.refresh_token
                else "client_id/client_secret and the connected app's client credentials flow (run-as user)"
            )
            message = f"Salesforce refused the credentials (check {flow}): {self.error_message(response)}"
            raise self.crm_error("POST", url, response.status_code, message, transient=False)
        return _Session(str(body["access_token"]), str(body.get("instance_url") or config.login_url).rstrip("/"))

    def _note_usage(self, response: httpx.Response) -> None:
        found = _USAGE.search(response.headers.get("sforce-limit-info", ""))
        if not found:
            return
        used, limit = int(found.group(1)), int(found.group(2))
        reserve = limit * self.config.api_reserve_percent / 100
        left = limit - used
        if left <= reserve:
            logger.warning("%s: %d of %d daily API requests used; pausing to keep the reserve", self.name, used, limit)
            self.limiter.pause_for(QUOTA_RECHECK_SECONDS)
        elif left <= 2 * reserve:
            self.limiter.pause_for(USAGE_WINDOW_SECONDS / limit)  # the pace the rolling window frees calls at


# -- small pure helpers ------------------------------------------------------------


def _norm(email: str | None) -> str:
    # SOQL compares text case-insensitively; answers carry the stored case.
    return (email or "").strip().lower()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _codes(response: httpx.Response) -> set[str]:
    body = _json(response)
    return {str(e.get("errorCode")) for e in body if isinstance(e, dict)} if isinstance(body, list) else set()


def _aligned(results: Any, count: int) -> list[dict[str, Any]]:
    """Composite answers list one result per record, in order; pad a short answer."""
    items = [r if isinstance(r, dict) else {} for r in results] if isinstance(results, list) else []
    return (items + [{}] * count)[:count]
