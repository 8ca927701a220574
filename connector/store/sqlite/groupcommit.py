"""Group commit: many concurrent requests share one transaction and one fsync.

SQLite has one writer. Requests queue a job; whatever has queued by the next turn of the
event loop runs as one group inside one transaction (each job in its own savepoint, so a
bad job fails alone), and the group commits once. Each request gets its answer only
after its group's ``COMMIT`` returned, so a 2xx still means "on disk".

Jobs that say how to run many of their kind at once (:meth:`GroupCommitter.run_batched`:
accepting events) run together, one savepoint for the lot, in their place in the group;
if that fails, each runs again alone in its own savepoint, so a bad one still fails alone.

The SQL runs on the event loop thread and only ``COMMIT`` (the fsync) goes to a worker
thread. SQL is short CPU work; doing it in a second Python thread made the two threads
fight over the GIL and cost more than it saved. The fsync is slow I/O that releases the
GIL, so while one group commits the loop keeps parsing requests for the next.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("connector.store")

T = TypeVar("T")
ItemT = TypeVar("ItemT")
Job = Callable[[sqlite3.Connection], Any]
#: runs the items of consecutive batched jobs at once: one result per item, in order
Many = Callable[[sqlite3.Connection, list[Any]], list[Any]]


@dataclass(frozen=True, slots=True)
class _Batched:
    """A job that can run together with the batched jobs next to it that share ``many``."""

    many: Many
    one: Job
    item: Any

    def __call__(self, conn: sqlite3.Connection) -> Any:
        return self.one(conn)


#: how many jobs one transaction takes at most; bounds how long the loop runs SQL at once
MAX_GROUP = 256


class GroupCommitter:
    """Runs jobs on one connection, committing them in groups."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Job, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._conn = await asyncio.to_thread(self._connect)

    async def stop(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job(conn)`` in the next group; return after that group committed."""
        if self._conn is None:
            raise sqlite3.ProgrammingError("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((job, future))
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush())
        return await future

    async def run_batched(
        self,
        many: Callable[[sqlite3.Connection, list[ItemT]], list[T]],
        one: Callable[[sqlite3.Connection], T],
        item: ItemT,
    ) -> T:
        """Like :meth:`run` (``one`` is the job), but next to other jobs with the same ``many``
        it runs as ``many(conn, [their items])``."""
        result: T = await self.run(_Batched(many, one, item))
        return result

    async def _flush(self) -> None:
        try:
            while self._pending and self._conn is not None:
                # One loop turn: requests already readable join this group.
                await asyncio.sleep(0)
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                await self._run_group(self._conn, group)
        finally:
            self._flusher = None

    async def _run_group(self, conn: sqlite3.Connection, group: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for jobs in _runs(group):
                results.extend(_run_many(conn, jobs) if len(jobs) > 1 else [_run_job(conn, jobs[0])])
            await asyncio.to_thread(conn.execute, "COMMIT")
        except Exception as exc:
            log.error("store transaction failed: %s", exc)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            results = [(False, exc)] * len(group)
        for (ok, value), (_job, future) in zip(results, group, strict=False):
            if future.cancelled():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


def _run_job(conn: sqlite3.Connection, job: Job) -> tuple[bool, Any]:
    conn.execute("SAVEPOINT job")
    try:
        value = job(conn)
    except Exception as exc:  # one bad job must not sink the group
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        return False, exc
    conn.execute("RELEASE job")
    return True, value


def _runs(group: list[tuple[Job, asyncio.Future[Any]]]) -> list[list[Job]]:
    """The group's jobs in order, consecutive batched jobs of one kind put together."""
    runs: list[list[Job]] = []
    for job, _future in group:
        last = runs[-1][-1] if runs else None
        if isinstance(job, _Batched) and isinstance(last, _Batched) and last.many == job.many:
            runs[-1].append(job)
        else:
            runs.append([job])
    return runs


def _run_many(conn: sqlite3.Connection, jobs: list[Job]) -> list[tuple[bool, Any]]:
    batched = [job for job in jobs if isinstance(job, _Batched)]
    conn.execute("SAVEPOINT batch")
    try:
        values = batched[0].many(conn, [job.item for job in batched])
    except Exception as exc:
        conn.execute("ROLLBACK TO batch")
        conn.execute("RELEASE batch")
        log.warning("a batch of %d jobs failed (%s); running them one by one", len(jobs), exc)
        return [_run_job(conn, job) for job in jobs]
    conn.execute("RELEASE batch")
    return [(True, value) for value in values]
