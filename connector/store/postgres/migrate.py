"""Versioned migrations, applied by whichever replica starts first.

Replicas starting together take one session-level advisory lock (per schema) around the
whole upgrade, so exactly one applies each migration and the others find it done.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from connector.store.base import StoreUnavailable
from connector.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE

log = logging.getLogger("connector.store")

_LOCK_KEY = "hashtext('plain-crm-sync migrations ' || current_schema())"


class NewerSchema(StoreUnavailable):
    """The database was written by a newer release; this one must not touch it."""


async def migrate(conn: psycopg.AsyncConnection[Any]) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`; return how many migrations ran."""
    await conn.set_autocommit(True)
    await conn.execute(f"SELECT pg_advisory_lock({_LOCK_KEY})")
    try:
        async with conn.transaction():
            await conn.execute(VERSION_TABLE)
        cur = await conn.execute("SELECT coalesce(max(version), 0), current_schema() FROM schema_migrations")
        row = await cur.fetchone()
        assert row is not None
        current, schema = int(row[0]), row[1]
        if current > SCHEMA_VERSION:
            raise NewerSchema(
                f"schema {schema!r} was written by a newer plain-crm-sync (schema {current} > {SCHEMA_VERSION});"
                " upgrade this release or point it at another database"
            )
        ran = 0
        for step in MIGRATIONS:
            if step.version <= current:
                continue
            async with conn.transaction():
                await conn.execute(step.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                    (step.version, step.description),
                )
            log.info("store schema %r migrated to version %d: %s", schema, step.version, step.description)
            ran += 1
        return ran
    finally:
        await conn.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})")


def schema_missing(url: str, connect_timeout: float = 10.0) -> bool:
    """Whether the database at ``url`` holds no store yet (no ``schema_migrations`` in its
    search path): what opening a store would create. Raises psycopg's errors."""
    with psycopg.connect(url, connect_timeout=int(connect_timeout)) as conn:
        row = conn.execute("SELECT to_regclass('schema_migrations') IS NULL").fetchone()
    return bool(row and row[0])
