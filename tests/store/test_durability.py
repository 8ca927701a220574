"""The inbox and durability: unprocessable bodies, duplicates across reopen, concurrent accepts."""

from __future__ import annotations

import asyncio

from tests.store.conftest import NewStore
from tests.store.events import ENT, accept, claim, event, run


def test_unprocessable_body_is_kept_once(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        first = await s.accept_unprocessable(b"\x00garbage", "not JSON", None, None)
        second = await s.accept_unprocessable(b"\x00garbage", "not JSON", None, None)
        report = await s.status()
        await s.close()
        assert (first.status, second.status) == ("unprocessable", "duplicate")
        assert report.inbox == {"unprocessable": 1}
        assert report.unprocessable[0]["reason"] == "not JSON"

    run(scenario())


def test_state_survives_reopen(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        await s.close()
        s = store()
        await s.open()
        dup = await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        items = await claim(s)
        await s.close()
        assert dup.status == "duplicate" and len(items) == 1

    run(scenario())


def test_concurrent_accepts_are_group_committed_and_all_durable(store: NewStore) -> None:
    async def scenario() -> int:
        s = store()
        await s.open()
        evs = [event(f"pEv_{i}", "2026-01-01T00:00:01Z", [], [ENT], customer=f"c_{i}") for i in range(300)]
        results = await asyncio.gather(*(accept(s, e) for e in evs))
        await s.close()
        s = store()
        await s.open()
        backlog = (await s.status()).targets["audit"].backlog
        await s.close()
        assert all(r.status == "stored" for r in results)
        return backlog

    assert run(scenario()) == 300
