"""The PostgreSQL store (needs the ``postgres`` extra: psycopg 3 and psycopg_pool)."""

from __future__ import annotations

try:
    from connector.store.postgres.store import PostgresStore
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError(
        f"the PostgreSQL store needs the 'postgres' extra: pip install 'plain-crm-sync[postgres]' ({exc})"
    ) from exc

__all__ = ["PostgresStore"]
