"""Scheduled reconcile inside ``serve``: the same backfill every ``reconcile.every``, one run at a time.

The schedule lives in the store's run record, so it survives restarts: the next run is
due ``every`` after the last one started; an interrupted run (serve stopped, Plain down)
is resumed at once, or, after a failure, at the retry time it recorded. ``status`` shows
the last run, its counts and the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from connector.config import Config
from connector.mappings import MappingSet
from connector.metrics import Metrics
from connector.plain.api import PlainApi
from connector.store.base import RunInfo, Store
from connector.sync.backfill import backfill

log = logging.getLogger("connector.reconcile")

#: after a failed run, try again this soon (or at the next regular time, if sooner)
RETRY_SECONDS = 600.0


def next_start(last: RunInfo | None, every: float, now: float) -> float:
    if last is None or last.status == "running" or last.status == "abandoned":
        return now  # never ran, or was interrupted: start (resume) now
    if last.status == "failed":
        return last.next_at or now
    return last.started_at + every


@dataclass(frozen=True)
class Host:
    """What the scheduler needs of the running service."""

    config: Config
    store: Store
    mappings: Callable[[], MappingSet]  # the live set, re-read at each run
    stopping: asyncio.Event
    wake: Callable[[], None]  # new work: wake the delivery runners
    metrics: Metrics | None = None  # counts the runs made here (a ``backfill`` command's show in status)


async def reconcile_forever(service: Host) -> None:
    """serve's task: wait for the next run, run it, repeat until serve stops."""
    every = service.config.reconcile.every
    key = service.config.plain.api_key
    if not every:
        return
    if key is None or not key.get_secret_value():
        log.error("reconcile.every is set but plain.api_key is not: scheduled reconcile is off")
        return
    while not service.stopping.is_set():
        last = (await service.store.status()).runs.get("reconcile")
        delay = next_start(last, every, time.time()) - time.time()
        if delay > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(service.stopping.wait(), delay)
            continue  # re-read the schedule (and the stop flag)
        run = asyncio.create_task(_run_once(service, key.get_secret_value(), every))
        stop = asyncio.create_task(service.stopping.wait())
        await asyncio.wait([run, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not run.done():
            run.cancel()  # the run record keeps it resumable: the next serve continues it
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run


async def _run_once(service: Host, api_key: str, every: float) -> None:
    started = time.time()
    try:
        async with PlainApi(api_key, service.config.plain.api_url) as api:
            result = await backfill(service.store, api, service.mappings(), kind="reconcile", next_at=started + every)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        retry = min(started + every, time.time() + RETRY_SECONDS)
        runs = (await service.store.status()).runs
        if "reconcile" in runs:
            await service.store.finish_run(runs["reconcile"].id, "failed", str(exc), retry)
        log.error("scheduled reconcile failed (%s); next try in %.0fs", exc, retry - time.time())
        _count(service, "failed", 0)
        return
    service.wake()
    counts = result.counts
    _count(service, result.run.status if result.run else "done", counts.changes)
    log.info("scheduled reconcile done: %s; next in %.0fs", counts.text(), every)


def _count(service: Host, outcome: str, changes: int) -> None:
    if service.metrics is not None:
        service.metrics.backfill_runs.labels("reconcile", outcome).inc()
        service.metrics.backfill_changes.labels("reconcile").inc(changes)
