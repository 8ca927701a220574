"""Rules 6-10 (connector/store/core_sync.py) on every backend: backfill merges, removals, resync, prune, verify."""

from __future__ import annotations

from connector.plain.changes import CustomerInfo, GroupInfo
from connector.store.base import Finished, GroupRead, Route

from tests.store.events import AUDIT, ENT, accept, claim, event, run

GROUP = GroupInfo(ENT[0], ENT[1], ENT[2])
READ = ("2026-01-01T00:00:05.000000Z", "backfill:1")


def _customers(*ids: str) -> list[CustomerInfo]:
    return [CustomerInfo(i, f"{i}@example.com", None, i.upper()) for i in ids]


def test_a_read_merges_members_a_newer_webhook_wins_and_a_full_read_removes(store):
    async def main() -> None:
        s = store()
        await s.open()
        try:
            run_ = await s.start_run("backfill", None)
            # c_1 left by a webhook newer than the read; c_9 was a member the read no longer lists
            await accept(s, event("pEv_new", "2026-01-01T00:00:09Z", [ENT], [], customer="c_1"))
            await accept(s, event("pEv_old", "2026-01-01T00:00:01Z", [], [ENT], customer="c_9"))
            merged = await s.merge_members(GROUP, _customers("c_1", "c_2"), READ, AUDIT, write=False)
            assert [(c.customer_id, c.joined) for c in merged.changes] == [("c_2", True)]  # dry: same decision
            merged = await s.merge_members(GROUP, _customers("c_1", "c_2"), READ, AUDIT)
            assert [(o.customer_id, o.action) for o in merged.operations] == [("c_2", "add")]
            done = await s.finish_group(
                run_.id, GROUP, {"c_1", "c_2"}, READ, AUDIT, GroupRead(GROUP.id, "enterprise", 1, 2, 1, 1)
            )
            assert [(c.customer_id, c.joined) for c in done.changes] == [("c_9", False)]
            info = await s.finish_run(run_.id, "done")
            assert (info.groups, info.customers, info.changes, info.work) == (1, 2, 2, 1)  # c_9: its queued add dropped
            assert (await s.status()).runs["backfill"].status == "done"
            again = await s.start_run("backfill", None)
            assert not again.resumed and again.id != run_.id
        finally:
            await s.close()

    run(main())


def test_resync_queues_only_missing_work_prune_and_verify(store):
    async def main() -> None:
        s = store()
        await s.open()
        try:
            await s.merge_members(GROUP, _customers("c_1", "c_2"), READ, AUDIT)
            items = await claim(s)
            await s.finish([Finished(i, "done") for i in items])
            other = [Route("other", "{}")]
            assert len(await s.resync_group(GROUP, AUDIT + other)) == 2  # only `other` lacks them
            assert await s.resync_group(GROUP, AUDIT + other) == []  # the second time: nothing
            assert await s.prune({("other", "{}"): {GROUP.id}}, ["audit"], write=False) != []
            pruned = await s.prune({("other", "{}"): {GROUP.id}}, ["audit"])
            assert {(o.target, o.customer_id, o.action) for o in pruned} == {("audit", "c_1", "remove"),
                                                                           ("audit", "c_2", "remove")}  # fmt: skip
            assert await s.prune({("other", "{}"): {GROUP.id}}, ["audit"]) == []
            found = await s.verify("other", "{}", [GROUP.id], ["c_2@example.com", "stranger@example.com"])
            assert found.unknown == 1 and found.operations == []  # c_1's add is already queued
            items = [i for i in await s.claim("other", 100, "w1", 60)]
            await s.finish([Finished(i, "done") for i in items])
            found = await s.verify("other", "{}", [GROUP.id], ["c_2@example.com"])
            assert [(o.customer_id, o.action) for o in found.operations] == [("c_1", "add")]
        finally:
            await s.close()

    run(main())
