"""Vendor-style limits for fake servers: N requests per rolling window, M at once."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class WindowLimit:
    """At most ``requests`` arrivals in any rolling ``per_seconds`` window.

    Counts the way HubSpot's ``TEN_SECONDLY_ROLLING`` policy is described: by arrival
    time. Rejected requests are not counted unless ``count_rejected`` (some vendors do
    count them, which punishes clients that retry without waiting).
    """

    requests: int
    per_seconds: float
    count_rejected: bool = False
    clock: Callable[[], float] = time.monotonic
    _arrivals: deque[float] = field(default_factory=deque, repr=False)

    def admit(self) -> float | None:
        """Count one arrival; None if allowed, else seconds until a slot frees up."""
        now = self.clock()
        while self._arrivals and self._arrivals[0] <= now - self.per_seconds:
            self._arrivals.popleft()
        if len(self._arrivals) < self.requests:
            self._arrivals.append(now)
            return None
        wait = self._arrivals[0] + self.per_seconds - now
        if self.count_rejected:
            self._arrivals.append(now)
        return max(wait, 0.001)

    def reset(self) -> None:
        self._arrivals.clear()


@dataclass
class ConcurrencyLimit:
    """At most ``max_in_flight`` requests being handled at once (Mailchimp: 10)."""

    max_in_flight: int
    in_flight: int = 0
    peak: int = 0

    def enter(self) -> bool:
        if self.in_flight >= self.max_in_flight:
            return False
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        return True

    def leave(self) -> None:
        self.in_flight -= 1
