"""A 1,000-change burst to one HubSpot list through the real runner and SQLite store.

Counts CRM calls per 100 changes (docs/performance.md: at most 2.5, and zero 429s under
100 requests / 10 s) and checks the fake's final list membership.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from connector.adapters.hubspot import HubSpotAdapter, HubSpotConfig
from connector.config import DeliverySection
from connector.delivery.runner import TargetRunner
from connector.metrics import Metrics
from connector.plain.changes import parse_event
from connector.store import Route, open_store
from connector.store.base import Store
from connector.testing.delivery import drain_target as drain
from connector.testing.fakes import WindowLimit
from connector.testing.fakes.hubspot import FakeHubSpot
from connector.testing.plain import membership_event

TOKEN = "pat-na1-burst-0123456789abcdef"
ENT = ("cg_ent", "enterprise", "Enterprise")
CUSTOMERS = 1000
LEAVING = {i for i in range(CUSTOMERS) if i % 10 == 0}  # 100 members leave the group
MISSING = {i for i in range(CUSTOMERS) if i % 50 == 7}  # 20 joiners HubSpot does not know
DEST = orjson.dumps({"list_name": "Enterprise"}).decode()


def email(i: int) -> str:
    return f"Burst{i}@Example.com"  # Plain keeps case; HubSpot lower-cases


def seeded_fake(rate_limit: WindowLimit) -> tuple[FakeHubSpot, str]:
    fake = FakeHubSpot(TOKEN, rate_limit=rate_limit)
    list_id = fake.seed_list("Enterprise")
    for i in range(CUSTOMERS):
        if i not in MISSING:
            record_id = fake.seed_contact(email(i))
            if i in LEAVING:
                fake.lists[list_id]["members"].add(record_id)
    return fake, list_id


async def accept_burst(store: Store) -> int:
    for i in range(CUSTOMERS):
        groups = ([ENT], []) if i in LEAVING else ([], [ENT])
        body = membership_event(event_id=f"pEv_{i}", customer_id=f"c_{i}", email=email(i),
                                groups_before=groups[0], groups_after=groups[1],
                                timestamp="2026-01-01T00:00:01Z", generation="versioned")  # fmt: skip
        event = parse_event(orjson.dumps(body))
        await store.accept(event, [[Route("hubspot", DEST)] for _ in event.changes])
    return CUSTOMERS


def run_burst(tmp_path: Path, fake: FakeHubSpot, rate_limit: dict[str, Any] | None = None) -> dict[str, Any]:
    async def scenario(base_url: str) -> dict[str, Any]:
        store = open_store("sqlite:///burst.db", tmp_path)
        await store.open()
        raw: dict[str, Any] = {"type": "hubspot", "token": TOKEN, "base_url": base_url}
        if rate_limit:
            raw["rate_limit"] = rate_limit
        adapter = HubSpotAdapter("hubspot", HubSpotConfig.model_validate(raw))
        await adapter.start()
        settings = DeliverySection(poll_interval_seconds=0.05, backoff_base_seconds=0.1, backoff_max_seconds=1)
        try:
            await accept_burst(store)
            return await drain(store, TargetRunner(store, adapter, settings, Metrics()))
        finally:
            await adapter.close()
            await store.close()

    with fake.serve() as base_url:
        return asyncio.run(scenario(base_url))


def expected_members() -> set[str]:
    return {email(i).lower() for i in range(CUSTOMERS) if i not in LEAVING and i not in MISSING}


def test_a_thousand_changes_to_one_list_cost_few_calls_and_no_429(tmp_path: Path) -> None:
    fake, list_id = seeded_fake(WindowLimit(100, 10))  # HubSpot's lower tier
    report = run_burst(tmp_path, fake)

    calls = Counter(f"{r.method} {r.path}" for r in fake.requests)
    per_100 = len(fake.requests) / CUSTOMERS * 100
    print(f"\nhubspot burst: {CUSTOMERS} changes, {len(fake.requests)} calls ({per_100:.2f} per 100): {dict(calls)}")
    assert per_100 <= 2.5
    assert fake.log.counters["rate_limited"] == 0 and all(r.status in (200, 207) for r in fake.requests)
    assert fake.member_emails(list_id) == expected_members()
    assert calls["GET /crm/v3/lists/object-type-id/0-1/name/Enterprise"] == 1, "list_name resolved once"
    assert calls["POST /crm/v3/objects/contacts/batch/read"] == CUSTOMERS // 100
    assert calls[f"PUT /crm/v3/lists/{list_id}/memberships/add"] <= 2  # one batch (max_batch 2500), or two
    assert report["dead_letters"] == 0 and report["retrying"] == 0
    assert report["not_in_crm"] == len(MISSING) and report["applied"] == CUSTOMERS - len(MISSING)


def test_under_a_window_smaller_than_the_burst_the_adapter_paces_instead_of_being_throttled(tmp_path: Path) -> None:
    """3 calls per second against ~15 calls: pacing has to happen, and no 429 may be earned."""
    fake, list_id = seeded_fake(WindowLimit(3, 1.0))
    report = run_burst(tmp_path, fake, rate_limit={"requests": 3, "per_seconds": 1.0})
    assert fake.log.counters["rate_limited"] == 0
    assert len(fake.requests) > 3 * 2, "the burst must outlast the window for this test to mean anything"
    assert fake.member_emails(list_id) == expected_members()
    assert report["dead_letters"] == 0 and report["retrying"] == 0
