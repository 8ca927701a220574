"""What only the SQLite store does: its URL, its serve lock, its schema version."""

from __future__ import annotations

from pathlib import Path

from connector.store import open_store, sqlite_path

from tests.store.conftest import sqlite_store
from tests.store.events import ENT, accept, claim, event, run


def test_store_url_relative_and_absolute(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:///data/x.db", tmp_path) == tmp_path / "data" / "x.db"
    assert sqlite_path("sqlite:////var/x.db", tmp_path) == Path("/var/x.db")


def test_take_over_releases_a_dead_predecessors_leases_and_locks_the_store(tmp_path: Path) -> None:
    from connector.store import StoreUnavailable

    store = sqlite_store(tmp_path)

    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        assert len(await claim(s, "dead-process", lease=600)) == 1
        await s.close()  # as if killed: the lease is still in the file

        s = store()
        await s.open()
        released = await s.take_over("new-process")
        other = store()
        await other.open()
        try:
            await other.take_over("intruder")
            raise AssertionError("a second take_over must be refused")
        except StoreUnavailable as exc:
            assert "already running" in str(exc)
        finally:
            await other.close()
        items = await claim(s, "new-process")
        await s.close()
        assert released == 1 and len(items) == 1

    run(scenario())


def test_a_store_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from connector.store import StoreUnavailable
    from connector.store.sqlite.schema import SCHEMA_VERSION

    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("PRAGMA user_version = 999")
    conn.close()

    async def scenario() -> str:
        s = open_store("sqlite:///t.db", tmp_path)
        try:
            await s.open()
        except StoreUnavailable as exc:
            return str(exc)
        await s.close()
        return "opened"

    assert f"newer plain-crm-sync (schema 999 > {SCHEMA_VERSION})" in run(scenario())


def test_the_version_table_records_the_schema_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from connector.store import StoreUnavailable
    from connector.store.sqlite.schema import SCHEMA_VERSION

    run(_open_and_close(tmp_path))
    conn = sqlite3.connect(tmp_path / "t.db")
    recorded = conn.execute("SELECT version FROM schema_migrations").fetchall()
    with conn:
        conn.execute("INSERT INTO schema_migrations (version, description) VALUES (7, 'from the future')")
    conn.close()
    assert recorded == [(SCHEMA_VERSION,)]
    try:
        run(_open_and_close(tmp_path))
        raise AssertionError("a store from a newer release must be refused")
    except StoreUnavailable as exc:
        assert f"newer plain-crm-sync (schema 7 > {SCHEMA_VERSION})" in str(exc)


async def _open_and_close(tmp_path: Path) -> None:
    s = open_store("sqlite:///t.db", tmp_path)
    await s.open()
    await s.close()
