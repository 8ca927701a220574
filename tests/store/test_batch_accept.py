"""SQLite accepts a group commit's events in one batch: it must land exactly as one by one."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from connector.plain.changes import ParsedEvent, parse_event
from connector.store import Route, core
from connector.store.base import Policy
from connector.store.sql import SqlTx
from connector.store.sqlite import store as sqlite_store_module
from connector.store.sqlite.store import SQLiteStore, _accept_many
from connector.testing.plain import customer_event

from tests.store.events import BETA, ENT, event

AUDIT = [Route("audit", "{}")]
#: the enterprise group also goes to "hub" by its key: the batch must read group_keys right
POLICY = Policy(routing={"enterprise": [Route("hub", "{}")], "cg_ent": AUDIT, "cg_beta": AUDIT})

_TABLES = {
    "inbox": "event_id, event_type, event_time, status, reason",
    "customers": "*",
    "groups": "*",
    "group_keys": "*",
    "memberships": "*",
    "applied": "target, dest, customer_id, group_id, member, note, detail",
    "outbox": "target, dest, customer_id, group_id, contact, desired, version, event_id, attempts, lease_owner",
}


def _item(ev: ParsedEvent) -> tuple[ParsedEvent, list[list[Route]], Policy]:
    return ev, [AUDIT] * len(ev.changes), POLICY


def _email_change(event_id: str, ts: str, customer: str, email: str) -> ParsedEvent:
    body = customer_event(
        event_id=event_id, event_type="customer.customer_updated", customer_id=customer, email=email,
        previous_email=f"{customer}@example.com", timestamp=ts,
    )  # fmt: skip
    return parse_event(orjson.dumps(body))


def _before() -> list[ParsedEvent]:
    """State both stores have before the batch, accepted one by one."""
    return [
        event("pEv_s1", "2026-01-01T00:00:05Z", [], [ENT], "c_1"),
        event("pEv_s2", "2026-01-01T00:00:50Z", [], [BETA], "c_6"),
        event("pEv_s3", "2026-01-01T00:00:06Z", [], [ENT], "c_4"),
    ]


def _batch() -> list[ParsedEvent]:
    e1 = event("pEv_b1", "2026-01-01T00:00:10Z", [ENT], [], "c_1")
    return [
        e1,
        e1,  # a duplicate id within the batch
        event("pEv_b2", "2026-01-01T00:00:20Z", [], [BETA], "c_2"),
        event("pEv_b3", "2026-01-01T00:00:15Z", [BETA], [], "c_2"),  # same pair, older: arrives after
        event("pEv_b4", "2026-01-01T00:00:30Z", [], [ENT, BETA], "c_3"),
        event("pEv_s2", "2026-01-01T00:00:50Z", [], [BETA], "c_6"),  # already in the inbox
        event("pEv_b5", "2026-01-01T00:00:40Z", [BETA], [], "c_6"),  # older than all seen: corrects assumed
        event("pEv_b6", "2026-01-01T00:00:31Z", [ENT], [], "c_3"),
        _email_change("pEv_b7", "2026-01-01T00:00:07Z", "c_4", "new@example.com"),  # leaves the batch path
        event("pEv_b8", "2026-01-01T00:00:32Z", [], [ENT], "c_5"),
    ]


def _open(path: Path) -> sqlite3.Connection:
    conn = SQLiteStore(path)._open_connection()
    for ev in _before():
        _one_by_one(conn, [_item(ev)])
    # a runner holds c_1's add: the batch's removal must re-target the row, not delete it
    tx = SqlTx(conn)
    conn.execute("BEGIN IMMEDIATE")
    assert tx.claim("audit", 1, "w1", time.time(), time.time() + 600)
    conn.execute("COMMIT")
    return conn


def _one_by_one(conn: sqlite3.Connection, items: list[Any]) -> list[Any]:
    results = []
    for ev, routes, policy in items:
        conn.execute("BEGIN IMMEDIATE")
        results.append(core.accept_event(SqlTx(conn), ev, routes, time.time(), policy))
        conn.execute("COMMIT")
    return results


def _state(conn: sqlite3.Connection) -> dict[str, list[Any]]:
    return {t: sorted(conn.execute(f"SELECT {cols} FROM {t}").fetchall(), key=repr) for t, cols in _TABLES.items()}


def test_a_batch_lands_exactly_as_one_by_one(tmp_path: Path) -> None:
    items = [_item(ev) for ev in _batch()]
    alone, batched = _open(tmp_path / "alone.db"), _open(tmp_path / "batched.db")
    expected = _one_by_one(alone, items)
    batched.execute("BEGIN IMMEDIATE")
    got = _accept_many(batched, items)
    batched.execute("COMMIT")
    assert got == expected
    assert [r.status for r in got][:2] == ["stored", "duplicate"]
    assert got[3].stale_changes == 1 and got[5].status == "duplicate"
    assert _state(batched) == _state(alone)


def test_concurrent_accepts_share_one_batch_and_answer_as_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []

    def spy(conn: sqlite3.Connection, items: list[Any]) -> list[Any]:
        sizes.append(len(items))
        return _accept_many(conn, items)

    monkeypatch.setattr(sqlite_store_module, "_accept_many", spy)
    events = _batch()

    async def scenario(path: Path, together: bool) -> list[Any]:
        store = SQLiteStore(path)
        await store.open()
        try:
            for ev in _before():
                await store.accept(ev, [AUDIT] * len(ev.changes), POLICY)
            calls = [store.accept(ev, [AUDIT] * len(ev.changes), POLICY) for ev in events]
            if together:
                return list(await asyncio.gather(*calls))
            return [await call for call in calls]
        finally:
            await store.close()

    together = asyncio.run(scenario(tmp_path / "together.db", True))
    assert sizes == [len(events)]
    sizes.clear()
    alone = asyncio.run(scenario(tmp_path / "alone.db", False))
    assert sizes == [] and together == alone
    conns = [sqlite3.connect(tmp_path / name) for name in ("together.db", "alone.db")]
    assert _state(conns[0]) == _state(conns[1])


def test_a_job_that_fails_in_a_batch_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    accept_event = core.accept_event

    def failing(tx: Any, ev: ParsedEvent, *args: Any) -> Any:
        if ev.event_id == "pEv_b2":
            raise ValueError("boom")
        return accept_event(tx, ev, *args)

    monkeypatch.setattr(core, "accept_event", failing)
    events = _batch()

    async def scenario() -> list[Any]:
        store = SQLiteStore(tmp_path / "t.db")
        await store.open()
        try:
            calls = [store.accept(ev, [AUDIT] * len(ev.changes), POLICY) for ev in events]
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            await store.close()

    results = asyncio.run(scenario())
    assert isinstance(results[2], ValueError)
    assert [r.status for i, r in enumerate(results) if i != 2][:3] == ["stored", "duplicate", "stored"]
    conn = sqlite3.connect(tmp_path / "t.db")
    ids = {r[0] for r in conn.execute("SELECT event_id FROM inbox")}
    assert "pEv_b2" not in ids and "pEv_b3" in ids
