"""A 1,000-change burst to one CRM destination through the real runner and SQLite store.

Shared by the Brevo and Salesforce burst tests: 1,000 customers, of whom every tenth leaves
the group (they start as members in the CRM) and every fiftieth-plus-seven joins but is
unknown to the CRM. The caller seeds its fake accordingly and checks the calls it counted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from connector.adapters.base import Adapter
from connector.config import DeliverySection
from connector.delivery.runner import TargetRunner
from connector.metrics import Metrics
from connector.plain.changes import parse_event
from connector.store import Route, open_store
from connector.testing.delivery import drain_target
from connector.testing.fakes.server import FakeServer
from connector.testing.plain import membership_event

CUSTOMERS = 1000
LEAVING = frozenset(i for i in range(CUSTOMERS) if i % 10 == 0)
MISSING = frozenset(i for i in range(CUSTOMERS) if i % 50 == 7)
GROUP = ("cg_ent", "enterprise", "Enterprise")


def email(i: int) -> str:
    return f"Burst{i}@Example.com"  # Plain keeps the case people typed


def expected_members() -> set[str]:
    return {email(i).lower() for i in range(CUSTOMERS) if i not in LEAVING and i not in MISSING}


def run_burst(tmp_path: Path, fake: FakeServer, make_adapter: Any, destination: dict[str, Any]) -> dict[str, Any]:
    """Accept the burst's events, deliver them with ``make_adapter(base_url)``; the status report."""
    route = Route("crm", orjson.dumps(destination).decode())

    async def scenario(base_url: str) -> dict[str, Any]:
        store = open_store("sqlite:///burst.db", tmp_path)
        await store.open()
        adapter: Adapter = make_adapter(base_url)
        await adapter.start()
        settings = DeliverySection(poll_interval_seconds=0.05, backoff_base_seconds=0.1, backoff_max_seconds=1)
        try:
            for i in range(CUSTOMERS):
                before, after = ([GROUP], []) if i in LEAVING else ([], [GROUP])
                body = membership_event(event_id=f"pEv_{i}", customer_id=f"c_{i}", email=email(i),
                                        groups_before=before, groups_after=after,
                                        timestamp="2026-01-01T00:00:01Z", generation="versioned")  # fmt: skip
                event = parse_event(orjson.dumps(body))
                await store.accept(event, [[route] for _ in event.changes])
            return await drain_target(store, TargetRunner(store, adapter, settings, Metrics()), timeout=120)
        finally:
            await adapter.close()
            await store.close()

    with fake.serve() as base_url:
        return asyncio.run(scenario(base_url))
