"""A burst through the real delivery runner and SQLite store into FakeMailchimp.

Mailchimp's limit is 10 simultaneous connections, not a request rate; the fake answers
429 above that. The run must stay under it without ever earning a 429, end with exactly
the tags the events describe, and spend one segment call per tag per batch (per 500
addresses), with a member's own tags call only for people outside the audience.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from connector.adapters.base import Change, Outcome
from connector.adapters.mailchimp import MailchimpAdapter, MailchimpConfig, subscriber_hash
from connector.config import DeliverySection
from connector.delivery.runner import TargetRunner
from connector.mappings import Destination, MappingSet
from connector.metrics import Metrics
from connector.plain.changes import parse_event
from connector.store import open_store
from connector.store.base import Store
from connector.testing.delivery import drain_target
from connector.testing.fakes import Faults
from connector.testing.fakes.mailchimp import FakeMailchimp
from connector.testing.plain import membership_event

KEY = "9e107d9d372bb6826bd81d3542a419d6-us21"
AUD = "b0a1c2d3e4"
ENT = ("cg_ent", "enterprise", "Enterprise")
BETA = ("cg_beta", "beta", "Beta")
TAGS = {"cg_ent": "Enterprise", "cg_beta": "Beta"}
CUSTOMERS = 240


class Recording(MailchimpAdapter):
    """The real adapter, remembering which changes came in which batch."""

    batches: list[list[Change]]

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        self.batches.append(list(changes))
        return await super().apply(changes)


def mappings() -> MappingSet:
    def dest(tag: str) -> Destination:
        return Destination("mc", {"tag": tag}, json.dumps({"tag": tag}, separators=(",", ":")), "test")

    return MappingSet({"enterprise": (dest("Enterprise"),), "beta": (dest("Beta"),)}, ())


def plan() -> tuple[list[dict], dict[str, set[str]], set[str]]:
    """Events, the tags each email should end with, and the emails not in the audience.

    Even customers join both groups in one event (two changes, one member); every third
    of those then leaves beta a second later (the store coalesces it); odd customers join
    enterprise only; every 20th customer is not in the audience at all.
    """
    events, expected, outsiders = [], {}, set()
    for i in range(CUSTOMERS):
        email = f"burst-{i}@example.com"
        groups = [ENT, BETA] if i % 2 == 0 else [ENT]
        events.append(
            membership_event(
                event_id=f"pEv_join_{i}",
                customer_id=f"c_{i}",
                email=email,
                groups_before=[],
                groups_after=groups,
                timestamp="2026-05-01T09:00:00Z",
                generation="versioned",
            )
        )
        if i % 6 == 0:
            events.append(
                membership_event(
                    event_id=f"pEv_leave_{i}",
                    customer_id=f"c_{i}",
                    email=email,
                    groups_before=groups,
                    groups_after=[ENT],
                    timestamp="2026-05-01T09:00:01Z",
                    generation="versioned",
                )
            )
            groups = [ENT]
        if i % 20 == 7:
            outsiders.add(email)
            expected[email] = set()
        else:
            expected[email] = {TAGS[g[0]] for g in groups}
    return events, expected, outsiders


async def accept_all(store: Store, events: list[dict]) -> None:
    routes = mappings()
    for body in events:
        event = parse_event(orjson.dumps(body))
        await store.accept(event, routes.routes(event.changes))


async def deliver_everything(store: Store, adapter: Recording) -> dict:
    settings = DeliverySection(poll_interval_seconds=0.05, backoff_base_seconds=0.2, backoff_max_seconds=1)
    return await drain_target(store, TargetRunner(store, adapter, settings, Metrics()), timeout=120)


def test_a_burst_stays_under_ten_connections_without_a_429(tmp_path: Path) -> None:
    events, expected, outsiders = plan()
    fake = FakeMailchimp(KEY, audiences={AUD}, faults=Faults(latency=0.02))  # answers take a while
    for email in expected:
        if email not in outsiders:
            fake.seed_member(AUD, email)
    config = MailchimpConfig.model_validate({"type": "mailchimp", "api_key": KEY, "audience_id": AUD})

    async def scenario(base_url: str) -> dict:
        store = open_store("sqlite:///burst.db", tmp_path)
        await store.open()
        try:
            await accept_all(store, events)
            adapter = Recording("mc", config.model_copy(update={"base_url": base_url}))
            adapter.batches = []
            await adapter.start()
            try:
                report = await deliver_everything(store, adapter)
            finally:
                await adapter.close()
            return {"report": report, "batches": adapter.batches}
        finally:
            await store.close()

    started = time.monotonic()
    with fake.serve() as base_url:
        result = asyncio.run(scenario(base_url))
    elapsed = time.monotonic() - started
    report, batches = result["report"], result["batches"]

    changes = sum(len(b) for b in batches)
    statuses = [r.status for r in fake.requests]
    tag_calls = sum(fake.tag_calls.values())
    segment_calls = sum(fake.segment_calls.values())
    print(
        f"\nmailchimp burst: {len(events)} events, {changes} changes in {len(batches)} batches, "
        f"{len(statuses)} requests ({segment_calls} segment calls, {tag_calls} tags calls), peak "
        f"{fake.peak_connections} connections, {statuses.count(429)} x 429, {elapsed:.1f}s"
    )

    assert fake.peak_connections <= 10
    assert statuses.count(429) == 0 and fake.log.counters["concurrency"] == 0
    assert {email: fake.tags_of(AUD, email) for email in expected} == expected
    assert report["dead_letters"] == 0 and report["retrying"] == 0
    assert report["not_in_crm"] == len(outsiders)  # outsiders are odd: one "add Enterprise" each
    # Members of the audience never cost a call of their own; outsiders one each.
    assert set(fake.tag_calls) == {subscriber_hash(e) for e in outsiders}
    assert tag_calls == len(outsiders)
    # Per batch, one segment call per tag and per round (a member's second change to a tag).
    rounds = 0
    for batch in batches:
        per_tag: dict[tuple[str, str], int] = {}
        for c in batch:
            key = (str(c.options["tag"]), subscriber_hash(c.email or ""))
            per_tag[key] = per_tag.get(key, 0) + 1
        rounds += sum(max(n for (t, _), n in per_tag.items() if t == tag) for tag in {t for t, _ in per_tag})
    assert segment_calls == rounds
    assert len(statuses) <= 3 + segment_calls + tag_calls  # + the segment lookup and two creations
    assert changes > 100 and segment_calls * 100 / changes < 3
