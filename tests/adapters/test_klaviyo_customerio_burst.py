"""A 1,000-change burst through the real runner and SQLite store to Klaviyo and to
Customer.io, each against its fake with the vendor's limits on.

Both take 1,000 changes a batch and 1,000 ids a call, so the burst is a handful of batch
calls (counted per path below) and no 429.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from connector.adapters.customerio import CustomerIoAdapter, CustomerIoConfig
from connector.adapters.http import HttpAdapter
from connector.adapters.klaviyo import KlaviyoAdapter, KlaviyoConfig
from connector.config import DeliverySection
from connector.delivery.runner import TargetRunner
from connector.metrics import Metrics
from connector.plain.changes import parse_event
from connector.store import Route, open_store
from connector.testing.delivery import drain_target
from connector.testing.fakes import WindowLimit
from connector.testing.fakes.customerio import FakeCustomerIo
from connector.testing.fakes.klaviyo import FakeKlaviyo
from connector.testing.fakes.server import FakeServer
from connector.testing.plain import membership_event

ENT = ("cg_ent", "enterprise", "Enterprise")
CUSTOMERS = 1000
LEAVING = {i for i in range(CUSTOMERS) if i % 10 == 0}  # 100 members leave the group
MISSING = {i for i in range(CUSTOMERS) if i % 50 == 7}  # 20 joiners Klaviyo does not know
KEY, LIST = "pk_burst_0123456789abcdef", "Y6nRLr"
SITE, CIO_KEY, SEGMENT = "site-burst", "cio-track-key-burst-0123", 42


def email(i: int) -> str:
    return f"Burst{i}@Example.com"


def run_burst(tmp_path: Path, fake: FakeServer, target: str, make: Any, options: dict[str, Any]) -> dict[str, Any]:
    async def scenario(base_url: str) -> dict[str, Any]:
        store = open_store("sqlite:///burst.db", tmp_path)
        await store.open()
        adapter: HttpAdapter = make(base_url)
        await adapter.start()
        settings = DeliverySection(poll_interval_seconds=0.05, backoff_base_seconds=0.1, backoff_max_seconds=1)
        dest = orjson.dumps(options).decode()
        try:
            for i in range(CUSTOMERS):
                groups = ([ENT], []) if i in LEAVING else ([], [ENT])
                body = membership_event(event_id=f"pEv_{i}", customer_id=f"c_{i}", email=email(i),
                                        groups_before=groups[0], groups_after=groups[1], external_id=f"u-{i}",
                                        timestamp="2026-01-01T00:00:01Z", generation="versioned")  # fmt: skip
                event = parse_event(orjson.dumps(body))
                await store.accept(event, [[Route(target, dest)] for _ in event.changes])
            return await drain_target(store, TargetRunner(store, adapter, settings, Metrics()))
        finally:
            await adapter.close()
            await store.close()

    with fake.serve() as base_url:
        return asyncio.run(scenario(base_url))


def calls_of(fake: FakeServer, target: str) -> Counter[str]:
    calls = Counter(f"{r.method} {r.path}" for r in fake.requests)
    print(f"\n{target} burst: {CUSTOMERS} changes, {len(fake.requests)} calls: {dict(calls)}")
    assert fake.log.counters["rate_limited"] == 0 and all(
        r.status is not None and r.status < 400 for r in fake.requests
    )
    return calls


def test_klaviyo_burst_is_ten_lookups_and_one_call_per_action(tmp_path: Path) -> None:
    fake = FakeKlaviyo(KEY, lists={LIST})  # Klaviyo's limits: 10/s and 150/min on list calls
    for i in range(CUSTOMERS):
        if i not in MISSING:
            pid = fake.seed_profile(email(i))
            if i in LEAVING:
                fake.lists[LIST].add(pid)

    def make(base_url: str) -> KlaviyoAdapter:
        return KlaviyoAdapter("klaviyo", KlaviyoConfig(type="klaviyo", api_key=KEY, base_url=base_url))

    report = run_burst(tmp_path, fake, "klaviyo", make, {"list": LIST})
    calls = calls_of(fake, "klaviyo")
    assert calls["GET /api/profiles"] == CUSTOMERS // 100
    assert calls[f"POST /api/lists/{LIST}/relationships/profiles"] == 1
    assert calls[f"DELETE /api/lists/{LIST}/relationships/profiles"] == 1
    assert len(fake.requests) == CUSTOMERS // 100 + 2
    wanted = {email(i).lower() for i in range(CUSTOMERS) if i not in LEAVING | MISSING}
    assert fake.member_emails(LIST) == wanted
    assert report["dead_letters"] == 0 and report["retrying"] == 0
    assert report["not_in_crm"] == len(MISSING) and report["applied"] == CUSTOMERS - len(MISSING)


def test_customerio_burst_is_one_call_per_action(tmp_path: Path) -> None:
    fake = FakeCustomerIo(SITE, CIO_KEY, segments={SEGMENT}, rate_limit=WindowLimit(10, 1.0))
    for i in range(CUSTOMERS):
        person = fake.seed_person(id=f"u-{i}", email=email(i))
        if i in LEAVING:
            fake.segments[SEGMENT].add(person.cio_id)

    def make(base_url: str) -> CustomerIoAdapter:
        raw = {"type": "customerio", "site_id": SITE, "api_key": CIO_KEY, "base_url": base_url}
        return CustomerIoAdapter("customerio", CustomerIoConfig.model_validate(raw))

    report = run_burst(tmp_path, fake, "customerio", make, {"segment": str(SEGMENT)})
    calls = calls_of(fake, "customerio")
    assert calls == {f"POST /api/v1/segments/{SEGMENT}/add_customers": 1,
                     f"POST /api/v1/segments/{SEGMENT}/remove_customers": 1}  # fmt: skip
    assert fake.member_emails(SEGMENT) == {email(i) for i in range(CUSTOMERS) if i not in LEAVING}
    assert report["dead_letters"] == 0 and report["retrying"] == 0 and report["applied"] == CUSTOMERS
