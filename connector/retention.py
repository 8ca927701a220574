"""Background pruning, so a service that runs for years keeps a store of bounded size.

Each pass deletes, per kind, rows older than its window (``retention:`` in the config) in
batches of ``prune_batch`` rows, one short store transaction each, yielding between
batches so webhooks never wait behind a long delete. What may be forgotten is decided by
:func:`connector.store.core.prune` (rule 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from connector.config import RetentionSection
from connector.metrics import Metrics
from connector.store.base import PruneKind, Store

log = logging.getLogger("connector.retention")

DAY = 86400.0


def windows(settings: RetentionSection) -> dict[PruneKind, float | None]:
    """Per kind, how long rows are kept (seconds), None where kept until an operator acts."""

    def seconds(days: float | None) -> float | None:
        return None if days is None else days * DAY

    return {
        "inbox": seconds(settings.inbox_days),
        "attempts": seconds(settings.history_days),
        "dead_letters": seconds(settings.dead_letter_days),
        "unprocessable": seconds(settings.unprocessable_days),
    }


async def prune_once(store: Store, settings: RetentionSection, metrics: Metrics | None = None) -> dict[str, int]:
    """One pass over every kind; returns rows deleted per kind."""
    deleted: dict[str, int] = {}
    now = time.time()
    for kind, window in windows(settings).items():
        if window is None:
            continue
        total = 0
        while True:
            count = await store.expire(kind, now - window, settings.prune_batch)
            total += count
            if count < settings.prune_batch:
                break
            await asyncio.sleep(0)  # let the receiver's writes in between batches
        deleted[kind] = total
        if metrics is not None and total:
            metrics.pruned.labels(kind).inc(total)
    return deleted


async def run_retention(
    store: Store, settings: RetentionSection, stopping: asyncio.Event, metrics: Metrics | None = None
) -> None:
    """Prune at start, then every ``prune_interval_seconds`` until ``stopping``."""
    while not stopping.is_set():
        try:
            deleted = await prune_once(store, settings, metrics)
            if any(deleted.values()):
                log.info("retention pruned %s", ", ".join(f"{k} {v}" for k, v in deleted.items() if v))
        except Exception as exc:  # a failed pass is retried next interval; nothing depends on it
            log.warning("retention pass failed, retrying later: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.prune_interval_seconds)
