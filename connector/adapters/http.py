"""The HTTP layer every CRM adapter stands on.

An :class:`HttpAdapter` owns one pooled ``httpx.AsyncClient`` and one
:class:`~connector.adapters.ratelimit.RateLimiter` per target. :meth:`HttpAdapter.request`
paces each call, retries what is worth retrying within a small in-process budget, and
otherwise raises :class:`CrmError`, whose :attr:`~CrmError.outcome` is the right
:class:`~connector.adapters.base.Outcome` for every change the call was about. The
runner, not this layer, owns long waits: a vendor asking for more than the budget gets
an ``Outcome.retry`` carrying the vendor's delay.

Vendor delay signals understood (:func:`retry_delay`): ``Retry-After`` (seconds or HTTP
date), ``X-RateLimit-Reset`` (Intercom: epoch seconds), HubSpot's 429 body ``policyName``
with ``X-HubSpot-RateLimit-Interval-Milliseconds`` (rolling 10 s window; no Retry-After
is promised), and Salesforce's 403 ``REQUEST_LIMIT_EXCEEDED``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable, Collection
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr, field_validator
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from connector.adapters.base import Adapter, Outcome, TargetConfig
from connector.adapters.ratelimit import (
    RateLimit,
    RateLimiter,
    Throttled,
    is_quota_error,
    vendor_delay,
)
from connector.redact import redact

__all__ = [
    "CrmError",
    "HttpAdapter",
    "HttpTargetConfig",
    "crm_message",
    "is_transient",
    "join_url",
    "retry_delay",
]

logger = logging.getLogger(__name__)

_MESSAGE_LIMIT = 300
_SECRET_FIELD = re.compile(r"token|secret|password|api_?key", re.IGNORECASE)


class HttpTargetConfig(TargetConfig):
    """Fields every HTTP target accepts on top of its own (DESIGN.md §3)."""

    base_url: str | None = None
    rate_limit: RateLimit | None = None
    timeout_seconds: float = 30.0

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an http(s) URL, e.g. https://api.eu.intercom.io")
        if url.query or url.fragment or url.userinfo:
            raise ValueError("base_url takes no query, fragment or credentials")
        return value.rstrip("/")

    @field_validator("timeout_seconds")
    @classmethod
    def _check_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("timeout_seconds must be positive")
        return value


def join_url(base_url: str, path: str) -> str:
    """``base_url`` (scheme, host, optional path prefix) + the API's own ``path``.

    ``join_url("http://127.0.0.1:9100/mailchimp", "/3.0/lists/x")`` is
    ``http://127.0.0.1:9100/mailchimp/3.0/lists/x``. An absolute ``path`` (a pagination
    link the CRM handed back) is used as it is.
    """
    if path.startswith(("http://", "https://")):
        return path
    return base_url.rstrip("/") + "/" + path.lstrip("/")


# -- reading vendor responses -------------------------------------------------------


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def is_transient(response: httpx.Response) -> bool:
    """Worth retrying: 408, 429, 5xx, and rate limits disguised as 403 (Salesforce)."""
    status = response.status_code
    if status in (408, 429) or 500 <= status <= 599:
        return True
    return status == 403 and is_quota_error(status, _json(response))


def retry_delay(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds the vendor asked us to wait; see :func:`~.ratelimit.vendor_delay`."""
    return vendor_delay(response.status_code, response.headers, _json(response), now=now)


def _first_error(items: list[Any]) -> str | None:
    for item in items:
        if isinstance(item, dict):
            text = _dict_message(item)
            if text:
                return text
        elif isinstance(item, str) and item:
            return item
    return None


def _dict_message(body: dict[str, Any]) -> str | None:
    code = body.get("errorCode") or body.get("code") or body.get("category")
    title, detail = body.get("title"), body.get("detail")
    text = body.get("message") or body.get("error_description")
    if not text and title and detail:
        text = f"{title}: {detail}"  # Mailchimp's problem+json
    text = text or detail or title or body.get("error")
    if not text and isinstance(body.get("errors"), list):
        return _first_error(body["errors"])  # Intercom's error.list
    if text and isinstance(text, str):
        return f"{code}: {text}" if isinstance(code, str) and code not in text else text
    return None


def crm_message(response: httpx.Response) -> str:
    """The CRM's own words about a failed call, shortened. Not yet redacted."""
    body = _json(response)
    text: str | None = None
    if isinstance(body, dict):
        text = _dict_message(body)
    elif isinstance(body, list):
        text = _first_error(body)  # Salesforce: [{"message", "errorCode"}]
    if not text:
        text = " ".join(response.text.split()) or response.reason_phrase
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


# -- failures -------------------------------------------------------------------------


class CrmError(Exception):
    """A CRM call that did not succeed, already redacted and worded for an operator.

    ``transient`` errors (429, 5xx, network) are retried by the runner after
    ``retry_after`` seconds (``None``: the runner's own backoff); others are permanent.
    """

    def __init__(
        self,
        *,
        target: str,
        method: str,
        path: str,
        status: int | None,
        message: str,
        transient: bool,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.target, self.method, self.path = target, method, path
        self.status, self.message = status, message
        self.transient, self.retry_after, self.attempts = transient, retry_after, attempts
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        what = f"HTTP {self.status}: " if self.status is not None else ""
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"{self.target}: {self.method} {self.path} -> {what}{self.message}{tries}"

    @property
    def outcome(self) -> Outcome:
        """The outcome for each change this call was about."""
        if self.transient:
            return Outcome.retry(self.reason, self.retry_after)
        return Outcome.failed(self.reason)


class _Transient(Exception):
    """One failed attempt that the retry policy may try again."""

    def __init__(self, status: int | None, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


# -- the adapter base -----------------------------------------------------------------


class HttpAdapter(Adapter):
    """Base for adapters that talk to a CRM over HTTP.

    Subclasses set ``type_name``, ``config_model``, ``default_base_url`` (or override
    :meth:`vendor_base_url` when it depends on the config, e.g. Mailchimp's data centre),
    ``default_rate_limit``, and :meth:`auth_headers`; then implement ``apply`` with
    :meth:`request`.
    """

    config_model: ClassVar[type[TargetConfig]] = HttpTargetConfig
    default_base_url: ClassVar[str] = ""
    default_rate_limit: ClassVar[RateLimit] = RateLimit()
    #: in-process retry budget: attempts per call and seconds per call, whichever ends first
    retry_attempts: ClassVar[int] = 4
    retry_budget_seconds: ClassVar[float] = 10.0
    #: first backoff when the vendor gave no delay; doubles per attempt, jittered
    backoff_seconds: ClassVar[float] = 0.5
    user_agent: ClassVar[str] = "plain-crm-sync/0.1"

    config: HttpTargetConfig

    def __init__(self, name: str, config: TargetConfig, *, clock: Callable[[], float] | None = None) -> None:
        super().__init__(name, config)
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._limiter: RateLimiter | None = None

    # vendor hooks ------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate; their values are treated as secrets everywhere."""
        return {}

    def default_headers(self) -> dict[str, str]:
        """Other headers sent on every call (``Intercom-Version``…)."""
        return {}

    def vendor_base_url(self) -> str:
        return self.default_base_url

    def secrets(self) -> list[str]:
        """Values that must never appear in a reason or a log line."""
        found: list[str] = []
        for value in self.auth_headers().values():
            found.append(value)
            found.extend(value.split(" ", 1)[1:])  # the token of "Bearer <token>"
        for name, value in self.config:
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, str) and _SECRET_FIELD.search(name):
                found.append(value)
        return sorted(set(found), key=len, reverse=True)  # longest first: no partial leaks

    # wiring ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.config.base_url or self.vendor_base_url()

    @property
    def rate_limit(self) -> RateLimit:
        override = self.config.rate_limit
        return override.over(self.default_rate_limit) if override else self.default_rate_limit

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError(f"{self.name}: start() was not called")
        return self._client

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            raise RuntimeError(f"{self.name}: start() was not called")
        return self._limiter

    def url(self, path: str) -> str:
        return join_url(self.base_url, path)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    async def start(self) -> None:
        limit = self.rate_limit
        self._limiter = RateLimiter(limit, clock=self._clock)
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        self._client = httpx.AsyncClient(
            headers={**headers, **self.default_headers(), **self.auth_headers()},
            timeout=httpx.Timeout(self.config.timeout_seconds),
            limits=httpx.Limits(
                max_connections=limit.max_concurrency,
                max_keepalive_connections=limit.max_concurrency,
            ),
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # calls -------------------------------------------------------------------------

    async def request(self, method: str, path: str, *, accept: Collection[int] = (), **kwargs: Any) -> httpx.Response:
        """Send one call, paced and retried; return a 2xx (or ``accept``-ed) response.

        ``path`` is the API's own path (``/crm/v3/lists/1/memberships/add``); ``kwargs``
        go to ``httpx.AsyncClient.request``. Raises :class:`CrmError` for anything else:
        permanent at once, transient once the budget is spent.
        """
        deadline = self.limiter.now() + self.retry_budget_seconds
        retrying = AsyncRetrying(
            sleep=asyncio.sleep,
            stop=lambda state: self._should_stop(state, deadline),
            wait=lambda state: self._next_wait(state, deadline),
            retry=retry_if_exception_type(_Transient),
            before_sleep=lambda state: self._log_retry(method, path, state),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(method, path, accept, deadline, kwargs)
        except _Transient as failure:
            raise self.crm_error(
                method,
                path,
                failure.status,
                failure.message,
                transient=True,
                retry_after=failure.retry_after,
                attempts=retrying.statistics["attempt_number"],
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(
        self,
        method: str,
        path: str,
        accept: Collection[int],
        deadline: float,
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        try:
            async with self.limiter.slot(max_pause=max(0.0, deadline - self.limiter.now())):
                response = await self.client.request(method, self.url(path), **kwargs)
        except Throttled as throttled:
            raise _Transient(None, "target paused by an earlier rate limit", throttled.retry_after) from None
        except httpx.TransportError as exc:  # connect errors, timeouts, dropped connections
            raise _Transient(None, f"{type(exc).__name__}: {exc}".rstrip(": "), None) from exc
        if response.is_success or response.status_code in accept:
            return response
        if is_transient(response):
            delay = retry_delay(response)
            if delay is not None:
                self.limiter.pause_for(delay)  # everyone on this target backs off together
            raise _Transient(response.status_code, crm_message(response), delay)
        raise self.crm_error(method, path, response.status_code, crm_message(response), transient=False)

    def _should_stop(self, state: RetryCallState, deadline: float) -> bool:
        if state.attempt_number >= self.retry_attempts:
            return True
        failure = state.outcome.exception() if state.outcome else None
        delay = failure.retry_after if isinstance(failure, _Transient) else None
        remaining = deadline - self.limiter.now()
        return remaining <= 0 or (delay is not None and delay >= remaining)

    def _next_wait(self, state: RetryCallState, deadline: float) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Transient) and failure.retry_after is not None:
            return failure.retry_after
        cap = self.backoff_seconds * 2 ** (state.attempt_number - 1)
        wait = cap / 2 + random.uniform(0, cap / 2)  # "equal jitter": never a hot retry
        return max(0.0, min(wait, deadline - self.limiter.now()))

    def _log_retry(self, method: str, path: str, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        status = f"HTTP {failure.status}: " if isinstance(failure, _Transient) and failure.status else ""
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.info(
            "%s: %s %s -> %s%s; retrying in %.2fs",
            self.name,
            method,
            self._shown_path(path),
            status,
            self.redact(str(failure)),
            wait,
        )

    def _shown_path(self, path: str) -> str:
        # The query can carry keys or emails; the path alone locates the call.
        return self.redact(httpx.URL(path).path if "://" in path else path.split("?", 1)[0])

    def crm_error(
        self,
        method: str,
        path: str,
        status: int | None,
        message: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> CrmError:
        """A redacted :class:`CrmError` for this target (also for adapter-detected failures)."""
        return CrmError(
            target=self.name,
            method=method,
            path=self._shown_path(path),
            status=status,
            message=self.redact(message),
            transient=transient,
            retry_after=retry_after,
            attempts=attempts,
        )

    def response_error(self, response: httpx.Response) -> CrmError:
        """A :class:`CrmError` for a response the adapter accepted but cannot use."""
        request = response.request
        return self.crm_error(
            request.method,
            request.url.raw_path.decode("ascii"),
            response.status_code,
            crm_message(response),
            transient=is_transient(response),
            retry_after=retry_delay(response) if is_transient(response) else None,
        )
