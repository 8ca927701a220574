"""A scratch PostgreSQL schema per test run, so runs on one server never see each other's rows."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

#: the server the PostgreSQL tests use; unset means they skip
ENV = "PLAIN_CRM_SYNC_TEST_POSTGRES"


def server_url() -> str | None:
    return os.environ.get(ENV) or None


def with_schema(url: str, schema: str) -> str:
    """``url`` with ``schema`` first on the search path (libpq's ``options``)."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def scratch_schema(url: str, prefix: str = "t") -> Iterator[str]:
    """Create a fresh schema, yield a store URL that uses it, and drop it afterwards."""
    import psycopg
    from psycopg import sql

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield with_schema(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
