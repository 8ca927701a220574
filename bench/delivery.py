"""Delivery benchmark: a burst of N changes to one HubSpot list, Mailchimp tag and Intercom tag.

Each burst is accepted into a real SQLite store and drained by the real delivery runner
into the in-repo fake of that CRM, which enforces the vendor's limits. Reports wall time,
CRM calls per 100 changes, 429s received, and the ratio of wall time to the rate-limit
lower bound (the least time the calls that are strictly needed take under the limit).

In the same run, a naive flow (what a hand-built automation does: per webhook, look the
contact up, then add it, one event at a time, paced so it earns no 429) runs a smaller
burst against the same HubSpot fake, and our numbers are reported as ratios against it.

A trickle run (``--trickle 10000 --rate 200``) posts events at about that rate into one
store while all three CRMs deliver at once (one event maps to one change per CRM), the
case where batches must fill themselves (linger) to stay near the floor.

"Floor" is the calls strictly needed per 100 changes: HubSpot one batch/read per 100 emails
plus one membership call per full batch; Mailchimp one segment call per 500 (plus the tag's
lookup and creation); Intercom one search per 15 emails plus one tag call per 50 contacts.

Usage: `python bench/delivery.py [--sizes 1000,10000] [--naive 200] [--trickle 10000 --rate 200]`;
see docs/performance.md.
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


def floor_calls(crm: str, n: int) -> int:
    """Calls strictly needed for ``n`` adds of existing contacts to one list or tag."""
    if crm == "hubspot":
        return math.ceil(n / 100) + math.ceil(n / HubSpotAdapter.max_batch)
    if crm == "mailchimp":
        return math.ceil(n / 500) + 2  # + listing the segments and creating the tag's
    return math.ceil(n / 15) + math.ceil(n / 50)


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
    needed = floor_calls("hubspot", n)
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
    # Bounded by the adapter's default pace (Mailchimp publishes only the connection limit).
    result["lower_bound_s"] = window_lower_bound(floor_calls("mailchimp", n), MailchimpAdapter.default_rate_limit)
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
    result["lower_bound_s"] = window_lower_bound(floor_calls("intercom", n), limit)
    result["members_ok"] = all("Enterprise" in fake.tags_for_email(email(i)) for i in range(n))
    return result


def trickle(folder: Path, n: int, rate: float) -> list[dict[str, Any]]:
    """Events posted at ``rate``/s while HubSpot, Mailchimp and Intercom all deliver."""
    hs = FakeHubSpot(TOKEN, rate_limit=WindowLimit(100, 10))
    list_id = hs.seed_list("Enterprise")
    mc = FakeMailchimp(MC_KEY, ["aud1"], faults=Faults(latency=0.02))
    limit = IntercomAdapter.default_rate_limit
    ic = FakeIntercom(TOKEN, rate_limit=WindowLimit(limit.requests, limit.per_seconds))
    for i in range(n):
        hs.seed_contact(email(i))
        mc.seed_member("aud1", email(i))
        ic.seed_contact(email(i))
    dests = {"hubspot": {"list": list_id}, "mailchimp": {"tag": "Enterprise"}, "intercom": {"tag": "Enterprise"}}

    async def scenario(urls: dict[str, str]) -> dict[str, float]:
        store = open_store("sqlite:///trickle.db", folder)
        await store.open()
        adapters: list[Adapter] = [
            HubSpotAdapter("hubspot", HubSpotConfig(type="hubspot", token=TOKEN, base_url=urls["hubspot"])),
            MailchimpAdapter(
                "mailchimp",
                MailchimpConfig(type="mailchimp", api_key=MC_KEY, audience_id="aud1", base_url=urls["mailchimp"]),
            ),
            IntercomAdapter("intercom", IntercomConfig(type="intercom", token=TOKEN, base_url=urls["intercom"])),
        ]
        settings = DeliverySection(poll_interval_seconds=0.05, backoff_base_seconds=0.5, backoff_max_seconds=5)
        runners = [TargetRunner(store, a, settings, Metrics()) for a in adapters]
        stopping = asyncio.Event()
        for adapter in adapters:
            await adapter.start()
        tasks = [asyncio.create_task(r.run(stopping)) for r in runners]
        routes = [[Route(a.name, orjson.dumps(dests[a.name]).decode()) for a in adapters]]
        started = time.perf_counter()

        async def post(i: int) -> None:
            body = membership_event(event_id=f"pEv_{i:07d}", customer_id=f"c_{i}", email=email(i), groups_before=[],
                                    groups_after=[ENT], timestamp="2026-01-01T00:00:01Z", generation="versioned")  # fmt: skip
            await store.accept(parse_event(orjson.dumps(body)), routes)
            for runner in runners:
                runner.wake.set()

        posting = []
        for i in range(n):  # open loop, as Plain posts: concurrent accepts share a commit
            posting.append(asyncio.create_task(post(i)))
            delay = started + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*posting)
        posted = time.perf_counter() - started
        walls: dict[str, float] = {"posted_s": posted}
        pending = {a.name for a in adapters}
        while pending:
            targets = (await store.status()).targets
            for name in list(pending):
                report = targets.get(name)
                if report is not None and report.backlog == 0 and report.in_flight == 0:
                    walls[name] = time.perf_counter() - started
                    pending.discard(name)
            await asyncio.sleep(0.05)
        stopping.set()
        await asyncio.gather(*tasks)
        for adapter in adapters:
            await adapter.close()
        await store.close()
        return walls

    with hs.serve() as hs_url, mc.serve() as mc_url, ic.serve() as ic_url:
        walls = asyncio.run(scenario({"hubspot": hs_url, "mailchimp": mc_url, "intercom": ic_url}))
    rows = []
    for crm, fake in (("hubspot", hs), ("mailchimp", mc), ("intercom", ic)):
        calls = len(fake.requests)
        rows.append({"crm": f"{crm} (trickle {rate:.0f}/s)", "changes": n, "calls": calls,
                     "calls_per_100": round(calls / n * 100, 2), "floor_per_100": round(floor_calls(crm, n) / n * 100, 2),
                     "got_429": sum(1 for r in fake.requests if r.status == 429), "wall_s": round(walls[crm], 2),
                     "posted_s": round(walls["posted_s"], 2)})  # fmt: skip
    rows[0]["members_ok"] = len(hs.member_ids(list_id)) == n
    rows[1]["members_ok"] = all("Enterprise" in mc.tags_of("aud1", email(i)) for i in range(n))
    rows[2]["members_ok"] = all("Enterprise" in ic.tags_for_email(email(i)) for i in range(n))
    return rows


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
    parser.add_argument("--trickle", type=int, default=0, help="changes posted at --rate while all three deliver")
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    runs = {"hubspot": hubspot, "mailchimp": mailchimp, "intercom": intercom}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for crm in filter(None, args.crms.split(",")):
            for n in (int(s) for s in args.sizes.split(",") if s):
                result = {
                    "crm": crm,
                    **runs[crm](Path(tmp), n),
                    "floor_per_100": round(floor_calls(crm, n) / n * 100, 2),
                }
                result["ratio_to_bound"] = (
                    round(result["wall_s"] / result["lower_bound_s"], 2) if result["lower_bound_s"] else None
                )
                print(orjson.dumps(result).decode(), flush=True)
                rows.append(result)
        trickled = trickle(Path(tmp), args.trickle, args.rate) if args.trickle else []
    for row in trickled:
        print(orjson.dumps(row).decode(), flush=True)
    naive = naive_hubspot(args.naive) if args.naive else None
    if naive:
        print(orjson.dumps({"crm": "hubspot (naive flow)", **naive}).decode(), flush=True)
    print("\n| CRM | changes | wall s | calls | calls/100 | floor/100 | 429s | lower bound s | wall/bound | state ok |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['crm']} | {r['changes']} | {r['wall_s']} | {r['calls']} | {r['calls_per_100']} | {r['floor_per_100']} |"
            f" {r['got_429']} | {r['lower_bound_s']} | {r['ratio_to_bound']} | {r['members_ok']} |"
        )
    for r in trickled:
        print(
            f"| {r['crm']} | {r['changes']} | {r['wall_s']} (posting {r['posted_s']}) | {r['calls']} | {r['calls_per_100']} |"
            f" {r['floor_per_100']} | {r['got_429']} | | | {r['members_ok']} |"
        )
    if naive:
        print(
            f"| naive HubSpot flow | {naive['changes']} | {naive['wall_s']} | {naive['calls']} | {naive['calls_per_100']} |"
            f" | {naive['got_429']} | | | {naive['members_ok']} |"
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
