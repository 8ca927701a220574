"""The embedded default store: one SQLite file in WAL mode, written by one thread."""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

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
from connector.store.sql import SqlTx
from connector.store.sql_batch import BatchTx
from connector.store.sqlite.groupcommit import GroupCommitter
from connector.store.sqlite.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION

T = TypeVar("T")
_Accept = tuple[ParsedEvent, Sequence[Sequence[Route]], Policy]


def connect(path: Path) -> sqlite3.Connection:
    """A connection tuned for durability first: WAL, and a full fsync at every commit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def _upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Bring the file to :data:`SCHEMA_VERSION` in one transaction (all or nothing)."""
    if version == SCHEMA_VERSION:
        return
    if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'outbox'").fetchone()[0]:
        version = 1  # tables written before the version was recorded have the first shape
    if version == 2 and not _has_column(conn, "customers", "deleted"):
        version = 1  # a pre-release history-only schema 2 (attempts, no lifecycle columns)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if version > 0:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, description) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (SCHEMA_VERSION, f"schema {SCHEMA_VERSION}"),
        )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class SQLiteStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = GroupCommitter(self._open_connection)
        self._lock: IO[str] | None = None

    def _open_connection(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path)
        version = max(conn.execute("PRAGMA user_version").fetchone()[0], _recorded_version(conn))
        if version > SCHEMA_VERSION:
            conn.close()
            raise sqlite3.DatabaseError(
                f"{self.path} was written by a newer plain-crm-sync (schema {version} > {SCHEMA_VERSION})"
            )
        try:
            _upgrade(conn, version)
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    async def open(self) -> None:
        try:
            await self._writer.start()
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc

    async def close(self) -> None:
        await self._writer.stop()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def take_over(self, owner: str) -> int:
        lock_path = self.path.with_name(self.path.name + ".serve.lock")
        lock = open(lock_path, "a+")  # noqa: SIM115, ASYNC230 -- held for the life of serve; opening is instant
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise StoreUnavailable(f"another `serve` is already running on {self.path}") from None
        self._lock = lock
        return await self._tx(lambda tx: tx.release_all())

    async def _run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._writer.run(job)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    async def _tx(self, job: Callable[[SqlTx], T]) -> T:
        """Run ``job`` on the store's primitives inside the next group's transaction."""
        return await self._run(lambda conn: job(SqlTx(conn)))

    async def ping(self) -> bool:
        try:
            return await self._run(lambda conn: conn.execute("SELECT 1").fetchone()[0] == 1)
        except StoreUnavailable:
            return False

    async def accept(
        self, event: ParsedEvent, routes: Sequence[Sequence[Route]], policy: Policy = DEFAULT_POLICY
    ) -> AcceptResult:
        def one(conn: sqlite3.Connection) -> AcceptResult:
            return core.accept_event(SqlTx(conn), event, routes, time.time(), policy)

        try:
            return await self._writer.run_batched(_accept_many, one, (event, routes, policy))
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    async def accept_unprocessable(
        self, body: bytes, reason: str, event_id: str | None, event_type: str | None
    ) -> AcceptResult:
        return await self._tx(lambda tx: core.accept_unprocessable(tx, body, reason, event_id, event_type, time.time()))

    async def unprocessable_bodies(self, limit: int = 1000) -> list[tuple[str, bytes]]:
        return await self._tx(lambda tx: tx.unprocessable_bodies(limit))

    async def reprocess(
        self, key: str, event: ParsedEvent, routes: Sequence[Sequence[Route]], policy: Policy = DEFAULT_POLICY
    ) -> AcceptResult:
        return await self._tx(lambda tx: core.reprocess(tx, key, event, routes, time.time(), policy))

    async def group_keys(self) -> list[GroupKey]:
        return await self._tx(lambda tx: tx.group_keys())

    async def claim(self, target: str, limit: int, owner: str, lease_seconds: float) -> list[WorkItem]:
        def job(tx: SqlTx) -> list[WorkItem]:
            now = time.time()
            return tx.claim(target, limit, owner, now, now + lease_seconds)

        return await self._tx(job)

    async def finish(self, results: Sequence[Finished]) -> None:
        def job(tx: SqlTx) -> None:
            for result in results:
                core.finish(tx, result, time.time())

        await self._tx(job)

    async def release(self, items: Sequence[WorkItem]) -> None:
        await self._tx(lambda tx: tx.release(items))

    async def next_due(self, target: str) -> float | None:
        return await self._tx(lambda tx: tx.next_due(target, time.time()))

    async def status(self) -> StatusReport:
        report = await self._tx(lambda tx: core.read_status(tx, time.time()))
        report.storage["size_bytes"] = await self.storage_bytes()
        return report

    async def dead_letters(self, target: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return await self._tx(lambda tx: tx.dead_letters(target, limit))

    async def replay_dead_letters(self, ids: Sequence[int] | None = None, target: str | None = None) -> int:
        return await self._tx(lambda tx: core.replay_dead_letters(tx, ids, target, time.time()))

    # -- desired state from Plain's API: the rules are core_sync's -------------------------

    async def start_run(self, kind: SyncKind, selection: Sequence[str] | None) -> RunStart:
        return await self._tx(lambda tx: core_sync.start_run(tx, kind, selection, time.time()))

    async def merge_members(
        self, group: GroupInfo, members: Sequence[CustomerInfo], stamp: tuple[str, str], routes: Sequence[Route],
        *, write: bool = True,
    ) -> Merged:  # fmt: skip
        return await self._tx(lambda tx: core_sync.merge_members(tx, group, members, stamp, routes, time.time(), write))

    async def finish_group(
        self, run_id: int | None, group: GroupInfo, listed: Collection[str], stamp: tuple[str, str],
        routes: Sequence[Route], read: GroupRead, *, write: bool = True,
    ) -> Merged:  # fmt: skip
        return await self._tx(
            lambda tx: core_sync.finish_group(tx, run_id, group, listed, stamp, routes, read, time.time(), write)
        )

    async def finish_run(
        self, run_id: int, status: RunStatus, error: str | None = None, next_at: float | None = None
    ) -> RunInfo:
        return await self._tx(lambda tx: core_sync.finish_run(tx, run_id, status, error, next_at, time.time()))

    async def known_groups(self) -> list[GroupInfo]:
        return await self._tx(lambda tx: tx.known_groups())

    async def resync_group(self, group: GroupInfo, routes: Sequence[Route], *, write: bool = True) -> list[Operation]:
        return await self._tx(lambda tx: core_sync.resync_group(tx, group, routes, time.time(), write))

    async def prune(
        self, mapped: Mapping[tuple[str, str], Collection[str]], targets: Collection[str],
        groups: Collection[str] | None = None, *, write: bool = True,
    ) -> list[Operation]:  # fmt: skip
        return await self._tx(lambda tx: core_sync.prune(tx, mapped, targets, groups, time.time(), write))

    async def verify(
        self, target: str, dest: str, groups: Collection[str], crm_emails: Collection[str], *, write: bool = True
    ) -> VerifyResult:
        return await self._tx(lambda tx: core_sync.verify(tx, target, dest, groups, crm_emails, time.time(), write))

    async def discard_dead_letters(self, ids: Sequence[int]) -> int:
        return await self._tx(lambda tx: core.discard_dead_letters(tx, ids, time.time()))

    async def customer_history(self, query: str, limit: int = 10) -> list[CustomerHistory]:
        return await self._tx(lambda tx: history.customer_history(tx, query, limit))

    async def recent_events(self, limit: int = 20) -> list[RecentEvent]:
        return await self._tx(lambda tx: history.recent_events(tx, limit))

    async def expire(self, kind: PruneKind, before: float, limit: int) -> int:
        return await self._tx(lambda tx: core.expire(tx, kind, before, limit))

    async def storage_bytes(self) -> int | None:
        """The file plus its write-ahead log: what the disk holds."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += self.path.with_name(self.path.name + suffix).stat().st_size
            except FileNotFoundError:
                pass
        return total


def _accept_many(conn: sqlite3.Connection, items: list[_Accept]) -> list[AcceptResult]:
    """Accept the events of one group commit at once: the same rules, batched statements."""
    tx = BatchTx(SqlTx(conn))
    tx.prefetch((event, routes) for event, routes, _policy in items)
    results = [core.accept_event(tx, event, routes, time.time(), policy) for event, routes, policy in items]
    tx.flush()
    return results


def _recorded_version(conn: sqlite3.Connection) -> int:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    if found is None:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(r[1] == column for r in conn.execute(f"PRAGMA table_info({table})"))
