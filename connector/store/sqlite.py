"""The embedded default store: one SQLite file in WAL mode, written by one thread."""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from connector.plain.changes import ParsedEvent
from connector.store import sqlite_accept
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
from connector.store.groupcommit import GroupCommitter
from connector.store.sqlite_schema import SCHEMA, SCHEMA_VERSION
from connector.store.sqlite_status import read_dead_letters, read_status, replay_dead_letters

_CLAIM_COLUMNS = (
    "o.id, o.version, o.target, o.dest, o.customer_id, o.group_id, o.desired, o.attempts, o.lease_owner,"
    " c.email, c.external_id, c.full_name, g.group_key, g.name, o.event_id, m.event_time"
)
_CLAIM_JOINS = (
    " FROM outbox o LEFT JOIN customers c ON c.customer_id = o.customer_id"
    " LEFT JOIN groups g ON g.group_id = o.group_id"
    " LEFT JOIN memberships m ON m.customer_id = o.customer_id AND m.group_id = o.group_id"
)


def connect(path: Path) -> sqlite3.Connection:
    """A connection tuned for durability first: WAL, and a full fsync at every commit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


class SQLiteStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = GroupCommitter(self._open_connection)
        self._lock: IO[str] | None = None

    def _open_connection(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            conn.close()
            raise sqlite3.DatabaseError(
                f"{self.path} was written by a newer plain-crm-sync (schema {version} > {SCHEMA_VERSION})"
            )
        conn.executescript(SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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
        return await self._run(
            lambda conn: (
                conn.execute(
                    "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL"
                ).rowcount
            )
        )

    async def _run(self, job: Any) -> Any:
        try:
            return await self._writer.run(job)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    async def ping(self) -> bool:
        try:
            return await self._run(lambda conn: conn.execute("SELECT 1").fetchone()[0] == 1)
        except StoreUnavailable:
            return False

    async def accept(self, event: ParsedEvent, routes: Sequence[Sequence[Route]]) -> AcceptResult:
        return await self._run(lambda conn: sqlite_accept.accept_event(conn, event, routes))

    async def accept_unprocessable(
        self, body: bytes, reason: str, event_id: str | None, event_type: str | None
    ) -> AcceptResult:
        return await self._run(
            lambda conn: sqlite_accept.accept_unprocessable(conn, body, reason, event_id, event_type)
        )

    async def unprocessable_bodies(self, limit: int = 1000) -> list[tuple[str, bytes]]:
        return await self._run(
            lambda conn: conn.execute(
                "SELECT event_id, body FROM inbox WHERE status = 'unprocessable' ORDER BY received_at LIMIT ?", (limit,)
            ).fetchall()
        )

    async def reprocess(self, key: str, event: ParsedEvent, routes: Sequence[Sequence[Route]]) -> AcceptResult:
        def job(conn: sqlite3.Connection) -> AcceptResult:
            conn.execute("DELETE FROM inbox WHERE event_id = ? AND status = 'unprocessable'", (key,))
            return sqlite_accept.accept_event(conn, event, routes)

        return await self._run(job)

    async def claim(self, target: str, limit: int, owner: str, lease_seconds: float) -> list[WorkItem]:
        def job(conn: sqlite3.Connection) -> list[WorkItem]:
            now = time.time()
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM outbox WHERE target = ? AND due_at <= ?"
                    " AND (lease_until IS NULL OR lease_until < ?) ORDER BY due_at, id LIMIT ?",
                    (target, now, now, limit),
                )
            ]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            conn.execute(
                f"UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id IN ({marks})",
                (owner, now + lease_seconds, *ids),
            )
            rows = conn.execute(
                f"SELECT {_CLAIM_COLUMNS}{_CLAIM_JOINS} WHERE o.id IN ({marks}) ORDER BY o.due_at, o.id", ids
            )
            return [_work_item(r) for r in rows]

        return await self._run(job)

    async def finish(self, results: Sequence[Finished]) -> None:
        await self._run(lambda conn: [_finish_one(conn, r, time.time()) for r in results])

    async def release(self, items: Sequence[WorkItem]) -> None:
        def job(conn: sqlite3.Connection) -> None:
            for item in items:
                conn.execute(
                    "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                    (item.id, item.lease_owner),
                )

        await self._run(job)

    async def next_due(self, target: str) -> float | None:
        def job(conn: sqlite3.Connection) -> float | None:
            now = time.time()
            row = conn.execute(
                "SELECT min(CASE WHEN lease_until IS NOT NULL AND lease_until >= ? THEN lease_until ELSE due_at END)"
                " FROM outbox WHERE target = ?",
                (now, target),
            ).fetchone()
            return row[0]

        return await self._run(job)

    async def status(self) -> StatusReport:
        return await self._run(read_status)

    async def dead_letters(self, target: str | None = None, limit: int = 100) -> list[DeadLetter]:
        return await self._run(lambda conn: read_dead_letters(conn, target, limit))

    async def replay_dead_letters(self, ids: Sequence[int] | None = None, target: str | None = None) -> int:
        return await self._run(lambda conn: replay_dead_letters(conn, ids, target))


def _work_item(r: tuple[Any, ...]) -> WorkItem:
    return WorkItem(
        id=r[0], version=r[1], target=r[2], dest=r[3], customer_id=r[4], group_id=r[5], desired=bool(r[6]),
        attempts=r[7], lease_owner=r[8], email=r[9], external_id=r[10], full_name=r[11], group_key=r[12],
        group_name=r[13], event_id=r[14], event_time=r[15],
    )  # fmt: skip


def _finish_one(conn: sqlite3.Connection, result: Finished, now: float) -> None:
    item = result.item
    key = (item.target, item.dest, item.customer_id, item.group_id)
    if result.kind in ("done", "skipped"):
        # A confirmed change is a fact about the CRM whoever holds the lease now.
        note = "confirmed" if result.kind == "done" else "not_in_crm"
        conn.execute(
            "INSERT INTO applied (target, dest, customer_id, group_id, member, note, detail, applied_at)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (target, dest, customer_id, group_id) DO UPDATE SET"
            " member = excluded.member, note = excluded.note, detail = excluded.detail, applied_at = excluded.applied_at",
            (*key, int(item.desired), note, result.reason, now),
        )
    row = conn.execute("SELECT version, desired, lease_owner FROM outbox WHERE id = ?", (item.id,)).fetchone()
    if row is None or row[2] != item.lease_owner:
        return  # the lease expired and someone else owns the row now
    version, desired, _owner = row
    if version != item.version:
        # Desired state moved while we were busy: drop the row if what we just confirmed
        # is what is now wanted, else make the new wish due at once.
        if result.kind in ("done", "skipped") and desired == int(item.desired):
            conn.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
        else:
            conn.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL, due_at = ?, attempts = 0 WHERE id = ?",
                (now, item.id),
            )
        return
    if result.kind in ("done", "skipped"):
        conn.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
    elif result.kind == "retry":
        conn.execute(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL, attempts = attempts + 1, due_at = ?,"
            " last_error = ? WHERE id = ?",
            (result.due_at or now, result.reason, item.id),
        )
    else:
        conn.execute(
            "INSERT INTO dead_letters (target, dest, customer_id, group_id, desired, event_id, attempts, reason,"
            " failed_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (*key, int(item.desired), item.event_id, item.attempts + 1, result.reason or "failed", now),
        )
        conn.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
