"""The scale-out store: several ``serve`` replicas share one PostgreSQL database.

The rules are :mod:`connector.store.core`'s, the SQL mostly :mod:`connector.store.sql`'s;
this module supplies connections, transactions, the database clock and wake-ups. The
core's rules are plain synchronous functions over one transaction, so each store call
runs them on a pooled psycopg connection in one of the store's own threads (as many as
connections): the event loop never waits on the database, and both backends run the one
implementation of the rules. Idle runners are woken by ``LISTEN/NOTIFY`` (payload: the
target's name) when another replica adds work; polling stays as the fallback.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from connector.plain.changes import CustomerInfo, GroupInfo, ParsedEvent
from connector.store import core, core_sync, history
from connector.store.base import (
    DEFAULT_POLICY,
    AcceptResult,
    CustomerHistory,
    DeadLetter,
    Finished,
    GroupKey,
    GroupRead,
    Merged,
    Operation,
    Policy,
    PruneKind,
    RecentEvent,
    Route,
    RunInfo,
    RunStart,
    RunStatus,
    StatusReport,
    Store,
    StoreUnavailable,
    SyncKind,
    VerifyResult,
    WorkItem,
)
from connector.store.postgres.listen import Listener, channel_name, redact_url
from connector.store.postgres.migrate import migrate
from connector.store.postgres.ratelimit import RENEW_SECONDS, ShareableLimiter, SharedRateLimits
from connector.store.postgres.tx import PgTx, event_keys, pair_key

log = logging.getLogger("connector.store")

T = TypeVar("T")
#: the transaction was rolled back whole, so running it again is safe
_RETRIABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_ATTEMPTS = 3
Job = Callable[[PgTx, float], T]
_SIZE = (
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
)


class PostgresStore(Store):
    def __init__(
        self, url: str, pool_size: int = 10, connect_timeout: float = 10.0, share_renew_seconds: float = RENEW_SECONDS
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self._pool: ConnectionPool[Any] | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._channel = ""
        self._listener: Listener | None = None
        self._subscribers: list[Callable[[Iterable[str]], None]] = []
        #: this replica's shares of the targets' rate limits
        self.shares = SharedRateLimits(self._tx, f"replica-{uuid.uuid4().hex[:12]}", share_renew_seconds)

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.url)!r})"

    async def open(self) -> None:
        try:
            async with await psycopg.AsyncConnection.connect(
                self.url, connect_timeout=int(self.connect_timeout)
            ) as conn:
                await migrate(conn)
                row = await (await conn.execute("SELECT current_schema()")).fetchone()
            self._channel = channel_name(str(row[0]) if row else "public")
            self._threads = ThreadPoolExecutor(self.pool_size, thread_name_prefix="pg-store")
            pool: ConnectionPool[Any] = ConnectionPool(
                self.url, min_size=1, max_size=self.pool_size, open=False, timeout=self.connect_timeout
            )
            await self._in_thread(lambda: pool.open(wait=True, timeout=self.connect_timeout))
        except StoreUnavailable:
            raise
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(f"cannot open {redact_url(self.url)}: {exc}") from exc
        self._pool = pool
        if self._subscribers:
            self._listener = Listener(self.url, self._channel, self._wake_subscribers)
            await self._listener.start()

    async def close(self) -> None:
        await self.shares.stop()
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        pool, self._pool = self._pool, None
        if pool is not None:
            await self._in_thread(pool.close)
        if self._threads is not None:
            self._threads.shutdown(wait=False)
            self._threads = None

    def on_new_work(self, wake: Callable[[Iterable[str]], None]) -> None:
        self._subscribers.append(wake)

    async def share_rate_limit(self, target: str, limiter: ShareableLimiter) -> None:
        await self.shares.share(target, limiter)

    def _wake_subscribers(self, targets: Iterable[str]) -> None:
        names = list(targets)
        for wake in self._subscribers:
            wake(names)

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn)

    async def _tx(self, job: Job[T], locks: Callable[[], Iterable[int]] = tuple) -> T:
        """Run ``job(tx, now)`` in one transaction, committed before returning."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the store is closed")
        return await self._in_thread(lambda: self._transaction(pool, job, locks))

    def _transaction(self, pool: ConnectionPool[Any], job: Job[T], locks: Callable[[], Iterable[int]]) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with pool.connection() as conn:  # commits on leaving, rolls back on an exception
                    tx = PgTx(conn)
                    result = job(tx, tx.begin(locks()))
                    tx.notify(self._channel)
                    return result
            except _RETRIABLE as exc:
                if attempt == _ATTEMPTS:
                    raise StoreUnavailable(f"postgresql: {exc}") from exc
                log.info("store transaction rolled back (%s); running it again", type(exc).__name__)
            except (psycopg.Error, PoolTimeout) as exc:
                raise StoreUnavailable(f"postgresql: {exc}") from exc
        raise AssertionError("unreachable")

    async def ping(self) -> bool:
        try:
            return await self._tx(lambda tx, now: now > 0)
        except StoreUnavailable:
            return False

    async def take_over(self, owner: str) -> int:
        # Other replicas' leases are live, and a dead replica's expire on their own.
        return 0

    async def accept(
        self, event: ParsedEvent, routes: Sequence[Sequence[Route]], policy: Policy = DEFAULT_POLICY
    ) -> AcceptResult:
        return await self._tx(
            lambda tx, now: core.accept_event(tx, event, routes, now, policy), lambda: event_keys(event)
        )

    async def accept_unprocessable(
        self, body: bytes, reason: str, event_id: str | None, event_type: str | None
    ) -> AcceptResult:
        return await self._tx(lambda tx, now: core.accept_unprocessable(tx, body, reason, event_id, event_type, now))

    async def unprocessable_bodies(self, limit: int = 1000) -> list[tuple[str, bytes]]:
        return await self._tx(lambda tx, now: tx.unprocessable_bodies(limit))

    async def reprocess(
        self, key: str, event: ParsedEvent, routes: Sequence[Sequence[Route]], policy: Policy = DEFAULT_POLICY
    ) -> AcceptResult:
        return await self._tx(
            lambda tx, now: core.reprocess(tx, key, event, routes, now, policy), lambda: event_keys(event)
        )

    async def group_keys(self) -> list[GroupKey]:
        return await self._tx(lambda tx, now: tx.group_keys())

    async def claim(self, target: str, limit: int, owner: str, lease_seconds: float) -> list[WorkItem]:
        return await self._tx(lambda tx, now: tx.claim(target, limit, owner, now, now + lease_seconds))

    async def finish(self, results: Sequence[Finished]) -> None:
        def job(tx: PgTx, now: float) -> None:
            tx.lock_work_rows([r.item.id for r in results])
            with tx.pg.pipeline():
                for result in results:
                    core.finish(tx, result, now)

        await self._tx(job, lambda: (pair_key(r.item.customer_id, r.item.group_id) for r in results))

    async def release(self, items: Sequence[WorkItem]) -> None:
        await self._tx(lambda tx, now: tx.release(items), lambda: (pair_key(i.customer_id, i.group_id) for i in items))

    async def next_due(self, target: str) -> float | None:
        return await self._tx(lambda tx, now: tx.next_due(target, now))

    async def status(self) -> StatusReport:
        report = await self._tx(core.read_status)
        report.storage["size_bytes"] = await self.storage_bytes()
        return report

    async def dead_letters(self, target: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return await self._tx(lambda tx, now: tx.dead_letters(target, limit))

    async def replay_dead_letters(self, ids: Sequence[int] | None = None, target: str | None = None) -> int:
        return await self._tx(lambda tx, now: core.replay_dead_letters(tx, ids, target, now))

    # -- desired state from Plain's API: the rules are core_sync's -------------------------

    async def start_run(self, kind: SyncKind, selection: Sequence[str] | None) -> RunStart:
        return await self._tx(lambda tx, now: core_sync.start_run(tx, kind, selection, now))

    async def merge_members(
        self, group: GroupInfo, members: Sequence[CustomerInfo], stamp: tuple[str, str], routes: Sequence[Route],
        *, write: bool = True,
    ) -> Merged:  # fmt: skip
        return await self._tx(
            lambda tx, now: core_sync.merge_members(tx, group, members, stamp, routes, now, write),
            lambda: (pair_key(c.id, group.id) for c in members),
        )

    async def finish_group(
        self, run_id: int | None, group: GroupInfo, listed: Collection[str], stamp: tuple[str, str],
        routes: Sequence[Route], read: GroupRead, *, write: bool = True,
    ) -> Merged:  # fmt: skip
        return await self._tx(
            lambda tx, now: core_sync.finish_group(tx, run_id, group, listed, stamp, routes, read, now, write)
        )

    async def finish_run(
        self, run_id: int, status: RunStatus, error: str | None = None, next_at: float | None = None
    ) -> RunInfo:
        return await self._tx(lambda tx, now: core_sync.finish_run(tx, run_id, status, error, next_at, now))

    async def known_groups(self) -> list[GroupInfo]:
        return await self._tx(lambda tx, now: tx.known_groups())

    async def resync_group(self, group: GroupInfo, routes: Sequence[Route], *, write: bool = True) -> list[Operation]:
        return await self._tx(lambda tx, now: core_sync.resync_group(tx, group, routes, now, write))

    async def prune(
        self, mapped: Mapping[tuple[str, str], Collection[str]], targets: Collection[str],
        groups: Collection[str] | None = None, *, write: bool = True,
    ) -> list[Operation]:  # fmt: skip
        return await self._tx(lambda tx, now: core_sync.prune(tx, mapped, targets, groups, now, write))

    async def verify(
        self, target: str, dest: str, groups: Collection[str], crm_emails: Collection[str], *, write: bool = True
    ) -> VerifyResult:
        return await self._tx(lambda tx, now: core_sync.verify(tx, target, dest, groups, crm_emails, now, write))

    async def discard_dead_letters(self, ids: Sequence[int]) -> int:
        return await self._tx(lambda tx, now: core.discard_dead_letters(tx, ids, now))

    async def customer_history(self, query: str, limit: int = 10) -> list[CustomerHistory]:
        return await self._tx(lambda tx, now: history.customer_history(tx, query, limit))

    async def recent_events(self, limit: int = 20) -> list[RecentEvent]:
        return await self._tx(lambda tx, now: history.recent_events(tx, limit))

    async def expire(self, kind: PruneKind, before: float, limit: int) -> int:
        return await self._tx(lambda tx, now: core.expire(tx, kind, before, limit))

    async def storage_bytes(self) -> int | None:
        """Tables of this store's schema with their indexes and TOAST: what the server keeps for it."""
        return await self._tx(lambda tx, now: int(tx.conn.execute(_SIZE).fetchone()[0]))
