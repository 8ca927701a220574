"""Delivery benchmark: a burst of N changes to one HubSpot list, Mailchimp tag and Intercom tag.

Each burst is accepted into a real SQLite store and drained by the real delivery runner
into the in-repo fake of that CRM, which enforces the vendor's limits. Reports wall time,
CRM calls per 100 changes, 429s received, and the ratio of wall time to the rate-limit
lower bound (the least time the calls that are strictly needed take under the limit).

In the same run, a naive flow (what a hand-built automation does: per webhook, look the
contact up, then add it, one event at a time, paced so it earns no 429) runs a smaller
burst against the same HubSpot fake, and our numbers are reported as ratios against it.

Usage: `python bench/delivery.py [--sizes 1000,10000] [--naive 200]`; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.adapters.base import Adapter
from connector.adapters.hubspot import HubSpotAdapter, HubSpotConfig
from connector.adapters.intercom import IntercomAdapter, IntercomConfig
from connector.adapters.mailchimp import MailchimpAdapter, MailchimpConfig
from connector.adapters.ratelimit import RateLimit, RateLimiter
from connector.config import DeliverySection
from connector.delivery.runner import TargetRunner
from connector.metrics import Metrics
from connector.plain.changes import parse_event
from connector.store import Route, open_store
from connector.testing.fakes import Faults, WindowLimit
from connector.testing.fakes.hubspot import FakeHubSpot
from connector.testing.fakes.intercom import FakeIntercom
from connector.testing.fakes.mailchimp import FakeMailchimp
from connector.testing.plain import membership_event

ENT = ("cg_ent", "enterprise", "Enterprise")
TOKEN = "pat-na1-bench-0123456789abcdef"
MC_KEY = "0123456789abcdef0123456789abcdef-us21"


def email(i: int) -> str:
    return f"member{i}@example.com"


async def accept(store: Any, n: int, target: str, dest: dict[str, Any]) -> None:
    route = [Route(target, orjson.dumps(dest).decode())]
    for i in range(n):
        body = membership_event(event_id=f"pEv_{i:07d}", customer_id=f"c_{i}", email=email(i), groups_before=[],
                                groups_after=[ENT], timestamp="2026-01-01T00:00:01Z", generation="versioned")  # fmt: skip
        event = parse_event(orjson.dumps(body))
        await store.accept(event, [route])


async def drain(store: Any, adapter: Adapter) -> tuple[float, dict[str, Any]]:
    settings = DeliverySection(poll_interval_seconds=0.05, backoff_base_seconds=0.5, backoff_max_seconds=5)
    runner = TargetRunner(store, adapter, settings, Metrics())
    stopping = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(runner.run(stopping))
    while True:
        status = (await store.status()).targets.get(adapter.name)
        if status is not None and status.backlog == 0:
            report = asdict(status)
            break
        await asyncio.sleep(0.02)
    wall = time.perf_counter() - started
    stopping.set()
    await asyncio.wait_for(task, 10)
    return wall, report


def burst(
    folder: Path, n: int, fake: Any, make_adapter: Callable[[str], Adapter], dest: dict[str, Any]
) -> dict[str, Any]:
    async def scenario(base_url: str) -> dict[str, Any]:
        store = open_store(f"sqlite:///{fake.__class__.__name__}-{n}.db", folder)
        await store.open()
        adapter = make_adapter(base_url)
        await adapter.start()
        try:
            await accept(store, n, adapter.name, dest)
            wall, report = await drain(store, adapter)
        finally:
            await adapter.close()
            await store.close()
        return {"wall_s": round(wall, 2), "applied": report.get("applied"), "dead": report.get("dead_letters")}

    with fake.serve() as base_url:
        result = asyncio.run(scenario(base_url))
    calls = len(fake.requests)
    result.update(changes=n, calls=calls, calls_per_100=round(calls / n * 100, 2),
                  got_429=sum(1 for r in fake.requests if r.status == 429))  # fmt: skip
    return result


def window_lower_bound(needed_calls: int, limit: RateLimit) -> float:
    """Least time ``needed_calls`` take when at most ``limit.requests`` fit in any window."""
    return max(0, math.ceil(needed_calls / limit.requests) - 1) * limit.per_seconds


def hubspot(folder: Path, n: int) -> dict[str, Any]:
    fake = FakeHubSpot(TOKEN, rate_limit=WindowLimit(100, 10))
    list_id = fake.seed_list("Enterprise")
    for i in range(n):
        fake.seed_contact(email(i))

    def make(base_url: str) -> Adapter:
        return HubSpotAdapter("hubspot", HubSpotConfig(type="hubspot", token=TOKEN, base_url=base_url))

    result = burst(folder, n, fake, make, {"list": list_id})
    # Needed: one batch read per 100 emails and one membership call per batch.
    needed = math.ceil(n / 100) + math.ceil(n / HubSpotAdapter.max_batch)
    result["lower_bound_s"] = window_lower_bound(needed, HubSpotAdapter.default_rate_limit)
    result["members_ok"] = len(fake.member_ids(list_id)) == n
    return result


def mailchimp(folder: Path, n: int) -> dict[str, Any]:
    fake = FakeMailchimp(MC_KEY, ["aud1"], faults=Faults(latency=0.02))
    for i in range(n):
        fake.seed_member("aud1", email(i))

    def make(base_url: str) -> Adapter:
        return MailchimpAdapter("mailchimp", MailchimpConfig(type="mailchimp", api_key=MC_KEY, audience_id="aud1",
                                                             base_url=base_url))  # fmt: skip

    result = burst(folder, n, fake, make, {"tag": "Enterprise"})
    # One tags call per member: bounded by 10 connections at the fake's 20 ms each, and by
    # the adapter's default pace (Mailchimp publishes only the connection limit).
    limit = MailchimpAdapter.default_rate_limit
    result["lower_bound_s"] = max(round(n * 0.02 / 10, 2), window_lower_bound(n, limit))
    result["members_ok"] = all("Enterprise" in fake.tags_of("aud1", email(i)) for i in range(n))
    return result


def intercom(folder: Path, n: int) -> dict[str, Any]:
    limit = IntercomAdapter.default_rate_limit
    fake = FakeIntercom(TOKEN, rate_limit=WindowLimit(limit.requests, limit.per_seconds))
    for i in range(n):
        fake.seed_contact(email(i))

    def make(base_url: str) -> Adapter:
        return IntercomAdapter("intercom", IntercomConfig(type="intercom", token=TOKEN, base_url=base_url))

    result = burst(folder, n, fake, make, {"tag": "Enterprise"})
    result["lower_bound_s"] = window_lower_bound(2 * n + 1, limit)  # a search and a tag call each
    result["members_ok"] = all("Enterprise" in fake.tags_for_email(email(i)) for i in range(n))
    return result


def naive_hubspot(n: int) -> dict[str, Any]:
    """Per webhook: look the contact up, add it to the list; one at a time, paced, no batching."""
    fake = FakeHubSpot(TOKEN, rate_limit=WindowLimit(100, 10))
    list_id = fake.seed_list("Enterprise")
    for i in range(n):
        fake.seed_contact(email(i))

    async def flow(base_url: str) -> float:
        limiter = RateLimiter(RateLimit(requests=100, per_seconds=10, max_concurrency=1))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        started = time.perf_counter()
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
            for i in range(n):
                async with limiter.slot():
                    found = await client.post(
                        "/crm/v3/objects/contacts/batch/read",
                        json={"idProperty": "email", "inputs": [{"id": email(i)}], "properties": ["email"]},
                    )
                record_id = found.json()["results"][0]["id"]
                async with limiter.slot():
                    await client.put(f"/crm/v3/lists/{list_id}/memberships/add", json=[record_id])
        return time.perf_counter() - started

    with fake.serve() as base_url:
        wall = asyncio.run(flow(base_url))
    calls = len(fake.requests)
    return {
        "changes": n,
        "calls": calls,
        "calls_per_100": round(calls / n * 100, 2),
        "wall_s": round(wall, 2),
        "got_429": sum(1 for r in fake.requests if r.status == 429),
        "members_ok": len(fake.member_ids(list_id)) == n,
    }


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--naive", type=int, default=200, help="changes for the naive baseline (it is slow)")
    parser.add_argument("--crms", default="hubspot,mailchimp,intercom")
    args = parser.parse_args()
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    runs = {"hubspot": hubspot, "mailchimp": mailchimp, "intercom": intercom}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for crm in args.crms.split(","):
            for n in (int(s) for s in args.sizes.split(",")):
                result = {"crm": crm, **runs[crm](Path(tmp), n)}
                result["ratio_to_bound"] = (
                    round(result["wall_s"] / result["lower_bound_s"], 2) if result["lower_bound_s"] else None
                )
                print(orjson.dumps(result).decode(), flush=True)
                rows.append(result)
    naive = naive_hubspot(args.naive) if args.naive else None
    if naive:
        print(orjson.dumps({"crm": "hubspot (naive flow)", **naive}).decode(), flush=True)
    print("\n| CRM | changes | wall s | calls | calls/100 | 429s | lower bound s | wall/bound | state ok |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['crm']} | {r['changes']} | {r['wall_s']} | {r['calls']} | {r['calls_per_100']} | {r['got_429']} |"
            f" {r['lower_bound_s']} | {r['ratio_to_bound']} | {r['members_ok']} |"
        )
    if naive:
        print(
            f"| naive HubSpot flow | {naive['changes']} | {naive['wall_s']} | {naive['calls']} | {naive['calls_per_100']} |"
            f" {naive['got_429']} | | | {naive['members_ok']} |"
        )
        for r in rows:
            if r["crm"] == "hubspot":
                per_change_ours = r["wall_s"] / r["changes"]
                per_change_naive = naive["wall_s"] / naive["changes"]
                print(
                    f"\nHubSpot {r['changes']}: {naive['calls_per_100'] / r['calls_per_100']:.0f}x fewer calls,"
                    f" {per_change_naive / per_change_ours:.0f}x less time per change than the naive flow"
                )
    print(f"\npeak RSS of this process (runner, store and fakes together): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
