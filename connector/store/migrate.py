"""``migrate-store``: copy every table of one store into another (SQLite <-> PostgreSQL).

Copied: the inbox (so redeliveries of events already seen stay duplicates, and kept
unprocessable bodies come along), customers, groups and which group had each key, desired
state, applied state, pending work, dead letters, the attempt history and the
backfill/reconcile run records (so an interrupted backfill
resumes after the move and ``status`` still shows the last runs), ids included. Leases are
not copied: nothing is in flight in a store nobody serves yet. Shared rate-limit buckets are
not state and are not copied. The whole destination is written in one transaction, so a
failed copy leaves it as it was.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.store import StoreUnavailable, StoreURLError, open_store, sqlite_path

#: table -> columns, in an order that is valid for both backends
TABLES: dict[str, tuple[str, ...]] = {
    "inbox": ("event_id", "event_type", "event_time", "received_at", "status", "reason", "body"),
    "customers": ("customer_id", "email", "external_id", "full_name", "deleted", "event_time", "event_id"),
    "groups": ("group_id", "group_key", "name", "deleted", "event_time", "event_id"),
    "group_keys": ("group_key", "group_id", "event_time", "event_id"),
    "memberships": ("customer_id", "group_id", "member", "event_time", "event_id", "first_time", "first_id"),
    "applied": ("target", "dest", "customer_id", "group_id", "member", "note", "detail", "applied_at"),
    "outbox": (
        "id", "target", "dest", "customer_id", "group_id", "desired", "version", "event_id", "due_at", "attempts",
        "lease_owner", "lease_until", "last_error", "contact",
    ),
    "dead_letters": (
        "id", "target", "dest", "customer_id", "group_id", "desired", "event_id", "attempts", "reason", "failed_at",
        "contact",
    ),
    "attempts": (
        "id", "target", "dest", "customer_id", "group_id", "desired", "event_id", "kind", "attempt", "reason", "at",
    ),
    "sync_runs": ("id", "kind", "selection", "status", "started_at", "finished_at", "error", "next_at"),
    "sync_run_groups": ("run_id", "group_id", "group_key", "pages", "customers", "changes", "work", "finished_at"),
}  # fmt: skip
#: columns cleared on the way: a lease belongs to a process of the source's service
_CLEARED = {"lease_owner", "lease_until"}
#: tables whose ids continue after the copied ones
_IDENTITY = ("outbox", "dead_letters", "attempts", "sync_runs")


class DestinationNotEmpty(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Copied:
    rows: dict[str, int]


def migrate_store(source: str, destination: str, force: bool = False, base_dir: Path | None = None) -> Copied:
    """Copy ``source`` into ``destination`` (both store URLs); refuse a non-empty one unless ``force``."""
    base = base_dir or Path.cwd()
    if _same(source, destination, base):
        raise StoreURLError("--from and --to name the same store")
    if source.startswith("sqlite:///") and not sqlite_path(source, base).exists():
        raise StoreURLError(f"--from: {sqlite_path(source, base)} does not exist")
    # Opening each store applies its migrations (and refuses one from a newer release).
    asyncio.run(_open_once(source, base))
    asyncio.run(_open_once(destination, base))
    try:
        with _side(source, base) as src, _side(destination, base) as dst:
            if dst.count_all() and not force:
                raise DestinationNotEmpty(f"{_redact(destination)} already holds data; pass --force to replace it")
            copied = dst.replace({t: _unleased(src.rows(t, cols), cols) for t, cols in TABLES.items()})
    except (sqlite3.Error, _pg_error()) as exc:
        raise StoreUnavailable(f"copy failed, the destination is unchanged: {exc}") from exc
    return Copied(copied)


def _pg_error() -> type[Exception]:
    try:
        import psycopg
    except ImportError:  # without the postgres extra only SQLite stores exist
        return sqlite3.Error
    return psycopg.Error


def _same(a: str, b: str, base: Path) -> bool:
    if a.startswith("sqlite:///") and b.startswith("sqlite:///"):
        return sqlite_path(a, base) == sqlite_path(b, base)
    return a == b


async def _open_once(url: str, base: Path) -> None:
    store = open_store(url, base)
    await store.open()
    await store.close()


def _unleased(rows: Iterable[tuple[Any, ...]], columns: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    cleared = [i for i, c in enumerate(columns) if c in _CLEARED]
    for row in rows:
        yield tuple(None if i in cleared else v for i, v in enumerate(row))


def _redact(url: str) -> str:
    from connector.store.postgres.listen import redact_url

    return redact_url(url)


class _SQLiteSide:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)

    def close(self) -> None:
        self.conn.close()

    def count_all(self) -> int:
        return sum(self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)

    def rows(self, table: str, columns: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
        yield from self.conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}")

    def replace(self, tables: dict[str, Iterator[tuple[Any, ...]]]) -> dict[str, int]:
        counts = {}
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for table, rows in tables.items():
                self.conn.execute(f"DELETE FROM {table}")
                columns = TABLES[table]
                marks = ", ".join("?" * len(columns))
                cur = self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
                counts[table] = cur.rowcount
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return counts


class _PostgresSide:
    """PostgreSQL text holds no NUL: it is removed, as the PostgreSQL store does (see its tx module)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url)

    def close(self) -> None:
        self.conn.close()

    def count_all(self) -> int:
        return sum(self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)  # type: ignore[index]

    def rows(self, table: str, columns: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
        with self.conn.cursor(name=f"migrate_{table}") as cur:  # server-side: streamed, not loaded whole
            cur.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}")
            yield from cur

    def replace(self, tables: dict[str, Iterator[tuple[Any, ...]]]) -> dict[str, int]:
        from connector.store.postgres.tx import pg_text

        counts = {}
        with self.conn.transaction():
            self.conn.execute(f"TRUNCATE {', '.join(TABLES)}")
            for table, rows in tables.items():
                n = 0
                # COPY writes identity columns as given (like OVERRIDING SYSTEM VALUE).
                with self.conn.cursor().copy(f"COPY {table} ({', '.join(TABLES[table])}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([pg_text(v) for v in row])
                        n += 1
                counts[table] = n
            for table in _IDENTITY:
                self.conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false)"
                    f" FROM {table}"
                )
        self.conn.commit()  # counting opened a transaction: the block above was only a savepoint in it
        return counts


@contextmanager
def _side(url: str, base: Path) -> Iterator[_SQLiteSide | _PostgresSide]:
    """One end of the copy, closed afterwards."""
    impl: _SQLiteSide | _PostgresSide
    if url.startswith("sqlite:///"):
        impl = _SQLiteSide(sqlite_path(url, base))
    elif url.startswith(("postgresql://", "postgres://")):
        impl = _PostgresSide(url)
    else:
        raise StoreURLError(f"unsupported store url {url.split(':', 1)[0]!r}")
    try:
        yield impl
    finally:
        impl.close()
