"""Backfill benchmark: 10,000 Plain customers over 5 groups into 5 HubSpot lists, against the fakes.

The real backfill engine reads the fake Plain API (Plain's 450 requests/min plan) into a
real SQLite store while the real delivery runner drains the work into the fake HubSpot
(100 requests / 10 s), as a running ``serve`` would. Reports the read+merge time, the time
until HubSpot holds every member, the calls each side took, 429s, and the lower bound those
two limits allow (the least time the strictly needed calls take; the two sides overlap).

Usage: ``python bench/backfill.py [--customers 10000] [--groups 5]``; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.adapters.hubspot import HubSpotAdapter, HubSpotConfig
from connector.adapters.ratelimit import RateLimit
from connector.config import DeliverySection
from connector.delivery.runner import TargetRunner
from connector.mappings import Destination, MappingSet
from connector.metrics import Metrics
from connector.plain.api import MAX_PAGE, PlainApi
from connector.store import open_store
from connector.sync.backfill import backfill
from connector.testing.fakes import WindowLimit
from connector.testing.fakes.hubspot import FakeHubSpot
from connector.testing.fakes.plain_api import FakePlainApi

PLAIN_KEY, HUBSPOT_TOKEN = "bench-plain-key", "bench-hubspot-token"
PLAIN_LIMIT = RateLimit(requests=450, per_seconds=60)
HUBSPOT_LIMIT = HubSpotAdapter.default_rate_limit


def window_lower_bound(needed_calls: int, limit: RateLimit) -> float:
    """Least time ``needed_calls`` take when at most ``limit.requests`` fit in any window."""
    return max(0, math.ceil(needed_calls / limit.requests) - 1) * limit.per_seconds


def workspace(customers: int, groups: int) -> tuple[FakePlainApi, FakeHubSpot, MappingSet]:
    plain = FakePlainApi(PLAIN_KEY, rate_limit=PLAIN_LIMIT.requests, window_seconds=PLAIN_LIMIT.per_seconds)
    hub = FakeHubSpot(HUBSPOT_TOKEN, rate_limit=WindowLimit(HUBSPOT_LIMIT.requests, HUBSPOT_LIMIT.per_seconds))
    by_group: dict[str, tuple[Destination, ...]] = {}
    ids = [plain.data.add_group(f"group-{g}") for g in range(groups)]
    for g in range(groups):
        list_id = hub.seed_list(f"Group {g}")
        options = {"list": list_id}
        by_group[f"group-{g}"] = (Destination("hubspot", options, json.dumps(options), "bench"),)
    for i in range(customers):
        email = f"customer{i}@example.com"
        plain.data.add_customer(f"Customer {i:06d}", email, groups=[ids[i % groups]])
        hub.seed_contact(email)
    return plain, hub, MappingSet(by_group, ())


async def scenario(folder: Path, plain_url: str, hub_url: str, mappings: MappingSet, customers: int) -> dict[str, Any]:
    store = open_store("sqlite:///backfill-bench.db", folder)
    await store.open()
    adapter = HubSpotAdapter("hubspot", HubSpotConfig(type="hubspot", token=HUBSPOT_TOKEN, base_url=hub_url))
    await adapter.start()
    settings = DeliverySection(poll_interval_seconds=0.05, backoff_base_seconds=0.5, backoff_max_seconds=5)
    stopping = asyncio.Event()
    delivery = asyncio.create_task(TargetRunner(store, adapter, settings, Metrics()).run(stopping))
    started = time.perf_counter()
    try:
        async with PlainApi(PLAIN_KEY, plain_url) as api:
            result = await backfill(store, api, mappings)
        read_s = time.perf_counter() - started
        while True:
            status = (await store.status()).targets.get("hubspot")
            if status is not None and status.backlog == 0:
                break
            await asyncio.sleep(0.02)
        total_s = time.perf_counter() - started
    finally:
        stopping.set()
        await asyncio.wait_for(delivery, 10)
        await adapter.close()
        await store.close()
    return {"read_merge_s": round(read_s, 2), "total_s": round(total_s, 2), "work": result.counts.work,
            "applied": status.applied, "dead": status.dead_letters}  # fmt: skip


def run(customers: int, groups: int) -> dict[str, Any]:
    plain, hub, mappings = workspace(customers, groups)
    with tempfile.TemporaryDirectory() as folder, plain.serve() as plain_url, hub.serve() as hub_url:
        result = asyncio.run(scenario(Path(folder), plain_url, hub_url, mappings, customers))
    per_group = math.ceil(customers / groups)
    # Plain: the group list (twice: selection, then the read) and one page per 100 members.
    plain_needed = 2 + groups * math.ceil(per_group / MAX_PAGE)
    # HubSpot: one batch read per 100 emails and one membership call per runner batch per list.
    hub_needed = math.ceil(customers / 100) + groups * math.ceil(per_group / HubSpotAdapter.max_batch)
    bounds = (window_lower_bound(plain_needed, PLAIN_LIMIT), window_lower_bound(hub_needed, HUBSPOT_LIMIT))
    result.update(
        customers=customers, groups=groups, plain_calls=len(plain.requests), plain_needed=plain_needed,
        plain_429=sum(1 for r in plain.requests if r.status == 429), plain_early=len(plain.early_requests),
        hubspot_calls=len(hub.requests), hubspot_needed=hub_needed,
        hubspot_429=sum(1 for r in hub.requests if r.status == 429), lower_bound_s=max(bounds),
        members_ok=sum(len(hub.member_ids(lid)) for lid in hub.lists) == customers,
    )  # fmt: skip
    result["total/bound"] = round(result["total_s"] / result["lower_bound_s"], 2) if result["lower_bound_s"] else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.customers, args.groups), indent=2))


if __name__ == "__main__":
    main()
