"""Receiving first: delivery gives way on the event loop while webhooks are waiting.

Receiving and delivery share one event loop. Left alone, three CRM targets draining a
burst spend most of the loop on their HTTP calls, and ingest fell several-fold while
they delivered. Plain retries what we answer slowly, so the webhook comes first: while
``busy`` or more webhooks are in flight, CRM calls start one at a time at least
``spacing`` seconds apart. That bounds delivery's share of the loop while ingest is
saturated without ever stopping it (at least 1/``spacing`` calls a second), and costs
nothing when ingest is idle or light (the check is one comparison).
"""

from __future__ import annotations

import asyncio


class ReceiveFirst:
    """Counts webhooks in flight (:meth:`receiving`) and paces CRM calls (:meth:`turn`)."""

    def __init__(self, busy: int = 8, spacing: float = 0.005) -> None:
        self.busy = busy
        self.spacing = spacing
        self.in_flight = 0
        self._queue = asyncio.Lock()

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1

    async def turn(self) -> None:
        """Return when a CRM call may start: at once unless receiving is busy."""
        if self.in_flight < self.busy:
            return
        async with self._queue:
            if self.in_flight >= self.busy:
                await asyncio.sleep(self.spacing)
