"""Shares of one CRM account's rate limit across replicas, through a real PostgreSQL.

Renewals are driven by hand (a renewal interval of an hour keeps the background loop
asleep) so each step is observed exactly; the last test lets the loop run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from connector.adapters.ratelimit import RateLimit, RateLimiter
from connector.store.postgres import PostgresStore

from tests.store.events import run

BUDGET = RateLimit(requests=100, per_seconds=10, max_concurrency=4)


async def _replica(url: str, renew: float = 3600) -> tuple[PostgresStore, RateLimiter]:
    store = PostgresStore(url, pool_size=2, share_renew_seconds=renew)
    await store.open()
    limiter = RateLimiter(BUDGET)
    await store.share_rate_limit("crm", limiter)
    return store, limiter


def _active(limiters: list[RateLimiter]) -> int:
    """Calls per window the replicas allowed to send right now may make together."""
    return sum(lim.limit.requests for lim in limiters if lim.paused_for() == 0)


def test_a_joining_replica_waits_until_the_others_have_shrunk(pg_url: str) -> None:
    async def scenario() -> dict[str, Any]:
        a, la = await _replica(pg_url)
        alone = (la.limit.requests, la.paused_for())
        b, lb = await _replica(pg_url)
        joined = (lb.limit.requests, lb.paused_for() > BUDGET.per_seconds, _active([la, lb]))
        await a.shares.renew_now()
        a_after = la.limit.requests
        c, lc = await _replica(pg_url)
        await a.shares.renew_now()
        await b.shares.renew_now()
        three = [lim.limit.requests for lim in (la, lb, lc)]
        for s in (a, b, c):
            await s.close()
        return {"alone": alone, "joined": joined, "a_after": a_after, "three": three}

    seen = run(scenario())
    assert seen["alone"] == (100, 0.0)
    # b may not send yet, so a's old 100 and b's 50 never count together.
    assert seen["joined"] == (50, True, 100)
    assert seen["a_after"] == 50
    assert seen["three"] == [33, 33, 33]


def test_a_dead_replicas_share_comes_back_when_its_lease_ends(pg_url: str) -> None:
    short = RateLimit(requests=100, per_seconds=0.5, max_concurrency=4)

    async def scenario() -> tuple[int, int]:
        stores = []
        limiters = []
        for _ in range(2):
            store = PostgresStore(pg_url, pool_size=2, share_renew_seconds=0.2)
            await store.open()
            limiter = RateLimiter(short)
            await store.share_rate_limit("crm", limiter)
            stores.append(store)
            limiters.append(limiter)
        await stores[0].shares.renew_now()
        both = limiters[0].limit.requests
        await stores[1].close()  # as far as the others can tell, it died: its row just stops renewing
        async with asyncio.timeout(30):
            while limiters[0].limit.requests != 100:
                await asyncio.sleep(0.1)
        alone = limiters[0].limit.requests
        await stores[0].close()
        return both, alone

    assert run(scenario()) == (50, 100)


def test_the_sqlite_store_leaves_the_limiter_alone(tmp_path: Any) -> None:
    from connector.store import open_store

    async def scenario() -> RateLimit:
        store = open_store("sqlite:///t.db", tmp_path)
        await store.open()
        limiter = RateLimiter(BUDGET)
        await store.share_rate_limit("crm", limiter)
        await store.close()
        return limiter.limit

    assert run(scenario()) == BUDGET
