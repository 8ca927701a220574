"""One rate limit per CRM account across replicas: each replica paces with its share.

Every replica keeps its own in-process :class:`~connector.adapters.ratelimit.RateLimiter`
(which counts a call until ``per_seconds`` after it finished, so network latency can
never push it over the vendor's window). What is shared through PostgreSQL is only how
big each replica's part of the budget is: one leased row per (target, replica) in
``rate_shares``; a replica's share is ``requests // live replicas``.

Why the sum stays under the vendor's limit while replicas come and go:

- a **joining** replica sends nothing for ``renew + per_seconds`` (plus slack): by then
  every other replica has renewed, seen one more row, shrunk its share, and its own
  sliding window holds only calls that fit the smaller share;
- a **dying** replica's row outlives its last possible call by a whole window (the lease
  is ``per_seconds + 3 * renew``), so the others grow only once the vendor no longer
  counts its calls;
- a replica that **cannot renew** (database unreachable) pauses its own calls before its
  lease can expire.

Registrations of one target are serialised by an advisory lock, so two replicas joining
at the same moment cannot both believe they are alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from connector.adapters.ratelimit import RateLimit
from connector.store.postgres.listen import stop_task
from connector.store.postgres.tx import PgTx, lock_key

log = logging.getLogger("connector.store")

T = TypeVar("T")
RunTx = Callable[[Callable[[PgTx, float], T]], Awaitable[T]]

#: seconds between renewals of a replica's shares
RENEW_SECONDS = 1.0
#: margin on every deadline, for clocks and scheduling
_SLACK = 0.5


class ShareableLimiter(Protocol):
    """What a limiter must offer to be paced by a shared budget (``RateLimiter`` does)."""

    limit: RateLimit

    def pause_for(self, seconds: float) -> None: ...


class _Bucket:
    def __init__(self, limiter: ShareableLimiter) -> None:
        self.limiter = limiter
        #: the whole account's budget, as configured; the limiter gets a share of it
        self.budget = limiter.limit
        self.replicas = 1


class SharedRateLimits:
    """Keeps the shares of this replica's limiters current, for as long as it runs."""

    def __init__(self, run: RunTx[Any], owner: str, renew: float = RENEW_SECONDS) -> None:
        self._run = run
        self.owner = owner
        self.renew = renew
        self._buckets: dict[str, _Bucket] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_renewed = float("-inf")

    def lease_seconds(self, budget: RateLimit) -> float:
        return budget.per_seconds + 3 * self.renew

    async def share(self, target: str, limiter: ShareableLimiter) -> None:
        """Pace ``limiter`` with this replica's share of ``target``'s budget from now on."""
        self._buckets[target] = _Bucket(limiter)
        await self._renew_or_pause()  # before the first call, so it already goes at our share
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name="store:rate-shares")

    def replicas(self, target: str) -> int:
        """How many replicas share ``target``'s budget, as of the last renewal."""
        return self._buckets[target].replicas

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.renew)
            await self._renew_or_pause()

    async def _renew_or_pause(self) -> None:
        try:
            # A renewal that hangs is as bad as one that fails: our lease runs out meanwhile.
            async with asyncio.timeout(self.renew):  # unlike 3.11's wait_for, never loses a cancel
                await self.renew_now()
        except Exception as exc:  # the database is away: stop before our lease can expire
            log.warning("rate-limit shares not renewed: %s", exc)
            if time.monotonic() - self._last_renewed > self.renew:
                for bucket in self._buckets.values():
                    bucket.limiter.pause_for(2 * self.renew)

    async def renew_now(self) -> None:
        buckets = dict(self._buckets)
        views = await self._run(lambda tx, now: {t: self._renew(tx, now, t, b.budget) for t, b in buckets.items()})
        self._last_renewed = time.monotonic()
        for target, (replicas, waits) in views.items():
            bucket = buckets[target]
            bucket.replicas = replicas
            share = max(1, bucket.budget.requests // replicas)
            bucket.limiter.limit = bucket.budget.model_copy(update={"requests": share})
            if waits > 0:
                bucket.limiter.pause_for(waits)

    def _renew(self, tx: PgTx, now: float, target: str, budget: RateLimit) -> tuple[int, float]:
        """Renew our row for ``target``; (live replicas, seconds before we may send)."""
        conn = tx.conn
        tx.lock([lock_key("rate-share", target)])
        conn.execute("DELETE FROM rate_shares WHERE bucket = %s AND expires_at < %s", (target, now))
        others = conn.execute(
            "SELECT count(*) FROM rate_shares WHERE bucket = %s AND owner <> %s", (target, self.owner)
        ).fetchone()[0]
        # Alone, we may send at once; joining others, only once they have shrunk.
        active_from = now if others == 0 else now + self.renew + budget.per_seconds + _SLACK
        row = conn.execute(
            "INSERT INTO rate_shares (bucket, owner, active_from, expires_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (bucket, owner) DO UPDATE SET expires_at = excluded.expires_at RETURNING active_from",
            (target, self.owner, active_from, now + self.lease_seconds(budget)),
        ).fetchone()
        return others + 1, max(0.0, float(row[0]) - now)
