"""The delivery runner against a real SQLite store and a scripted adapter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from connector.adapters.base import Adapter, Change, Outcome, TargetConfig
from connector.config import DeliverySection
from connector.delivery.backoff import backoff_seconds
from connector.delivery.runner import TargetRunner
from connector.metrics import Metrics
from connector.plain.changes import parse_event
from connector.store import Route, TargetStatus, open_store
from connector.store.base import Store
from connector.testing.plain import membership_event

ENT = ("cg_ent", "enterprise", "Enterprise")


class Scripted(Adapter):
    """Answers each batch with the next scripted reply (a list of outcomes, or an exception)."""

    type_name = "scripted"
    max_batch = 3

    def __init__(self, replies: list[Any]) -> None:
        super().__init__("crm", TargetConfig(type="scripted"))
        self.replies = replies
        self.batches: list[list[Change]] = []

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        self.batches.append(list(changes))
        reply = self.replies.pop(0) if self.replies else Outcome.done()
        if isinstance(reply, Exception):
            raise reply
        return reply if isinstance(reply, list) else [reply] * len(changes)


async def seeded_store(folder: Path, customers: int) -> Store:
    store = open_store("sqlite:///t.db", folder)
    await store.open()
    for i in range(customers):
        body = membership_event(event_id=f"pEv_{i}", customer_id=f"c_{i}", email=f"u{i}@example.com",
                                groups_before=[], groups_after=[ENT], timestamp="2026-01-01T00:00:01Z",
                                generation="versioned")  # fmt: skip
        ev = parse_event(orjson.dumps(body))
        await store.accept(ev, [[Route("crm", '{"list":"7"}')]])
    return store


def settings(**kw: Any) -> DeliverySection:
    return DeliverySection(**{"poll_interval_seconds": 0.05, "backoff_base_seconds": 10, **kw})


async def deliver_once(runner: TargetRunner) -> int:
    items = await runner.store.claim("crm", runner.adapter.max_batch, runner.owner, 60)
    if items:
        await runner.deliver(items)
    return len(items)


def test_changes_carry_mapping_options_and_batches_respect_max_batch(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await seeded_store(tmp_path, 7)
        adapter = Scripted([])
        runner = TargetRunner(store, adapter, settings(), Metrics())
        stopping = asyncio.Event()
        task = asyncio.create_task(runner.run(stopping))
        deadline = time.monotonic() + 10
        while sum(len(b) for b in adapter.batches) < 7 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stopping.set()
        await asyncio.wait_for(task, 5)
        report = await store.status()
        await store.close()
        assert [len(b) for b in adapter.batches] == [3, 3, 1]
        first = adapter.batches[0][0]
        assert (first.action, first.options, first.group_key, first.email) == (
            "add",
            {"list": "7"},
            "enterprise",
            "u0@example.com",
        )
        assert report.targets["crm"].applied == 7 and report.targets["crm"].backlog == 0

    asyncio.run(scenario())


def test_retry_honours_vendor_delay_else_backoff(tmp_path: Path) -> None:
    async def scenario() -> list[float]:
        store = await seeded_store(tmp_path, 2)
        adapter = Scripted([[Outcome.retry("429", after=30), Outcome.retry("503")]])
        runner = TargetRunner(store, adapter, settings(), Metrics())
        before = time.time()
        await deliver_once(runner)
        due = await store.next_due("crm")
        report = await store.status()
        nothing = await deliver_once(runner)
        await store.close()
        assert report.targets["crm"].retrying == 2 and nothing == 0
        assert due is not None
        return [due - before]

    (wait,) = asyncio.run(scenario())
    # the 503 backs off 5-10 s (base 10, equal jitter); the 429 waits the vendor's 30 s (+≤10 %)
    assert 5 <= wait <= 10.5


def test_vendor_delay_is_used_for_the_429(tmp_path: Path) -> None:
    async def scenario() -> float:
        store = await seeded_store(tmp_path, 1)
        runner = TargetRunner(store, Scripted([Outcome.retry("429", after=30)]), settings(), Metrics())
        before = time.time()
        await deliver_once(runner)
        due = await store.next_due("crm")
        await store.close()
        assert due is not None
        return due - before

    assert 30 <= asyncio.run(scenario()) <= 33.5


def test_adapter_exception_is_a_retry_not_a_crash(tmp_path: Path) -> None:
    async def scenario() -> TargetStatus:
        store = await seeded_store(tmp_path, 1)
        runner = TargetRunner(store, Scripted([RuntimeError("boom")]), settings(), Metrics())
        await deliver_once(runner)
        report = await store.status()
        await store.close()
        return report.targets["crm"]

    crm = asyncio.run(scenario())
    assert crm.retrying == 1 and "boom" in crm.last_error


def test_permanent_failure_and_exhausted_retries_become_dead_letters(tmp_path: Path) -> None:
    async def scenario() -> list[Any]:
        store = await seeded_store(tmp_path, 2)
        adapter = Scripted([[Outcome.failed("HTTP 404: list 7 does not exist"), Outcome.retry("503")]])
        runner = TargetRunner(store, adapter, settings(max_attempts=1), Metrics())
        await deliver_once(runner)
        letters = await store.dead_letters()
        await store.close()
        return letters

    letters = asyncio.run(scenario())
    by_customer = {d.customer_id: d.reason for d in letters}
    prefix = 'target \'crm\', add enterprise {"list":"7"}: '
    assert by_customer == {
        "c_0": prefix + "HTTP 404: list 7 does not exist",
        "c_1": prefix + "gave up after 1 attempts: 503",
    }


def test_outcome_count_mismatch_is_retried(tmp_path: Path) -> None:
    async def scenario() -> TargetStatus:
        store = await seeded_store(tmp_path, 2)
        runner = TargetRunner(store, Scripted([[Outcome.done()]]), settings(), Metrics())
        await deliver_once(runner)
        report = await store.status()
        await store.close()
        return report.targets["crm"]

    crm = asyncio.run(scenario())
    assert crm.retrying == 2 and crm.applied == 0


def test_backoff_grows_and_is_capped() -> None:
    assert 1 <= backoff_seconds(0, 2, 100) <= 2
    assert 16 <= backoff_seconds(4, 2, 100) <= 32
    assert 50 <= backoff_seconds(30, 2, 100) <= 100
