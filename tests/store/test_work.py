"""Work, leases and outcomes: what claim and finish do, and dead-letter replay."""

from __future__ import annotations

import asyncio
import time

from connector.store import Finished

from tests.store.conftest import NewStore
from tests.store.events import ENT, accept, claim, event, run


def test_lease_hides_claimed_work_until_it_expires(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        first = await claim(s, "w1", lease=0.2)
        second = await claim(s, "w2")
        await asyncio.sleep(0.3)
        third = await claim(s, "w3")
        # w1 comes back late: its lease is gone, so it must not delete w3's row.
        await s.finish([Finished(first[0], "retry", "late", time.time())])
        still = (await s.status()).targets["audit"].backlog
        await s.close()
        assert len(first) == 1 and second == [] and [i.lease_owner for i in third] == ["w3"]
        assert still == 1

    run(scenario())


def test_done_clears_work_and_change_in_flight_is_reversed(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        claimed = await claim(s)
        # While the add is in flight, the customer leaves.
        await accept(s, event("pEv_2", "2026-01-01T00:00:02Z", [ENT], []))
        await s.finish([Finished(claimed[0], "done")])
        after = await claim(s)
        await s.finish([Finished(after[0], "done")])
        empty = await claim(s)
        await s.close()
        assert [i.desired for i in after] == [False]
        assert empty == []

    run(scenario())


def test_retry_waits_and_dead_letter_replays(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        item = (await claim(s))[0]
        await s.finish([Finished(item, "retry", "503 from CRM", time.time() + 60)])
        not_due = await claim(s)
        report = await s.status()
        assert not_due == [] and report.targets["audit"].retrying == 1
        assert report.targets["audit"].last_error == "503 from CRM"
        await s.close()

        s = store()
        await s.open()
        await accept(s, event("pEv_3", "2026-01-01T00:00:01Z", [], [ENT], customer="c_2"))
        item = (await claim(s))[0]
        await s.finish([Finished(item, "dead", "404 list not found")])
        letters = await s.dead_letters()
        requeued = await s.replay_dead_letters([letters[0].id])
        again = await claim(s)
        left = await s.dead_letters()
        await s.close()
        assert [(d.customer_id, d.action, d.reason, d.attempts) for d in letters] == [
            ("c_2", "add", "404 list not found", 1)
        ]
        assert requeued == 1 and [i.customer_id for i in again] == ["c_2"] and left == []

    run(scenario())


def test_skipped_is_final_and_reported(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        item = (await claim(s))[0]
        await s.finish([Finished(item, "skipped", "contact not in CRM")])
        report = await s.status()
        rest = await claim(s)
        await s.close()
        assert report.targets["audit"].not_in_crm == 1 and rest == []

    run(scenario())
