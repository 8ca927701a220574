"""Linger: when the target's budget holds delivery back, a trickle goes out in full
batches; with budget to spare each change goes at once. Batch sizes are counted, never
times: the budget state is the adapter's answer, set by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from connector.adapters.base import Adapter, Change, Outcome, TargetConfig
from connector.adapters.http import HttpAdapter
from connector.adapters.ratelimit import RateLimit
from connector.config import DeliverySection
from connector.delivery.runner import TargetRunner
from connector.metrics import Metrics
from connector.plain.changes import parse_event
from connector.store import Route, open_store
from connector.store.base import Store
from connector.testing.plain import membership_event
from pydantic import ValidationError

ENT = ("cg_ent", "enterprise", "Enterprise")
TRICKLE = 12


class Budgeted(Adapter):
    """Records batches; ``bound`` is the budget state the runner sees, ``rates`` what it asked."""

    type_name = "budgeted"
    max_batch = 4

    def __init__(self, *, bound: bool, linger_seconds: float = 60.0) -> None:
        super().__init__("crm", TargetConfig(type="budgeted", linger_seconds=linger_seconds))
        self.bound = bound
        self.batches: list[list[Change]] = []
        self.rates: list[float] = []
        self.delivered = asyncio.Event()

    def budget_bound(self, changes_per_second: float) -> bool:
        self.rates.append(changes_per_second)
        return self.bound

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        self.batches.append(list(changes))
        self.delivered.set()
        return [Outcome.done()] * len(changes)


async def accept(store: Store, i: int) -> None:
    body = membership_event(event_id=f"pEv_{i}", customer_id=f"c_{i}", email=f"u{i}@example.com", groups_before=[],
                            groups_after=[ENT], timestamp="2026-01-01T00:00:01Z", generation="versioned")  # fmt: skip
    await store.accept(parse_event(orjson.dumps(body)), [[Route("crm", '{"list":"7"}')]])


def trickle(tmp_path: Path, adapter: Budgeted, *, wait_for_each: bool) -> list[int]:
    """Accept TRICKLE changes one by one (waking the runner each time); the batch sizes."""

    async def scenario() -> list[int]:
        store = open_store("sqlite:///linger.db", tmp_path)
        await store.open()
        runner = TargetRunner(store, adapter, DeliverySection(poll_interval_seconds=0.05), Metrics())
        stopping = asyncio.Event()
        task = asyncio.create_task(runner.run(stopping))
        try:
            for i in range(TRICKLE):
                adapter.delivered.clear()
                await accept(store, i)
                runner.wake.set()
                if wait_for_each:  # the next change arrives only after this one went out
                    await asyncio.wait_for(adapter.delivered.wait(), 30)
                else:
                    await asyncio.sleep(0.005)
            while sum(len(b) for b in adapter.batches) < TRICKLE:
                await asyncio.sleep(0.02)
        finally:
            stopping.set()
            await asyncio.wait_for(task, 10)
            await store.close()
        return [len(b) for b in adapter.batches]

    return asyncio.run(scenario())


def test_when_the_budget_holds_delivery_back_a_trickle_goes_out_in_full_batches(tmp_path: Path) -> None:
    adapter = Budgeted(bound=True)
    assert trickle(tmp_path, adapter, wait_for_each=False) == [4, 4, 4]
    assert adapter.rates and all(rate >= 0 for rate in adapter.rates)


def test_with_budget_to_spare_each_change_goes_at_once(tmp_path: Path) -> None:
    # Were it lingering (60 s), the first change could never be delivered alone.
    assert trickle(tmp_path, Budgeted(bound=False), wait_for_each=True) == [1] * TRICKLE


def test_linger_zero_never_waits_even_when_bound(tmp_path: Path) -> None:
    assert trickle(tmp_path, Budgeted(bound=True, linger_seconds=0), wait_for_each=True) == [1] * TRICKLE


def test_linger_seconds_is_part_of_every_target_config_and_bounded() -> None:
    assert TargetConfig(type="x").linger_seconds == 2.0
    with pytest.raises(ValidationError):
        TargetConfig(type="x", linger_seconds=-1)
    with pytest.raises(ValidationError):
        TargetConfig(type="x", linger_seconds=61)


class Limited(HttpAdapter):
    type_name = "limited"
    default_rate_limit = RateLimit(requests=10, per_seconds=1, max_concurrency=2)

    async def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        return [Outcome.done()] * len(changes)


def test_an_http_target_is_bound_by_its_limit_its_connections_or_a_vendor_pause() -> None:
    async def scenario() -> list[bool]:
        adapter = Limited("l", Limited.config_model.model_validate({"type": "limited"}))
        await adapter.start()
        try:
            answers = [adapter.budget_bound(1.0), adapter.budget_bound(5.0)]  # half of 10 per second
            async with adapter.limiter.slot(), adapter.limiter.slot():  # both connections busy
                answers.append(adapter.budget_bound(0.0))
            answers.append(adapter.budget_bound(0.0))
            adapter.limiter.pause_for(30)
            answers.append(adapter.budget_bound(0.0))
            return answers
        finally:
            await adapter.close()

    assert asyncio.run(scenario()) == [False, True, True, False, True]
