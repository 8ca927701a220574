"""Events and calls the store tests share."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from connector.plain.changes import parse_event
from connector.store import Route
from connector.store.base import Store
from connector.testing.plain import membership_event

ENT = ("cg_ent", "enterprise", "Enterprise")
BETA = ("cg_beta", "beta", "Beta")
AUDIT = [Route("audit", "{}")]


def event(event_id: str, ts: str, before: list[Any], after: list[Any], customer: str = "c_1", gen: str = "versioned"):
    body = membership_event(
        event_id=event_id, customer_id=customer, email=f"{customer}@example.com",
        groups_before=before, groups_after=after, timestamp=ts, generation=gen,  # type: ignore[arg-type]
    )  # fmt: skip
    return parse_event(orjson.dumps(body))


async def accept(store: Store, ev: Any, routes: list[Route] = AUDIT):
    return await store.accept(ev, [routes] * len(ev.changes))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def claim(store: Store, owner: str = "w1", lease: float = 60) -> list[Any]:
    return await store.claim("audit", 100, owner, lease)
