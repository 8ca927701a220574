"""Desired state, work and leases, through the Store interface on a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
from connector.plain.changes import parse_event
from connector.store import Finished, Route, open_store, sqlite_path
from connector.store.base import Store
from connector.testing.plain import membership_event

ENT = ("cg_ent", "enterprise", "Enterprise")
BETA = ("cg_beta", "beta", "Beta")
AUDIT = [Route("audit", "{}")]


def event(event_id: str, ts: str, before: list[Any], after: list[Any], customer: str = "c_1", gen: str = "versioned"):
    body = membership_event(
        event_id=event_id, customer_id=customer, email=f"{customer}@example.com",
        groups_before=before, groups_after=after, timestamp=ts, generation=gen,  # type: ignore[arg-type]
    )  # fmt: skip
    return parse_event(orjson.dumps(body))


async def accept(store: Store, ev: Any, routes: list[Route] = AUDIT):
    return await store.accept(ev, [routes] * len(ev.changes))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_store_url_relative_and_absolute(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:///data/x.db", tmp_path) == tmp_path / "data" / "x.db"
    assert sqlite_path("sqlite:////var/x.db", tmp_path) == Path("/var/x.db")


async def _claim(store: Store, owner: str = "w1", lease: float = 60) -> list[Any]:
    return await store.claim("audit", 100, owner, lease)


def test_join_creates_one_add_and_duplicate_changes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        first = await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        again = await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        items = await _claim(s)
        await s.close()
        assert (first.status, first.work_created) == ("stored", 1)
        assert again.status == "duplicate"
        assert [(i.customer_id, i.group_id, i.desired, i.group_key, i.email) for i in items] == [
            ("c_1", "cg_ent", True, "enterprise", "c_1@example.com")
        ]
        assert items[0].to_change().action == "add"

    run(scenario())


def test_older_event_never_overrides_newer(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        # Arrives first, but is the later fact: the customer left.
        newer = await accept(s, event("pEv_2", "2026-01-01T00:00:02Z", [ENT], []))
        older = await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        items = await _claim(s)
        await s.close()
        assert newer.applied_changes == 1 and older.stale_changes == 1
        # Not overridden (that would be an add); and since the late join shows the customer
        # was never a member before t1, there is nothing to remove from the CRM either.
        assert items == []

    run(scenario())


def test_equal_times_are_broken_by_event_id(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        await accept(s, event("pEv_0", "2026-01-01T00:00:00Z", [], [ENT]))
        await s.finish([Finished(i, "done") for i in await _claim(s)])  # the CRM has the member
        await accept(s, event("pEv_B", "2026-01-01T00:00:01Z", [ENT], []))
        await accept(s, event("pEv_A", "2026-01-01T00:00:01Z", [], [ENT]))  # same time, lower id: loses
        items = await _claim(s)
        await s.close()
        assert [i.desired for i in items] == [False]

    run(scenario())


def test_join_then_leave_before_delivery_is_no_work(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        await accept(s, event("pEv_2", "2026-01-01T00:00:01.5Z", [ENT], []))
        items = await _claim(s)
        report = await s.status()
        await s.close()
        assert items == []
        assert report.targets.get("audit", {}).get("backlog", 0) == 0

    run(scenario())


def test_multi_group_event_routes_each_change(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        ev = event("pEv_1", "2026-01-01T00:00:01Z", [BETA], [ENT])
        await s.accept(ev, [[Route("audit", "{}")] if c.group.id == "cg_ent" else [] for c in ev.changes])
        items = await _claim(s)
        await s.close()
        assert [(i.group_id, i.desired) for i in items] == [("cg_ent", True)]

    run(scenario())


def test_lease_hides_claimed_work_until_it_expires(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        first = await _claim(s, "w1", lease=0.2)
        second = await _claim(s, "w2")
        await asyncio.sleep(0.3)
        third = await _claim(s, "w3")
        # w1 comes back late: its lease is gone, so it must not delete w3's row.
        await s.finish([Finished(first[0], "retry", "late", time.time())])
        still = (await s.status()).targets["audit"]["backlog"]
        await s.close()
        assert len(first) == 1 and second == [] and [i.lease_owner for i in third] == ["w3"]
        assert still == 1

    run(scenario())


def test_done_clears_work_and_change_in_flight_is_reversed(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        claimed = await _claim(s)
        # While the add is in flight, the customer leaves.
        await accept(s, event("pEv_2", "2026-01-01T00:00:02Z", [ENT], []))
        await s.finish([Finished(claimed[0], "done")])
        after = await _claim(s)
        await s.finish([Finished(after[0], "done")])
        empty = await _claim(s)
        await s.close()
        assert [i.desired for i in after] == [False]
        assert empty == []

    run(scenario())


def test_retry_waits_and_dead_letter_replays(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        item = (await _claim(s))[0]
        await s.finish([Finished(item, "retry", "503 from CRM", time.time() + 60)])
        not_due = await _claim(s)
        report = await s.status()
        assert not_due == [] and report.targets["audit"]["retrying"] == 1
        assert report.targets["audit"]["last_error"] == "503 from CRM"
        await s.close()

        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        await accept(s, event("pEv_3", "2026-01-01T00:00:01Z", [], [ENT], customer="c_2"))
        item = (await _claim(s))[0]
        await s.finish([Finished(item, "dead", "404 list not found")])
        letters = await s.dead_letters()
        requeued = await s.replay_dead_letters([letters[0].id])
        again = await _claim(s)
        left = await s.dead_letters()
        await s.close()
        assert [(d.customer_id, d.action, d.reason, d.attempts) for d in letters] == [
            ("c_2", "add", "404 list not found", 1)
        ]
        assert requeued == 1 and [i.customer_id for i in again] == ["c_2"] and left == []

    run(scenario())


def test_skipped_is_final_and_reported(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        item = (await _claim(s))[0]
        await s.finish([Finished(item, "skipped", "contact not in CRM")])
        report = await s.status()
        rest = await _claim(s)
        await s.close()
        assert report.targets["audit"]["not_in_crm"] == 1 and rest == []

    run(scenario())


def test_unprocessable_body_is_kept_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        first = await s.accept_unprocessable(b"\x00garbage", "not JSON", None, None)
        second = await s.accept_unprocessable(b"\x00garbage", "not JSON", None, None)
        report = await s.status()
        await s.close()
        assert (first.status, second.status) == ("unprocessable", "duplicate")
        assert report.inbox == {"unprocessable": 1}
        assert report.unprocessable[0]["reason"] == "not JSON"

    run(scenario())


def test_state_survives_reopen(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        await s.close()
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        dup = await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        items = await _claim(s)
        await s.close()
        assert dup.status == "duplicate" and len(items) == 1

    run(scenario())


def test_concurrent_accepts_are_group_committed_and_all_durable(tmp_path: Path) -> None:
    async def scenario() -> int:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        evs = [event(f"pEv_{i}", "2026-01-01T00:00:01Z", [], [ENT], customer=f"c_{i}") for i in range(300)]
        results = await asyncio.gather(*(accept(s, e) for e in evs))
        await s.close()
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        backlog = (await s.status()).targets["audit"]["backlog"]
        await s.close()
        assert all(r.status == "stored" for r in results)
        return backlog

    assert run(scenario()) == 300


def test_take_over_releases_a_dead_predecessors_leases_and_locks_the_store(tmp_path: Path) -> None:
    from connector.store import StoreUnavailable

    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        assert len(await _claim(s, "dead-process", lease=600)) == 1
        await s.close()  # as if killed: the lease is still in the file

        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        released = await s.take_over("new-process")
        other = open_store("sqlite:///t.db", tmp_path)
        await other.open()
        try:
            await other.take_over("intruder")
            raise AssertionError("a second take_over must be refused")
        except StoreUnavailable as exc:
            assert "already running" in str(exc)
        finally:
            await other.close()
        items = await _claim(s, "new-process")
        await s.close()
        assert released == 1 and len(items) == 1

    run(scenario())


def test_late_oldest_event_corrects_the_assumed_crm_state(tmp_path: Path) -> None:
    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        # join(t1), leave(t2), join(t3) arrive as t2, t1, t3, all before any delivery
        await accept(s, event("pEv_2", "2026-01-01T00:00:02Z", [ENT], []))
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        after_late = await _claim(s, "w1")
        await accept(s, event("pEv_3", "2026-01-01T00:00:03Z", [], [ENT]))
        final = await _claim(s, "w2")
        await s.close()
        # The CRM never saw the join at t1: nothing to remove, and then the add is due.
        assert after_late == []
        assert [i.desired for i in final] == [True]

    run(scenario())


def test_a_store_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from connector.store import StoreUnavailable

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

    assert "newer plain-crm-sync (schema 999 > 1)" in run(scenario())
