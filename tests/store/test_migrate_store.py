"""`migrate-store` through the CLI: SQLite to PostgreSQL and back, nothing lost on the way."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from connector.cli import main
from connector.plain.changes import GroupInfo, parse_event
from connector.store import Finished, Route, open_store
from connector.store.base import GroupRead, Store
from connector.testing.plain import membership_event

from tests.store.events import BETA, ENT, accept, event

CRM = [Route("crm", '{"list": "1"}')]
UNREADABLE = b'{"payload": "from a future Plain"}'


async def _fill(store: Store) -> None:
    """Every kind of state: confirmed, pending, leased, retrying, dead, and a kept body."""
    await accept(store, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT], customer="c_done"), CRM)
    await accept(store, event("pEv_2", "2026-01-01T00:00:02Z", [], [ENT, BETA], customer="c_dead"), CRM)
    await accept(store, event("pEv_3", "2026-01-01T00:00:03Z", [], [ENT], customer="c_retry"), CRM)
    items = {(i.customer_id, i.group_id): i for i in await store.claim("crm", 10, "old-serve", 600)}
    await store.finish(
        [
            Finished(items["c_done", "cg_ent"], "done"),
            Finished(items["c_dead", "cg_ent"], "dead", "404 list not found"),
            Finished(items["c_retry", "cg_ent"], "retry", "503", time.time() + 3600),
        ]
    )
    await accept(store, event("pEv_4", "2026-01-01T00:00:04Z", [], [ENT], customer="c_pending"), CRM)
    # SQLite keeps NUL in text; PostgreSQL cannot, and CRMs never get it anyway.
    named = membership_event(
        event_id="pEv_5", customer_id="c_named", email="named@example.com", groups_before=[], groups_after=[ENT],
        timestamp="2026-01-01T00:00:05Z", generation="versioned", full_name="Ann\x00 Lee",
    )  # fmt: skip
    await accept(store, parse_event(orjson.dumps(named)), CRM)
    await store.accept_unprocessable(UNREADABLE, "unknown event type", "pEv_x", "future.event")
    await _runs(store)


async def _runs(store: Store) -> None:
    """A finished reconcile, and a backfill stopped after its first group (beta)."""
    reconcile = await store.start_run("reconcile", None)
    await store.finish_run(reconcile.id, "done", next_at=time.time() + 3600)
    backfill = await store.start_run("backfill", None)
    read = GroupRead("cg_beta", "beta", 1, 1, 0, 0)
    stamp = ("2026-01-01T00:00:06Z", f"backfill:{backfill.id}")
    await store.finish_group(backfill.id, GroupInfo(*BETA), {"c_dead"}, stamp, CRM, read)


async def _snapshot(store: Store) -> dict[str, Any]:
    report = asdict(await store.status())
    report["storage"].pop("size_bytes")  # each backend measures its own files
    for target in report["targets"].values():
        for moving in ("oldest_due_seconds", "due", "in_flight"):  # depend on the clock and on leases
            target.pop(moving)
    return {
        "status": report,
        "dead": [asdict(d) for d in await store.dead_letters()],
        "bodies": await store.unprocessable_bodies(),
    }


async def _open(url: str, base: Path) -> Store:
    store = open_store(url, base)
    await store.open()
    return store


def test_sqlite_to_postgres_and_back_keeps_everything(tmp_path: Path, pg_url: str, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)

    async def fill_source() -> dict[str, Any]:
        s = await _open("sqlite:///a.db", tmp_path)
        await _fill(s)
        snap = await _snapshot(s)
        await s.close()
        return snap

    async def check(url: str, new: str) -> tuple[dict[str, Any], list[tuple[str, bool]], str, list[str], Any]:
        s = await _open(url, tmp_path)
        snap = await _snapshot(s)
        # The interrupted backfill resumes without beta; a new run's id follows the copied ones.
        resumed = await s.start_run("backfill", None)
        fresh = await s.start_run("reconcile", [new])
        runs = (resumed.id, resumed.resumed, resumed.finished, fresh.id)
        # The lease of the source's serve is gone; the retry keeps its time; ids continue.
        claimable = [(i.customer_id, i.desired) for i in await s.claim("crm", 10, "new-serve", 60)]
        redelivered = (await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT], customer="c_done"))).status
        await accept(s, event(f"pEv_{new}", "2026-01-01T00:00:05Z", [], [ENT], customer=new), CRM)
        await s.finish([Finished(i, "dead", "x") for i in await s.claim("crm", 10, "new-serve", 60)])
        dead_ids = [str(d.id) for d in await s.dead_letters()]
        await s.close()
        return snap, sorted(claimable), redelivered, dead_ids, runs

    source = asyncio.run(fill_source())
    assert main(["migrate-store", "--from", "sqlite:///a.db", "--to", pg_url]) == 0
    in_pg, claimable, redelivered, dead_ids, runs = asyncio.run(check(pg_url, "c_new"))
    assert in_pg == source
    assert {k: (r["id"], r["status"], r["groups"]) for k, r in in_pg["status"]["runs"].items()} == {
        "reconcile": (1, "done", 0),
        "backfill": (2, "running", 1),
    }
    assert runs == (2, True, frozenset({"cg_beta"}), 3)
    # c_dead's second group was leased by old-serve
    assert claimable == [("c_dead", True), ("c_named", True), ("c_pending", True)]
    assert redelivered == "duplicate"
    assert len(dead_ids) == len(set(dead_ids)) == 2  # the new dead letter did not reuse a copied id

    assert main(["migrate-store", "--from", pg_url, "--to", "sqlite:///b.db"]) == 0
    back, claimable, redelivered, dead_ids, runs = asyncio.run(check("sqlite:///b.db", "c_newer"))
    assert back["status"]["runs"]["reconcile"]["id"] == 3 and back["status"]["runs"]["backfill"]["groups"] == 1
    assert runs == (2, True, frozenset({"cg_beta"}), 4)
    assert [(d["customer_id"], d["reason"]) for d in back["dead"]] == [("c_dead", "404 list not found"), ("c_new", "x")]
    assert back["bodies"] == [("pEv_x", UNREADABLE)] and back["status"]["inbox"] == {"processed": 6, "unprocessable": 1}
    assert claimable == [("c_dead", True), ("c_named", True), ("c_pending", True)] and redelivered == "duplicate"
    assert len(dead_ids) == len(set(dead_ids)) == 3


def test_a_non_empty_destination_is_refused_unless_forced(
    tmp_path: Path, pg_url: str, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)

    async def fill(url: str, customer: str) -> None:
        s = await _open(url, tmp_path)
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT], customer=customer), CRM)
        await s.close()

    async def customers(url: str) -> list[str]:
        s = await _open(url, tmp_path)
        items = await s.claim("crm", 10, "w", 60)
        await s.close()
        return [i.customer_id for i in items]

    asyncio.run(fill("sqlite:///a.db", "c_source"))
    asyncio.run(fill(pg_url, "c_already_there"))
    assert main(["migrate-store", "--from", "sqlite:///a.db", "--to", pg_url]) == 1
    assert "already holds data; pass --force" in capsys.readouterr().err
    assert asyncio.run(customers(pg_url)) == ["c_already_there"]

    assert main(["migrate-store", "--from", "sqlite:///a.db", "--to", pg_url, "--force"]) == 0
    assert asyncio.run(customers(pg_url)) == ["c_source"]
