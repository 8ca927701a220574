"""The HTTP layer every CRM adapter stands on: :class:`HttpAdapter`.

An :class:`HttpAdapter` owns one pooled ``httpx.AsyncClient`` and one
:class:`~connector.adapters.ratelimit.RateLimiter` per target. :meth:`HttpAdapter.request`
paces each call, retries what is worth retrying within a small in-process budget, and
otherwise raises :class:`~connector.adapters.errors.CrmError`, whose ``outcome`` is the
right :class:`~connector.adapters.base.Outcome` for every change the call was about. The
runner, not this layer, owns long waits: a vendor asking for more than the budget gets
an ``Outcome.retry`` carrying the vendor's delay.

This layer knows HTTP, not vendors. What a vendor says in its own words (a delay in a
body or a custom header, a rate limit disguised as a 403, an error body's shape) is read
by the hooks :meth:`~HttpAdapter.retry_delay`, :meth:`~HttpAdapter.is_transient` and
:meth:`~HttpAdapter.error_message`, which the vendor's module overrides. Methods marked
``@final`` are the framework's: subclasses call them, never override them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, ClassVar, Protocol, final

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from connector.adapters.base import Adapter, TargetConfig
from connector.adapters.errors import CrmError, Throttled
from connector.adapters.http_config import HttpTargetConfig, join_url
from connector.adapters.ratelimit import RateLimit, RateLimiter, retry_after
from connector.redact import redact

# CrmError, HttpTargetConfig and join_url are re-exported: adapters written before the
# split import them from here.
__all__ = ["CrmError", "HttpAdapter", "HttpTargetConfig", "join_url", "json_body", "json_object", "shorten"]

logger = logging.getLogger(__name__)


class CallObserver(Protocol):
    """Told about every CRM call (the service's :class:`~connector.metrics.Metrics`)."""

    def crm_response(self, target: str, status: int | None) -> None: ...
    def rate_limit_wait(self, target: str, seconds: float) -> None: ...


class _Unobserved:
    def crm_response(self, target: str, status: int | None) -> None:
        pass

    def rate_limit_wait(self, target: str, seconds: float) -> None:
        pass


_MESSAGE_LIMIT = 300
#: share of the rate limit that arriving changes may claim before batches are let fill
_BOUND_SHARE = 0.5
_SECRET_FIELD = re.compile(r"token|secret|password|api_?key", re.IGNORECASE)
#: the keys a JSON error body commonly words itself in, most specific first
_MESSAGE_KEYS = ("message", "error_description", "detail", "title", "error")


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON of ``response``; None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON object of ``response``; None when it is not JSON or not an object."""
    body = json_body(response)
    return body if isinstance(body, dict) else None


def shorten(text: str) -> str:
    """``text`` cut to what a reason should carry (300 characters)."""
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


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
    :meth:`request`. Hooks a vendor may override, each defaulting to plain HTTP:

    - :meth:`auth_headers`, :meth:`default_headers`, :meth:`vendor_base_url`, :meth:`secrets`;
    - :meth:`is_transient`: is a failed response worth retrying (408, 429, 5xx);
    - :meth:`retry_delay`: how long the vendor asked us to wait (``Retry-After``);
    - :meth:`error_message`: the vendor's own words about a failure.
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
        #: awaited before each call; the service sets it so delivery gives way to receiving
        self.turn: Callable[[], Awaitable[None]] | None = None
        #: set by the service to count calls, statuses, 429s and limiter waits
        self.observer: CallObserver = _Unobserved()

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

    def is_transient(self, response: httpx.Response) -> bool:
        """Is this failed (non-2xx, not accepted) response worth retrying?

        Plain HTTP: 408, 429 and 5xx. Override to add a vendor's disguised rate limit
        (Salesforce answers 403 ``REQUEST_LIMIT_EXCEEDED``); call ``super()`` for the rest.
        """
        status = response.status_code
        return status in (408, 429) or 500 <= status <= 599

    def retry_delay(self, response: httpx.Response) -> float | None:
        """Seconds the vendor asked us to wait before the next call; None if it did not say.

        Called for transient responses only. Plain HTTP: ``Retry-After`` (seconds or an
        HTTP date). Override to read a vendor's own signal (a reset header, a body field)
        and fall back to ``super().retry_delay(response)``.
        """
        value = response.headers.get("retry-after")
        return retry_after(value, time.time()) if value is not None else None

    def error_message(self, response: httpx.Response) -> str:
        """The CRM's own words about a failed call, not yet redacted or shortened.

        Plain HTTP: a JSON object's ``message`` (or ``error_description``, ``detail``,
        ``title``, ``error``), else the body's text, else the status's reason phrase.
        Override for a vendor's error shape, falling back to ``super()``.
        """
        body = json_object(response)
        for key in _MESSAGE_KEYS:
            text = body.get(key) if body else None
            if isinstance(text, str) and text:
                return text
        return " ".join(response.text.split()) or response.reason_phrase

    def budget_bound(self, changes_per_second: float) -> bool:
        """Paused by the vendor, every connection busy, or changes arriving at half the
        calls the limit allows or more (sent as they come, each would cost a call)."""
        limiter = self._limiter
        if limiter is None:
            return False
        limit = self.rate_limit
        if limiter.paused_for() > 0 or limiter.in_flight >= limit.max_concurrency:
            return True
        return changes_per_second >= _BOUND_SHARE * limit.requests / limit.per_seconds

    # wiring ------------------------------------------------------------------------

    @final
    @property
    def base_url(self) -> str:
        return self.config.base_url or self.vendor_base_url()

    @final
    @property
    def rate_limit(self) -> RateLimit:
        override = self.config.rate_limit
        return override.over(self.default_rate_limit) if override else self.default_rate_limit

    @final
    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError(f"{self.name}: start() was not called")
        return self._client

    @final
    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            raise RuntimeError(f"{self.name}: start() was not called")
        return self._limiter

    @final
    def url(self, path: str) -> str:
        return join_url(self.base_url, path)

    @final
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

    @final
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
        if self.turn is not None:
            await self.turn()
        asked = time.monotonic()
        try:
            async with self.limiter.slot(max_pause=max(0.0, deadline - self.limiter.now())):
                self.observer.rate_limit_wait(self.name, time.monotonic() - asked)
                response = await self.client.request(method, self.url(path), **kwargs)
        except Throttled as throttled:
            raise _Transient(None, "target paused by an earlier rate limit", throttled.retry_after) from None
        except httpx.TransportError as exc:  # connect errors, timeouts, dropped connections
            self.observer.crm_response(self.name, None)
            raise _Transient(None, f"{type(exc).__name__}: {exc}".rstrip(": "), None) from exc
        self.observer.crm_response(self.name, response.status_code)
        if response.is_success or response.status_code in accept:
            return response
        if self.is_transient(response):
            delay = self.retry_delay(response)
            if delay is not None:
                self.limiter.pause_for(delay)  # everyone on this target backs off together
            raise _Transient(response.status_code, self.crm_message(response), delay)
        raise self.crm_error(method, path, response.status_code, self.crm_message(response), transient=False)

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

    @final
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

    @final
    @final
    def crm_message(self, response: httpx.Response) -> str:
        """:meth:`error_message`, shortened for a reason. Not yet redacted."""
        return shorten(self.error_message(response))

    @final
    def response_error(self, response: httpx.Response) -> CrmError:
        """A :class:`CrmError` for a response the adapter accepted but cannot use."""
        request = response.request
        transient = self.is_transient(response)
        return self.crm_error(
            request.method,
            request.url.raw_path.decode("ascii"),
            response.status_code,
            self.crm_message(response),
            transient=transient,
            retry_after=self.retry_delay(response) if transient else None,
        )
