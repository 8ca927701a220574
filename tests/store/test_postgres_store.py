"""What only the PostgreSQL store has: migrations under a lock, replicas sharing work, wake-ups.

The rules every store keeps are in the shared store suite; these tests are about several
store instances (as several replicas) on one database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from connector.store import Route, StoreUnavailable, open_store
from connector.store.base import Store

from tests.store.events import ENT, accept, event


def _store(url: str) -> Store:
    return open_store(url, Path("."))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_replicas_starting_together_apply_each_migration_once(pg_url: str) -> None:
    import psycopg
    from connector.store.postgres.schema import SCHEMA_VERSION

    async def scenario() -> None:
        stores = [_store(pg_url) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        await asyncio.gather(*(s.close() for s in stores))

    run(scenario())
    with psycopg.connect(pg_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_a_database_from_a_newer_release_is_refused(pg_url: str) -> None:
    import psycopg

    run(_open_and_close(pg_url))
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO schema_migrations (version, description) VALUES (999, 'from the future')")

    with pytest.raises(StoreUnavailable, match=r"newer plain-crm-sync \(schema 999 > \d+\)"):
        run(_open_and_close(pg_url))


async def _open_and_close(url: str) -> None:
    s = _store(url)
    await s.open()
    await s.close()


def test_replicas_claiming_at_once_never_share_an_item(pg_url: str) -> None:
    async def scenario() -> list[int]:
        replicas = [_store(pg_url) for _ in range(3)]
        await asyncio.gather(*(s.open() for s in replicas))
        for n in range(60):
            await accept(replicas[n % 3], event(f"pEv_{n}", "2026-01-01T00:00:01Z", [], [ENT], customer=f"c_{n}"))

        async def drain(store: Store, owner: str) -> list[int]:
            got: list[int] = []
            while batch := await store.claim("audit", 7, owner, 60):
                got += [i.id for i in batch]
            return got

        claimed = await asyncio.gather(*(drain(s, f"r{i}") for i, s in enumerate(replicas)))
        await asyncio.gather(*(s.close() for s in replicas))
        return [i for c in claimed for i in c]

    ids = run(scenario())
    assert len(ids) == len(set(ids)) == 60


def test_work_accepted_by_one_replica_wakes_the_others(pg_url: str) -> None:
    async def scenario() -> list[str]:
        heard: asyncio.Queue[str] = asyncio.Queue()
        idle, busy = _store(pg_url), _store(pg_url)
        idle.on_new_work(lambda targets: [heard.put_nowait(t) for t in targets])
        await idle.open()
        await busy.open()
        await busy.accept(
            event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]), [[Route("audit", "{}"), Route("crm", "{}")]]
        )
        got = sorted([await asyncio.wait_for(heard.get(), 30), await asyncio.wait_for(heard.get(), 30)])
        await idle.close()
        await busy.close()
        return got

    assert run(scenario()) == ["audit", "crm"]


def test_an_unreachable_server_is_unavailable_and_the_password_never_shown() -> None:
    s = _store("postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=2")
    with pytest.raises(StoreUnavailable) as caught:
        run(s.open())
    assert "s3cret-pw" not in str(caught.value) and "***" in str(caught.value)


def test_a_schema_2_database_is_upgraded_in_place_with_its_work(pg_url: str) -> None:
    import psycopg
    from connector.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE

    with psycopg.connect(pg_url) as conn:  # what the release before lifecycle left behind
        conn.execute(VERSION_TABLE)
        for step in MIGRATIONS[:2]:
            conn.execute(step.sql)
            conn.execute("INSERT INTO schema_migrations (version, description) VALUES (%s, 'old')", (step.version,))
        conn.execute("INSERT INTO groups VALUES ('g1', 'vip', 'VIP', 0, '2024-01-02', 'e2')")
        conn.execute("INSERT INTO customers VALUES ('c1', 'a@example.com', NULL, NULL, '2024-01-02', 'e2')")
        conn.execute(
            "INSERT INTO outbox (target, dest, customer_id, group_id, desired, event_id, due_at)"
            " VALUES ('crm', '{}', 'c1', 'g1', 1, 'e2', 0)"
        )

    async def scenario() -> tuple[list[Any], list[Any]]:
        s = _store(pg_url)
        await s.open()
        try:
            return await s.group_keys(), await s.claim("crm", 10, "me", 60)
        finally:
            await s.close()

    keys, items = run(scenario())
    assert [(k.key, k.group_id, k.deleted) for k in keys] == [("vip", "g1", False)]
    assert [(i.customer_id, i.email, i.contact, i.desired) for i in items] == [("c1", "a@example.com", "", True)]
    with psycopg.connect(pg_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
