"""Durable state behind one interface; pick the implementation from the store URL."""

from __future__ import annotations

from pathlib import Path

from connector.store.base import (
    AcceptResult,
    DeadLetter,
    Finished,
    Route,
    StatusReport,
    Store,
    StoreUnavailable,
    TargetStatus,
    WorkItem,
)

__all__ = [
    "AcceptResult",
    "DeadLetter",
    "Finished",
    "Route",
    "StatusReport",
    "Store",
    "StoreURLError",
    "StoreUnavailable",
    "TargetStatus",
    "WorkItem",
    "missing_store",
    "open_empty_store",
    "open_store",
]  # fmt: skip


class StoreURLError(ValueError):
    pass


def sqlite_path(url: str, base_dir: Path) -> Path:
    """``sqlite:///rel.db`` is relative to ``base_dir``; ``sqlite:////abs.db`` is absolute."""
    rest = url[len("sqlite:///") :]
    if not rest:
        raise StoreURLError(f"store url {url!r} names no file")
    path = Path(rest)
    return path if path.is_absolute() else (base_dir / path).resolve()


def open_store(url: str, base_dir: Path) -> Store:
    """The store for ``url`` (not yet opened)."""
    if url.startswith("sqlite:///"):
        from connector.store.sqlite import SQLiteStore

        return SQLiteStore(sqlite_path(url, base_dir))
    if url.startswith(("postgresql://", "postgres://")):
        from connector.store.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreURLError(f"unsupported store url {url.split(':', 1)[0]!r}: expected sqlite:/// or postgresql://")


def missing_store(url: str, base_dir: Path) -> str | None:
    """Where ``url`` points if no store is there yet (opening it would create one): the SQLite
    file that does not exist, or the PostgreSQL database without our tables (password left out)."""
    if url.startswith("sqlite:///"):
        path = sqlite_path(url, base_dir)
        return None if path.exists() else str(path)
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        from connector.store.postgres.listen import redact_url
        from connector.store.postgres.migrate import schema_missing

        try:
            return redact_url(url) if schema_missing(url) else None
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot open {redact_url(url)}: {exc}") from exc
    return None


def open_empty_store() -> Store:
    """A store holding nothing, in memory only: what a dry run reads where no store exists yet."""
    from connector.store.sqlite import SQLiteStore

    return SQLiteStore(Path(":memory:"))
