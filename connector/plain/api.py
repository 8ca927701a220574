"""Async client of Plain's Core GraphQL API: groups, their customers, webhook targets.

Plain's rules it keeps (docs/architecture.md, "Facts we design for"):

- Rate limit per API key. Every answer says ``x-ratelimit-remaining`` and
  ``x-ratelimit-reset`` (an ISO time). At 0 remaining the client sends nothing until the
  reset; a 429 (``RATE_LIMITED``) is waited out the same way and retried. Both waits are
  bounded (``max_rate_wait`` each, ``max_rate_retries`` 429s in a row).
- 5xx answers and transport errors are retried with exponential backoff and jitter, at most
  ``max_attempts`` tries. Mutations are retried only when the request surely never reached
  Plain (connection refused), so a lost answer cannot create a second webhook target.
- A GraphQL error answer raises :class:`~.errors.PlainGraphQLError` with its
  ``extensions.code`` and is never retried; a refused key raises
  :class:`~.errors.PlainAuthError`, whose message never holds the key.
- Relay pages of at most 100; ``customers`` is never sent with an empty group filter
  (Plain reads that as "every customer"); a customer's nested memberships (25 a page) are
  followed to the end.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import httpx

from connector.plain import queries as q
from connector.plain.errors import (
    PlainAuthError,
    PlainGraphQLError,
    PlainMutationError,
    PlainProtocolError,
    PlainUnavailable,
    PlainUsageError,
)
from connector.plain.queries import PlainCustomer, PlainGroup, WebhookTarget, WebhookVersion

__all__ = ["DEFAULT_API_URL", "MAX_PAGE", "PlainApi"]

DEFAULT_API_URL = "https://core-api.uk.plain.com/graphql/v1"
MAX_PAGE = 100
#: Plain's default page of a customer's nested memberships
MEMBERSHIPS_PAGE = 25
_AUTH_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN"})
RATE_LIMITED = "RATE_LIMITED"

log = logging.getLogger("connector.plain.api")

Sleep = Callable[[float], Awaitable[None]]


class _Retry(Exception):
    """Internal: this attempt failed in a way worth another try (``reason`` says why)."""

    def __init__(self, reason: str, *, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rate_limited = rate_limited


class PlainApi:
    """One API key's view of a Plain workspace. Use as ``async with PlainApi(key) as api``."""

    def __init__(
        self,
        api_key: str,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        max_rate_wait: float = 120.0,
        max_rate_retries: int = 10,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_key:
            raise PlainAuthError("no Plain API key configured: set plain.api_key (e.g. ${PLAIN_API_KEY})")
        self.api_url = api_url
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_rate_wait = max_rate_wait
        self.max_rate_retries = max_rate_retries
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.AsyncClient(
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "plain-crm-sync"},
        )
        #: wall-clock epoch before which Plain asked us to send nothing
        self.not_before = 0.0
        self.requests_sent = 0

    async def __aenter__(self) -> PlainApi:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # -- one operation -------------------------------------------------------------------

    async def execute(self, query: str, variables: dict[str, Any], operation: str) -> dict[str, Any]:
        """Send one operation; return its ``data``, after the rate-limit waits and retries."""
        attempts = rate_retries = 0
        mutation = query.lstrip().startswith("mutation")
        while True:
            await self._wait_for_window()
            try:
                return await self._attempt(query, variables, operation, mutation)
            except _Retry as retry:
                if retry.rate_limited:
                    rate_retries += 1
                    if rate_retries > self.max_rate_retries:
                        raise PlainUnavailable(
                            f"still rate limited after {rate_retries} waits", operation=operation
                        ) from None
                    if self.not_before <= self._clock():  # a 429 without a usable reset
                        await self._sleep(self._backoff(rate_retries))
                    continue
                attempts += 1
                if attempts >= self.max_attempts:
                    raise PlainUnavailable(
                        f"{retry.reason} (gave up after {attempts} attempts)", operation=operation
                    ) from None
                delay = self._backoff(attempts)
                log.warning("plain api %s: %s; retrying in %.1fs", operation, retry.reason, delay)
                await self._sleep(delay)

    async def _attempt(self, query: str, variables: dict[str, Any], operation: str, mutation: bool) -> dict[str, Any]:
        body = {"query": query, "variables": variables, "operationName": operation}
        try:
            self.requests_sent += 1
            response = await self._http.post(self.api_url, json=body)
        except httpx.ConnectError as exc:
            raise _Retry(f"cannot connect to Plain ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            if mutation:  # it may have been applied; the caller re-reads and decides
                raise PlainUnavailable(
                    f"connection lost during a change ({type(exc).__name__})", operation=operation
                ) from None
            raise _Retry(f"connection to Plain failed ({type(exc).__name__})") from None
        self._note_limits(response)
        status = response.status_code
        if status == 429:
            raise _Retry("rate limited", rate_limited=True)
        if status in (401, 403):
            raise PlainAuthError(
                f"Plain refused the API key (HTTP {status}): check plain.api_key / PLAIN_API_KEY", operation=operation
            )
        if status >= 500:
            if mutation and status not in (502, 503, 504):
                raise PlainUnavailable(f"HTTP {status} during a change", operation=operation)
            raise _Retry(f"HTTP {status}")
        return self._data(response, operation)

    def _data(self, response: httpx.Response, operation: str) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            raise PlainProtocolError(
                f"HTTP {response.status_code} with a body that is not JSON", operation=operation
            ) from None
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if errors:
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = (first.get("extensions") or {}).get("code")
            if code == RATE_LIMITED:
                raise _Retry("rate limited", rate_limited=True)
            message = str(first.get("message") or "error without a message")
            if code in _AUTH_CODES:
                raise PlainAuthError(f"Plain refused the API key ({code}: {message})", operation=operation)
            raise PlainGraphQLError(message, code, operation=operation)
        data = payload.get("data") if isinstance(payload, dict) else None
        if response.status_code != 200 or not isinstance(data, dict):
            raise PlainProtocolError(
                f"HTTP {response.status_code} without data: is plain.api_url ({self.api_url}) Plain's GraphQL URL?",
                operation=operation,
            )
        return data

    # -- rate limit and backoff ------------------------------------------------------------

    def _note_limits(self, response: httpx.Response) -> None:
        remaining, reset = response.headers.get("x-ratelimit-remaining"), response.headers.get("x-ratelimit-reset")
        if reset is None or (remaining is None and response.status_code != 429):
            return
        try:
            exhausted = response.status_code == 429 or int(remaining or "0") <= 0
            at = datetime.fromisoformat(reset).timestamp()
        except ValueError:
            return  # a header we cannot read is no reason to fail the call
        if exhausted:
            self.not_before = max(self.not_before, at)

    async def _wait_for_window(self) -> None:
        delay = self.not_before - self._clock()
        if delay > 0:
            delay = min(delay, self.max_rate_wait)
            log.info("plain api: rate limit reached, waiting %.1fs for the reset", delay)
            await self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    # -- pages -------------------------------------------------------------------------------

    async def pages(
        self,
        query: str,
        operation: str,
        path: Sequence[str],
        variables: dict[str, Any],
        page_size: int = MAX_PAGE,
        *,
        after: str | None = None,
    ) -> AsyncIterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """Yield (nodes, the whole answer) page by page from ``after``, following ``endCursor``."""
        if not 1 <= page_size <= MAX_PAGE:
            raise PlainUsageError(f"page size must be 1..{MAX_PAGE}, not {page_size}", operation=operation)
        while True:
            data = await self.execute(query, {**variables, "first": page_size, "after": after}, operation)
            connection = _dig(data, path, operation)
            try:
                nodes = [edge["node"] for edge in connection["edges"]]
                more, cursor = bool(connection["pageInfo"]["hasNextPage"]), connection["pageInfo"]["endCursor"]
            except (KeyError, TypeError):
                raise PlainProtocolError("a page without edges/pageInfo", operation=operation) from None
            yield nodes, data
            if not more:
                return
            if not cursor or cursor == after:
                raise PlainProtocolError("hasNextPage without a new endCursor", operation=operation)
            after = cursor

    async def customer_groups(self) -> list[PlainGroup]:
        """Every customer group of the workspace."""
        found: list[PlainGroup] = []
        async for nodes, _ in self.pages(q.CUSTOMER_GROUPS, "CustomerGroups", ("customerGroups",), {}):
            found.extend(_read(q.read_group, n, "CustomerGroups") for n in nodes)
        return found

    async def customers(
        self, group_ids: Sequence[str], *, memberships: bool = False, page_size: int = MAX_PAGE
    ) -> AsyncIterator[list[PlainCustomer]]:
        """Pages of the customers in any of ``group_ids`` (by full name; Plain's cursor order).

        With ``memberships`` each customer carries every group it is in, the nested
        connection followed past its first page.
        """
        ids = list(group_ids)
        if not ids or not all(isinstance(i, str) and i for i in ids):
            raise PlainUsageError("customers needs at least one group id (an empty filter reads every customer)")
        variables = {"groupIds": ids, "withMemberships": memberships, "membershipsFirst": MEMBERSHIPS_PAGE}
        async for nodes, _ in self.pages(
            q.CUSTOMERS_IN_GROUPS, "CustomersInGroups", ("customers",), variables, page_size
        ):
            page = []
            for node in nodes:
                groups = await self._all_memberships(node) if memberships else None
                page.append(_read(functools.partial(q.read_customer, groups=groups), node, "CustomersInGroups"))
            yield page

    async def memberships(self, customer_id: str, after: str | None = None) -> list[PlainGroup]:
        """The groups a customer is in (from ``after`` on, when continuing a nested page)."""
        groups: list[PlainGroup] = []
        path = ("customer", "customerGroupMemberships")
        variables = {"customerId": customer_id}
        async for nodes, _ in self.pages(q.CUSTOMER_MEMBERSHIPS, "CustomerMemberships", path, variables, after=after):
            groups.extend(_read(lambda n: q.read_group(n["customerGroup"]), n, "CustomerMemberships") for n in nodes)
        return groups

    async def _all_memberships(self, node: dict[str, Any]) -> tuple[PlainGroup, ...]:
        nested = node.get("customerGroupMemberships") or {}
        try:
            groups = [q.read_group(e["node"]["customerGroup"]) for e in nested["edges"]]
            more, cursor = nested["pageInfo"]["hasNextPage"], nested["pageInfo"]["endCursor"]
        except (KeyError, TypeError):
            raise PlainProtocolError("a customer without its memberships", operation="CustomersInGroups") from None
        if more:
            groups.extend(await self.memberships(node["id"], after=cursor))
        return tuple(groups)

    # -- webhook targets ---------------------------------------------------------------------

    async def webhook_versions(self) -> list[WebhookVersion]:
        return [
            _read(q.read_version, n, "WebhookVersions")
            async for nodes, _ in self.pages(q.WEBHOOK_VERSIONS, "WebhookVersions", ("webhookVersions",), {})
            for n in nodes
        ]

    async def webhook_targets(self) -> list[WebhookTarget]:
        return [
            _read(q.read_target, n, "WebhookTargets")
            async for nodes, _ in self.pages(q.WEBHOOK_TARGETS, "WebhookTargets", ("webhookTargets",), {})
            for n in nodes
        ]

    async def create_webhook_target(
        self, url: str, event_types: Sequence[str], version: str, description: str, *, enabled: bool = True
    ) -> WebhookTarget:
        subscriptions = [{"eventType": t} for t in event_types]
        input_ = {"url": url, "eventSubscriptions": subscriptions, "isEnabled": enabled,
                  "description": description, "version": version}  # fmt: skip
        out = await self._mutate(q.CREATE_WEBHOOK_TARGET, "CreateWebhookTarget", "createWebhookTarget", input_)
        return _read(q.read_target, out.get("webhookTarget"), "CreateWebhookTarget")

    async def update_webhook_target(
        self, target_id: str, *, event_types: Sequence[str], version: str, description: str, enabled: bool = True
    ) -> WebhookTarget:
        input_ = {"webhookTargetId": target_id, "eventSubscriptions": [{"eventType": t} for t in event_types],
                  "version": {"value": version}, "description": {"value": description},
                  "isEnabled": {"value": enabled}}  # fmt: skip
        out = await self._mutate(q.UPDATE_WEBHOOK_TARGET, "UpdateWebhookTarget", "updateWebhookTarget", input_)
        return _read(q.read_target, out.get("webhookTarget"), "UpdateWebhookTarget")

    async def delete_webhook_target(self, target_id: str) -> None:
        await self._mutate(
            q.DELETE_WEBHOOK_TARGET, "DeleteWebhookTarget", "deleteWebhookTarget", {"webhookTargetId": target_id}
        )

    async def _mutate(self, query: str, operation: str, field: str, input_: dict[str, Any]) -> dict[str, Any]:
        out = _dig(await self.execute(query, {"input": input_}, operation), (field,), operation)
        error = out.get("error")
        if error:
            fields = [f.get("field", "?") for f in error.get("fields") or ()]
            raise PlainMutationError(
                str(error.get("message")), str(error.get("code")), str(error.get("type")), fields, operation=operation
            )
        return out


def _dig(data: dict[str, Any], path: Sequence[str], operation: str) -> dict[str, Any]:
    found: Any = data
    for name in path:
        found = found.get(name) if isinstance(found, dict) else None
    if not isinstance(found, dict):
        raise PlainProtocolError(f"the answer lacks {'.'.join(path)}", operation=operation)
    return found


def _read(reader: Callable[[Any], Any], node: Any, operation: str) -> Any:
    try:
        return reader(node)
    except (KeyError, TypeError, AttributeError):
        raise PlainProtocolError("a node without the fields the query asked for", operation=operation) from None
