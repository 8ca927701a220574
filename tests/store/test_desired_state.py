"""Desired state: which event wins, and the work it leaves, through the Store interface."""

from __future__ import annotations

from connector.store import Finished, Route, TargetStatus

from tests.store.conftest import NewStore
from tests.store.events import BETA, ENT, accept, claim, event, run


def test_join_creates_one_add_and_duplicate_changes_nothing(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        first = await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        again = await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        items = await claim(s)
        await s.close()
        assert (first.status, first.work_created) == ("stored", 1)
        assert again.status == "duplicate"
        assert [(i.customer_id, i.group_id, i.desired, i.group_key, i.email) for i in items] == [
            ("c_1", "cg_ent", True, "enterprise", "c_1@example.com")
        ]
        assert items[0].to_change().action == "add"

    run(scenario())


def test_older_event_never_overrides_newer(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        # Arrives first, but is the later fact: the customer left.
        newer = await accept(s, event("pEv_2", "2026-01-01T00:00:02Z", [ENT], []))
        older = await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        items = await claim(s)
        await s.close()
        assert newer.applied_changes == 1 and older.stale_changes == 1
        # Not overridden (that would be an add); and since the late join shows the customer
        # was never a member before t1, there is nothing to remove from the CRM either.
        assert items == []

    run(scenario())


def test_equal_times_are_broken_by_event_id(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("pEv_0", "2026-01-01T00:00:00Z", [], [ENT]))
        await s.finish([Finished(i, "done") for i in await claim(s)])  # the CRM has the member
        await accept(s, event("pEv_B", "2026-01-01T00:00:01Z", [ENT], []))
        await accept(s, event("pEv_A", "2026-01-01T00:00:01Z", [], [ENT]))  # same time, lower id: loses
        items = await claim(s)
        await s.close()
        assert [i.desired for i in items] == [False]

    run(scenario())


def test_join_then_leave_before_delivery_is_no_work(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        await accept(s, event("pEv_2", "2026-01-01T00:00:01.5Z", [ENT], []))
        items = await claim(s)
        report = await s.status()
        await s.close()
        assert items == []
        assert report.targets.get("audit", TargetStatus()).backlog == 0

    run(scenario())


def test_multi_group_event_routes_each_change(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        ev = event("pEv_1", "2026-01-01T00:00:01Z", [BETA], [ENT])
        await s.accept(ev, [[Route("audit", "{}")] if c.group.id == "cg_ent" else [] for c in ev.changes])
        items = await claim(s)
        await s.close()
        assert [(i.group_id, i.desired) for i in items] == [("cg_ent", True)]

    run(scenario())


def test_late_oldest_event_corrects_the_assumed_crm_state(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        # join(t1), leave(t2), join(t3) arrive as t2, t1, t3, all before any delivery
        await accept(s, event("pEv_2", "2026-01-01T00:00:02Z", [ENT], []))
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        after_late = await claim(s, "w1")
        await accept(s, event("pEv_3", "2026-01-01T00:00:03Z", [], [ENT]))
        final = await claim(s, "w2")
        await s.close()
        # The CRM never saw the join at t1: nothing to remove, and then the add is due.
        assert after_late == []
        assert [i.desired for i in final] == [True]

    run(scenario())
