"""A burst through the real delivery runner and SQLite store into FakeIntercom's tight
window: every change lands, the fake never has to say 429, adds are tagged 50 contacts a
call and emails looked up 15 a search (never one call per person)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from connector.adapters.intercom import IntercomAdapter, IntercomConfig
from connector.config import DeliverySection
from connector.delivery.runner import TargetRunner
from connector.metrics import Metrics
from connector.plain.changes import parse_event
from connector.store import Route, open_store
from connector.store.base import Store
from connector.testing.delivery import drain_target as drain
from connector.testing.fakes import WindowLimit
from connector.testing.fakes.intercom import FakeIntercom
from connector.testing.plain import membership_event

TOKEN = "dG9rOmJ1cnN0X2ludGVyY29tX3Rva2VuXzEyMzQ1"
ENT = ("cg_ent", "enterprise", "Enterprise")
BETA = ("cg_beta", "beta", "Beta")
TAGS = {"cg_ent": "Enterprise", "cg_beta": "Beta"}
CUSTOMERS = 160
MISSING = {i for i in range(CUSTOMERS) if i % 16 == 15}  # 10 people not in Intercom
WINDOW = WindowLimit(80, 1.0)  # the fake's limit: 80 calls in any second

#: what each phase does per customer i: the groups before and after
PHASES = [
    lambda i: ([], [ENT, BETA] if i % 2 == 0 else [ENT]),
    lambda i: ([ENT, BETA] if i % 2 == 0 else [ENT], [BETA] if i % 2 == 0 else [ENT] if i % 3 else []),
]


def email(i: int) -> str:
    return f"burst{i}@example.com"


async def accept_phase(store: Store, phase: int) -> int:
    """Accept one event per customer; return how many membership changes they carried."""
    changes = 0
    for i in range(CUSTOMERS):
        before, after = PHASES[phase](i)
        if before == after:
            continue
        body = membership_event(
            event_id=f"pEv_{phase}_{i}",
            customer_id=f"c_{i}",
            email=email(i),
            groups_before=before,
            groups_after=after,
            generation="versioned",
            timestamp=f"2026-01-01T00:00:0{phase + 1}Z",
        )
        event = parse_event(orjson.dumps(body))
        routes = [[Route("intercom", orjson.dumps({"tag": TAGS[c.group.id]}).decode())] for c in event.changes]
        await store.accept(event, routes)
        changes += len(event.changes)
    return changes


def kind(method: str, path: str, body: Any = None) -> str:
    if path == "/tags" and isinstance(body, dict) and "users" in body:
        return "bulk tag"
    if path in ("/tags", "/contacts/search", "/contacts"):
        return {"/tags": "tag lookup", "/contacts/search": "search", "/contacts": "create"}[path]
    return "attach" if method == "POST" else "detach"


def expected_tags(i: int) -> set[str]:
    if i in MISSING:
        return set()
    return {TAGS[g[0]] for g in PHASES[-1](i)[1]}


def test_burst_through_the_runner_stays_under_the_window(tmp_path: Path) -> None:
    fake = FakeIntercom(TOKEN, rate_limit=WINDOW)
    for i in range(CUSTOMERS):
        if i not in MISSING:
            fake.seed_contact(email(i))

    async def scenario(base_url: str) -> tuple[list[int], list[dict[str, Any]], float]:
        store = open_store("sqlite:///burst.db", tmp_path)
        await store.open()
        raw = {
            "type": "intercom",
            "token": TOKEN,
            "base_url": base_url,
            "rate_limit": {"requests": WINDOW.requests, "per_seconds": WINDOW.per_seconds, "max_concurrency": 8},
        }
        adapter = IntercomAdapter("intercom", IntercomConfig.model_validate(raw))
        await adapter.start()
        settings = DeliverySection(poll_interval_seconds=0.05, backoff_base_seconds=0.1, backoff_max_seconds=1)
        runner = TargetRunner(store, adapter, settings, Metrics())
        accepted, reports = [], []
        started = time.monotonic()
        try:
            for phase in range(len(PHASES)):
                accepted.append(await accept_phase(store, phase))
                reports.append(await drain(store, runner))
            return accepted, reports, time.monotonic() - started
        finally:
            await adapter.close()
            await store.close()

    with fake.serve() as base_url:
        accepted, reports, seconds = asyncio.run(scenario(base_url))

    calls = Counter(kind(r.method, r.path, r.json) for r in fake.requests)
    print(
        f"\nburst: {accepted} changes in 2 phases, {len(fake.requests)} calls in {seconds:.1f}s: "
        f"{dict(calls)}; final {reports[-1]}"
    )

    assert fake.log.counters["rate_limited"] == 0
    assert all(r.status == 200 for r in fake.requests), Counter(r.status for r in fake.requests)
    assert [email(i) for i in range(CUSTOMERS) if fake.tags_for_email(email(i)) != expected_tags(i)] == []
    assert calls["tag lookup"] <= 2  # once per tag name at most, across both phases
    assert sorted(fake.tags.values()) == ["Beta", "Enterprise"]
    # Adds go 50 contacts a call: per phase and tag, one call per 50 plus one part-filled.
    assert max(fake.bulk_tag_sizes) <= 50
    adds = sum(1 for i in range(CUSTOMERS) if i not in MISSING for g in PHASES[0](i)[1])
    assert calls["bulk tag"] <= adds / 50 + 2 * 2 and calls["attach"] == 0
    # 15 emails a search, and a person's lookup serves all their changes, across phases too
    assert calls["search"] <= CUSTOMERS / 15 + 2 + 2 * len(MISSING)
    final = reports[-1]
    assert final["dead_letters"] == 0 and final["retrying"] == 0
    assert final["not_in_crm"] > 0 and final["applied"] > 0
