"""The scale-out store: several ``serve`` replicas share one PostgreSQL database.

Work is claimed with ``FOR UPDATE SKIP LOCKED`` and a lease (owner and expiry, on the
database clock): replicas never wait for each other's claims, a lease whose replica died
simply expires and the row is claimed again, and an outcome is written back only while
the writer still owns the lease. Idle runners are woken by ``LISTEN/NOTIFY`` (payload:
the target's name) when another replica accepts work; polling stays as the fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from connector.plain.changes import ParsedEvent
from connector.store.base import (
    AcceptResult,
    DeadLetter,
    Finished,
    Route,
    StatusReport,
    Store,
    StoreUnavailable,
    WorkItem,
)
from connector.store.postgres import accept as pg_accept
from connector.store.postgres import status as pg_status
from connector.store.postgres.accept import NOW, Cursor
from connector.store.postgres.listen import Listener, channel_name, redact_url
from connector.store.postgres.migrate import migrate
from connector.store.postgres.outbox import claim_sql, finish_one

log = logging.getLogger("connector.store")

T = TypeVar("T")
#: a deadlock or serialization failure rolled the transaction back whole: safe to run again
_RETRIABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_ATTEMPTS = 3


class PostgresStore(Store):
    def __init__(self, url: str, pool_size: int = 10, connect_timeout: float = 10.0) -> None:
        self.url = url
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[Any] | None = None
        self._channel = ""
        self._listener: Listener | None = None
        self._subscribers: list[Callable[[Iterable[str]], None]] = []

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.url)!r})"

    async def open(self) -> None:
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, connect_timeout=int(self.connect_timeout))
            async with conn:
                await migrate(conn)
                cur = await conn.execute("SELECT current_schema()")
                row = await cur.fetchone()
            self._channel = channel_name(str(row[0]) if row else "public")
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                self.url, min_size=1, max_size=self.pool_size, open=False, timeout=self.connect_timeout
            )
            await pool.open(wait=True, timeout=self.connect_timeout)
        except StoreUnavailable:
            raise
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(f"cannot open {redact_url(self.url)}: {exc}") from exc
        self._pool = pool
        if self._subscribers:
            self._listener = Listener(self.url, self._channel, self._wake_subscribers)
            await self._listener.start()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def on_new_work(self, wake: Callable[[Iterable[str]], None]) -> None:
        self._subscribers.append(wake)

    def _wake_subscribers(self, targets: Iterable[str]) -> None:
        names = list(targets)
        for wake in self._subscribers:
            wake(names)

    async def _tx(self, job: Callable[[Cursor], Awaitable[T]]) -> T:
        """Run ``job`` in one transaction, committed before returning."""
        if self._pool is None:
            raise StoreUnavailable("the store is closed")
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self._pool.connection() as conn, conn.cursor() as cur:
                    return await job(cur)
            except _RETRIABLE as exc:
                if attempt == _ATTEMPTS:
                    raise StoreUnavailable(f"postgresql: {exc}") from exc
                log.info("store transaction rolled back (%s); running it again", type(exc).__name__)
            except (psycopg.Error, PoolTimeout) as exc:
                raise StoreUnavailable(f"postgresql: {exc}") from exc
        raise AssertionError("unreachable")

    async def ping(self) -> bool:
        async def job(cur: Cursor) -> bool:
            await cur.execute("SELECT 1")
            return (await cur.fetchone()) == (1,)

        try:
            return await self._tx(job)
        except StoreUnavailable:
            return False

    async def take_over(self, owner: str) -> int:
        # Other replicas' leases are live, and a dead replica's expire on their own.
        return 0

    async def accept(self, event: ParsedEvent, routes: Sequence[Sequence[Route]]) -> AcceptResult:
        return await self._tx(lambda cur: pg_accept.accept_event(cur, event, routes, self._channel))

    async def accept_unprocessable(
        self, body: bytes, reason: str, event_id: str | None, event_type: str | None
    ) -> AcceptResult:
        return await self._tx(lambda cur: pg_accept.accept_unprocessable(cur, body, reason, event_id, event_type))

    async def unprocessable_bodies(self, limit: int = 1000) -> list[tuple[str, bytes]]:
        async def job(cur: Cursor) -> list[tuple[str, bytes]]:
            await cur.execute(
                "SELECT event_id, body FROM inbox WHERE status = 'unprocessable' ORDER BY received_at LIMIT %s",
                (limit,),
            )
            return [(str(k), bytes(b)) for k, b in await cur.fetchall()]

        return await self._tx(job)

    async def reprocess(self, key: str, event: ParsedEvent, routes: Sequence[Sequence[Route]]) -> AcceptResult:
        async def job(cur: Cursor) -> AcceptResult:
            await cur.execute("DELETE FROM inbox WHERE event_id = %s AND status = 'unprocessable'", (key,))
            return await pg_accept.accept_event(cur, event, routes, self._channel)

        return await self._tx(job)

    async def claim(self, target: str, limit: int, owner: str, lease_seconds: float) -> list[WorkItem]:
        async def job(cur: Cursor) -> list[WorkItem]:
            await cur.execute(claim_sql(), {"target": target, "limit": limit, "owner": owner, "lease": lease_seconds})
            return [_work_item(r) for r in await cur.fetchall()]

        return await self._tx(job)

    async def finish(self, results: Sequence[Finished]) -> None:
        async def job(cur: Cursor) -> None:
            await pg_accept.lock_entities(
                cur, (pg_accept.pair_key(r.item.customer_id, r.item.group_id) for r in results)
            )
            for result in results:
                await finish_one(cur, result)

        await self._tx(job)

    async def release(self, items: Sequence[WorkItem]) -> None:
        async def job(cur: Cursor) -> None:
            await cur.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL"
                " FROM unnest(%s::bigint[], %s::text[]) AS r(id, owner)"
                " WHERE outbox.id = r.id AND outbox.lease_owner = r.owner RETURNING outbox.target",
                ([i.id for i in items], [i.lease_owner for i in items]),
            )
            # Another replica may be idle with nothing to do: this work is due now.
            await pg_accept.notify(cur, self._channel, (str(r[0]) for r in await cur.fetchall()))

        await self._tx(job)

    async def next_due(self, target: str) -> float | None:
        async def job(cur: Cursor) -> float | None:
            await cur.execute(
                "SELECT min(CASE WHEN lease_until IS NOT NULL AND lease_until >= now.t THEN lease_until"
                f" ELSE due_at END) FROM outbox, (SELECT {NOW} AS t) AS now WHERE target = %s",
                (target,),
            )
            row = await cur.fetchone()
            return None if row is None or row[0] is None else float(row[0])

        return await self._tx(job)

    async def status(self) -> StatusReport:
        return await self._tx(pg_status.read_status)

    async def dead_letters(self, target: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return await self._tx(lambda cur: pg_status.read_dead_letters(cur, target, limit))

    async def replay_dead_letters(self, ids: Sequence[int] | None = None, target: str | None = None) -> int:
        return await self._tx(lambda cur: pg_status.replay_dead_letters(cur, ids, target, self._channel))


def _work_item(r: tuple[Any, ...]) -> WorkItem:
    return WorkItem(
        id=r[0], version=r[1], target=r[2], dest=r[3], customer_id=r[4], group_id=r[5], desired=bool(r[6]),
        attempts=r[7], lease_owner=r[8], email=r[9], external_id=r[10], full_name=r[11], group_key=r[12],
        group_name=r[13], event_id=r[14], event_time=r[15],
    )  # fmt: skip
