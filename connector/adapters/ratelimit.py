"""Pacing requests to one CRM so that a healthy run never sees a 429.

Every HTTP target owns one :class:`RateLimiter`. It admits at most ``requests`` calls in
any ``per_seconds`` window and at most ``max_concurrency`` at once. A slot is counted from
admission until ``per_seconds`` after the call *finished*: the vendor counts a request
when it arrives, which is somewhere between the two, so counting from the finish is the
only choice that stays under the vendor's limit whatever the network latency is.

When the CRM answers 429 anyway (another app shares the quota), :meth:`RateLimiter.pause_for`
stops admissions for everyone on that target until the vendor's reset time, so in-flight
callers back off together instead of each discovering the limit on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
from collections import deque
from collections.abc import AsyncIterator, Callable

from pydantic import BaseModel, ConfigDict, Field

from connector.adapters.errors import Throttled

#: seconds a timer may fire early without the limiter noticing (far below any latency)
_TIMER_SLACK = 1e-6

__all__ = [
    "DAILY_LIMIT_DELAY",
    "RateLimit",
    "RateLimiter",
    "Throttled",
    "retry_after",
    "seconds",
]


class RateLimit(BaseModel):
    """A target's ``rate_limit:`` block: ``{requests: 100, per_seconds: 10, max_concurrency: 10}``.

    Operators write it as an override of the adapter's vendor default; fields they leave
    out keep the vendor's value (see :meth:`over`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(10, ge=1, description="calls allowed in any window of per_seconds")
    per_seconds: float = Field(1.0, gt=0, description="length of the window in seconds")
    max_concurrency: int = Field(4, ge=1, description="calls in flight at once")

    def over(self, default: RateLimit) -> RateLimit:
        """``default`` with only the fields the operator actually wrote replaced."""
        return default.model_copy(update=self.model_dump(exclude_unset=True))


class RateLimiter:
    """Sliding-window limiter plus concurrency cap for one target.

    ``clock`` returns monotonic seconds; it defaults to the running event loop's clock so
    that waits (``asyncio.sleep``) and time stamps always agree, also under a virtual-time
    loop in tests (:mod:`connector.testing.fakes.clock`).

    Waiters are served first come, first served: only the head of the queue sleeps, on a
    timer for the exact moment a slot frees up, so there is no polling.
    """

    def __init__(self, limit: RateLimit, *, clock: Callable[[], float] | None = None) -> None:
        self.limit = limit
        self._clock = clock
        self._concurrency = asyncio.Semaphore(limit.max_concurrency)
        self._turn = asyncio.Lock()  # FIFO queue of waiters; the holder is the head
        self._finished: deque[float] = deque()  # finish times still inside the window
        self._in_flight = 0
        self._released = asyncio.Event()
        self._paused_until = float("-inf")

    def now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def pause_for(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` from now (a pause never shortens an earlier one)."""
        self.pause_until(self.now() + max(0.0, seconds))

    def pause_until(self, deadline: float) -> None:
        """Admit nothing before ``deadline`` (in this limiter's clock)."""
        self._paused_until = max(self._paused_until, deadline)

    def paused_for(self) -> float:
        """Seconds the current pause still lasts; 0 when not paused."""
        return max(0.0, self._paused_until - self.now())

    @contextlib.asynccontextmanager
    async def slot(self, max_pause: float | None = None) -> AsyncIterator[None]:
        """Hold one request slot for the duration of the ``async with`` body.

        Raises :class:`Throttled` instead of waiting when the target is paused for longer
        than ``max_pause`` seconds, so a caller with a time budget can hand the delay to
        the delivery runner rather than sit on it. Pacing waits are never refused: they
        are bounded by ``per_seconds`` and are what keeps the vendor from answering 429.
        """
        self._refuse_long_pause(max_pause, self.now())
        async with self._concurrency:
            async with self._turn:
                await self._wait_for_window(max_pause)
                self._in_flight += 1
            try:
                yield
            finally:
                self._in_flight -= 1
                self._finished.append(self.now())
                self._released.set()

    async def _wait_for_window(self, max_pause: float | None) -> None:
        window = self.limit.per_seconds
        while True:
            self._released.clear()  # before the check, so a release cannot be missed
            # Timers may fire a hair early; without the slack a float rounding error
            # would turn into a zero-length sleep and a spin.
            now = self.now() + _TIMER_SLACK
            self._refuse_long_pause(max_pause, now)
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                continue
            while self._finished and self._finished[0] + window <= now:
                self._finished.popleft()
            if self._in_flight + len(self._finished) < self.limit.requests:
                return
            if self._finished:
                # A finish can only add later stamps, so the oldest one decides.
                await asyncio.sleep(self._finished[0] + window - now)
            else:
                await self._released.wait()  # every slot is in flight

    def _refuse_long_pause(self, max_pause: float | None, now: float) -> None:
        remaining = self._paused_until - now
        if max_pause is not None and remaining > max_pause:
            raise Throttled(remaining)


# -- what vendors say about their limits ---------------------------------------------

#: For quotas that reset on a daily clock we cannot see (HubSpot's DAILY, for one):
#: check back in an hour rather than hammer or give up.
DAILY_LIMIT_DELAY = 3600.0


def seconds(value: str) -> float | None:
    """A header's number of seconds (``"2"``, ``"0.5"``); None if it is not a number."""
    try:
        return float(value.strip())
    except ValueError:
        return None


def retry_after(value: str, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for (RFC 9110: seconds or an HTTP date).

    ``now`` is wall-clock epoch seconds; a date in the past means "now" (0).
    """
    delay = seconds(value)
    if delay is not None:
        return max(0.0, delay)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
