"""Delivery workers: claim due work per target, hand it to the adapter, record outcomes.

The runner knows nothing about any CRM. Per target it runs ``adapter.max_concurrency``
loops; each claims a leased batch, so several loops, or several service replicas on a
shared store, never send the same change at the same time.

When the target's budget is what holds delivery back (``adapter.budget_bound``: its rate
or connection limit, given how fast changes arrive), a partly filled batch waits up to the
target's ``linger_seconds`` for more work, so a trickle goes out in full batches instead
of spending a call on a few changes; with budget to spare it is sent at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence

from connector.adapters.base import Adapter, Outcome
from connector.config import DeliverySection
from connector.delivery.backoff import backoff_seconds, jittered
from connector.logs import log_context
from connector.metrics import Metrics
from connector.redact import mask_email
from connector.store.base import Finished, Store, WorkItem

log = logging.getLogger("connector.delivery")

#: seconds over which the arrival rate of changes is measured
_RATE_WINDOW = 5.0


class TargetRunner:
    """The delivery loops of one target."""

    def __init__(
        self, store: Store, adapter: Adapter, settings: DeliverySection, metrics: Metrics, owner: str | None = None
    ) -> None:
        self.store = store
        self.adapter = adapter
        self.settings = settings
        self.metrics = metrics
        self.owner = owner or f"{adapter.name}:{uuid.uuid4().hex[:12]}"
        self.wake = asyncio.Event()
        self._in_flight: dict[int, list[WorkItem]] = {}
        self._filling = asyncio.Lock()  # one loop fills a batch at a time: a trickle is not split
        self._claimed: deque[tuple[float, int]] = deque()  # (monotonic time, changes claimed)

    async def run(self, stopping: asyncio.Event) -> None:
        loops = [asyncio.create_task(self._loop(i, stopping)) for i in range(max(1, self.adapter.max_concurrency))]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._release_in_flight()

    async def _loop(self, index: int, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            async with self._filling:
                items = await self._claim(self.adapter.max_batch)
                if items and self._should_linger(len(items)):
                    items += await self._linger(self.adapter.max_batch - len(items), stopping)
            if items:
                self._in_flight[index] = items
                await self.deliver(items)
                self._in_flight.pop(index, None)
                continue
            await self._idle(stopping)

    async def _claim(self, limit: int) -> list[WorkItem]:
        try:
            items = await self.store.claim(self.adapter.name, limit, self.owner, self.settings.lease_seconds)
        except Exception as exc:  # the store being down must not kill delivery for good
            log.error("target %s: cannot claim work: %s", self.adapter.name, exc)
            return []
        now = time.monotonic()
        self._claimed.append((now, len(items)))
        while self._claimed and self._claimed[0][0] < now - _RATE_WINDOW:
            self._claimed.popleft()
        return items

    def arrival_rate(self) -> float:
        """Changes claimed per second over the last few seconds: how fast work arrives."""
        return sum(n for _, n in self._claimed) / _RATE_WINDOW

    def _should_linger(self, claimed: int) -> bool:
        linger = self.adapter.config.linger_seconds
        return claimed < self.adapter.max_batch and linger > 0 and self.adapter.budget_bound(self.arrival_rate())

    async def _linger(self, room: int, stopping: asyncio.Event) -> list[WorkItem]:
        """Claim more as it arrives, until ``room`` is filled or ``linger_seconds`` pass."""
        deadline = time.monotonic() + self.adapter.config.linger_seconds
        more: list[WorkItem] = []
        while len(more) < room and not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.wake.clear()
            waiters = [asyncio.create_task(self.wake.wait()), asyncio.create_task(stopping.wait())]
            try:  # woken by new work, else look again at the poll interval
                await asyncio.wait(waiters, timeout=min(left, self.settings.poll_interval_seconds),
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                for waiter in waiters:
                    waiter.cancel()
            more += await self._claim(room - len(more))
        return more

    async def _idle(self, stopping: asyncio.Event) -> None:
        """Sleep until new work is signalled, the next retry is due, or the poll interval."""
        timeout = self.settings.poll_interval_seconds
        try:
            due = await self.store.next_due(self.adapter.name)
        except Exception:
            due = None
        if due is not None:
            timeout = min(timeout * 10, max(0.0, due - time.time()))
        self.wake.clear()
        waiters = [asyncio.create_task(self.wake.wait()), asyncio.create_task(stopping.wait())]
        try:
            await asyncio.wait(waiters, timeout=max(timeout, 0.01), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def deliver(self, items: Sequence[WorkItem]) -> None:
        """Apply one claimed batch and write its outcomes back."""
        # Lines about the batch (the adapter's) name every event in it; each item's own
        # lines (_decide) name its event alone.
        with log_context(target=self.adapter.name, event_id=",".join(sorted({i.event_id for i in items}))):
            await self._deliver(items)

    async def _deliver(self, items: Sequence[WorkItem]) -> None:
        name = self.adapter.name
        started = time.perf_counter()
        try:
            outcomes = await self.adapter.apply([item.to_change() for item in items])
            if len(outcomes) != len(items):
                raise RuntimeError(f"adapter returned {len(outcomes)} outcomes for {len(items)} changes")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("target %s: adapter raised; the batch will be retried", name)
            outcomes = [Outcome.retry(f"adapter error: {type(exc).__name__}: {exc}")] * len(items)
        self.metrics.batch_seconds.labels(name).observe(time.perf_counter() - started)
        finished = []
        for item, outcome in zip(items, outcomes, strict=False):
            with log_context(event_id=item.event_id):
                finished.append(self._decide(item, outcome))
        started = time.perf_counter()
        await self.store.finish(finished)
        self.metrics.store_commit_seconds.labels("finish").observe(time.perf_counter() - started)

    def _decide(self, item: WorkItem, outcome: Outcome) -> Finished:
        name = self.adapter.name
        kind = outcome.kind
        reason = outcome.reason
        due_at = None
        if kind == "retry":
            if item.attempts + 1 >= self.settings.max_attempts:
                kind, reason = "failed", f"gave up after {item.attempts + 1} attempts: {reason}"
            else:
                delay = (
                    jittered(outcome.retry_after)
                    if outcome.retry_after is not None
                    else backoff_seconds(
                        item.attempts, self.settings.backoff_base_seconds, self.settings.backoff_max_seconds
                    )
                )
                due_at = time.time() + delay
        self.metrics.changes.labels(name, kind).inc()
        action = "add" if item.desired else "remove"
        if kind == "failed":
            reason = f"target {name!r}, {action} {item.group_key or item.group_id} {item.dest}: {reason}"
            log.warning("dead letter: %s (customer %s %s)", reason, item.customer_id, mask_email(item.email))
            return Finished(item, "dead", reason)
        if due_at is not None:  # only a retry has a due time
            self.metrics.retries.labels(name).inc()
            log.info(
                "target %s: retry %s %s in %.1fs: %s", name, action, item.customer_id, due_at - time.time(), reason
            )
            return Finished(item, "retry", reason, due_at)
        return Finished(item, kind, reason)

    async def _release_in_flight(self) -> None:
        pending = [item for items in self._in_flight.values() for item in items]
        self._in_flight.clear()
        if pending:
            try:
                await self.store.release(pending)
            except Exception as exc:  # leases expire anyway; nothing is lost
                log.warning(
                    "target %s: could not release %d in-flight item(s): %s", self.adapter.name, len(pending), exc
                )
