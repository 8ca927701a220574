"""Attempt history, operator actions on dead letters, recent events and retention."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from connector.store import Finished, open_store

from tests.store.conftest import NewStore
from tests.store.events import BETA, ENT, accept, claim, event, run


def test_every_outcome_is_kept_with_the_crms_answer(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        item = (await claim(s))[0]
        await s.finish([Finished(item, "retry", "503 from CRM: busy", time.time())])
        item = (await claim(s))[0]
        await s.finish([Finished(item, "done")])
        found = await s.customer_history("C_1@EXAMPLE.COM")
        by_id = await s.customer_history("c_1")
        nobody = await s.customer_history("nobody@example.com")
        await s.close()
        assert nobody == [] and [c.customer_id for c in by_id] == ["c_1"]
        [customer] = found
        assert customer.email == "c_1@example.com"
        [pair] = customer.pairs
        assert (pair.target, pair.group_key, pair.desired, pair.applied, pair.applied_note, pair.pending) == (
            "audit", "enterprise", True, True, "confirmed", False,
        )  # fmt: skip
        assert [(a.kind, a.attempt, a.reason, a.action, a.event_id) for a in pair.attempts] == [
            ("done", 2, None, "add", "pEv_1"),
            ("retry", 1, "503 from CRM: busy", "add", "pEv_1"),
        ]

    run(scenario())


def test_discard_forgets_a_dead_letter_and_history_says_so(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        for customer in ("c_1", "c_2"):
            await accept(s, event(f"pEv_{customer}", "2026-01-01T00:00:01Z", [], [ENT], customer=customer))
        items = await claim(s)
        await s.finish([Finished(i, "dead", "400 from CRM: bad email") for i in items])
        letters = await s.dead_letters()
        discarded = await s.discard_dead_letters([letters[0].id])
        none = await s.discard_dead_letters([])
        left = await s.dead_letters()
        report = await s.status()
        [customer] = await s.customer_history(letters[0].customer_id)
        await s.close()
        assert discarded == 1 and none == 0 and [d.id for d in left] == [letters[1].id]
        assert report.targets["audit"].dead_letters == 1 and report.targets["audit"].backlog == 0
        assert [a.kind for a in customer.pairs[0].attempts] == ["discarded", "dead"]
        assert customer.pairs[0].dead_letters == 0

    run(scenario())


def test_recent_events_show_each_targets_outcome(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("pEv_1", "2026-01-01T00:00:01Z", [], [ENT]))
        await accept(s, event("pEv_2", "2026-01-01T00:00:02Z", [], [BETA], customer="c_2"))
        first = next(i for i in await claim(s) if i.event_id == "pEv_1")
        await s.finish([Finished(first, "done")])
        events = await s.recent_events(10)
        await s.close()
        assert [(e.event_id, e.status, e.outcomes) for e in events] == [
            ("pEv_2", "processed", {"audit": "pending"}),
            ("pEv_1", "processed", {"audit": "done"}),
        ]

    run(scenario())


def test_retention_prunes_old_ids_in_batches_and_keeps_new_ones_duplicate(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        for i in range(5):
            await accept(s, event(f"pEv_old{i}", "2026-01-01T00:00:01Z", [], [ENT], customer=f"c_{i}"))
        items = await claim(s)
        await s.finish([Finished(i, "done") for i in items])
        cutoff = time.time() + 0.001
        await asyncio.sleep(0.01)
        recent = event("pEv_new", "2026-01-01T00:00:02Z", [ENT], [], customer="c_0")
        await accept(s, recent)
        batches = [await s.expire("inbox", cutoff, 2) for _ in range(4)]
        pruned_attempts = await s.expire("attempts", cutoff, 100)
        again = await accept(s, recent)  # a redelivery inside the window
        old_again = await accept(s, event("pEv_old1", "2026-01-01T00:00:01Z", [], [ENT], customer="c_1"))
        report = await s.status()
        await s.close()
        assert batches == [2, 2, 1, 0] and pruned_attempts == 5
        assert again.status == "duplicate"
        # Past the window the id is forgotten: the event is taken again, but newest wins,
        # so the replayed join moves nothing and creates no work.
        assert old_again.status == "stored" and old_again.applied_changes == 0 and old_again.work_created == 0
        assert report.inbox == {"processed": 2}
        assert report.storage["oldest"]["inbox"] is not None and report.storage["oldest"]["attempts"] is None

    run(scenario())


def test_unprocessable_bodies_are_pruned_only_by_their_own_window(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await s.accept_unprocessable(b'{"odd": true}', "unknown shape", "pEv_odd", "customer.odd")
        later = time.time() + 1
        inbox = await s.expire("inbox", later, 100)
        kept = await s.unprocessable_bodies()
        bodies = await s.expire("unprocessable", later, 100)
        await s.close()
        assert inbox == 0 and [k for k, _ in kept] == ["pEv_odd"] and bodies == 1

    run(scenario())


def test_a_version_1_file_gains_the_history_table(tmp_path: Path) -> None:
    """A store written by the first release (schema 1) is upgraded in place and keeps its inbox."""
    from connector.store.sqlite.schema import SCHEMA_VERSION

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript((Path(__file__).parent / "data" / "schema-v1.sql").read_text())
    conn.executescript(
        "INSERT INTO inbox VALUES ('pEv_kept', 't', NULL, 1.0, 'processed', NULL, NULL);PRAGMA user_version = 1;"
    )
    conn.close()

    async def scenario() -> tuple[int, dict[str, object]]:
        s = open_store(f"sqlite:///{path.name}", tmp_path)
        await s.open()
        report = await s.status()
        await s.close()
        return report.inbox["processed"], report.storage

    kept, storage = run(scenario())
    assert kept == 1 and storage["size_bytes"] and storage["oldest"]["inbox"] == 1.0  # type: ignore[index]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 0
    conn.close()


def test_the_background_pass_prunes_every_kind_past_its_window_in_batches(store: NewStore) -> None:
    from connector.config import RetentionSection
    from connector.metrics import Metrics
    from connector.retention import prune_once

    async def scenario() -> tuple[dict[str, int], dict[str, int]]:
        s = store()
        await s.open()
        for i in range(7):
            await accept(s, event(f"pEv_{i}", "2026-01-01T00:00:01Z", [], [ENT], customer=f"c_{i}"))
        await s.finish([Finished(i, "done") for i in await claim(s)])
        await s.accept_unprocessable(b"{}", "odd", "pEv_odd", None)
        kept = await prune_once(s, RetentionSection())  # defaults: days, so nothing is old enough
        await asyncio.sleep(0.05)
        tiny = RetentionSection(inbox_days=0.01 / 86400, history_days=0.01 / 86400, prune_batch=3)
        pruned = await prune_once(s, tiny, Metrics())
        await s.close()
        return kept, pruned

    kept, pruned = run(scenario())
    assert kept == {"inbox": 0, "attempts": 0}
    assert pruned == {"inbox": 7, "attempts": 7}  # unprocessable bodies: kept until configured
