"""Store rules for email changes, deletions and re-keyed groups (connector.store.lifecycle)."""

from __future__ import annotations

from typing import Any

import orjson
from connector.plain import events as ev
from connector.plain.changes import parse_event
from connector.store import Route
from connector.store.base import Finished, Policy, Store
from connector.testing.plain import customer_event, group_event

from tests.store.conftest import NewStore
from tests.store.events import ENT, accept, claim, event, run

DEFAULT = Policy()
OLD, NEW = "c_1@example.com", "new@example.com"


def updated(event_id: str, ts: str, email: str, kind: str = ev.CUSTOMER_UPDATED) -> Any:
    body = customer_event(event_id=event_id, event_type=kind, customer_id="c_1", email=email, timestamp=ts)
    return parse_event(orjson.dumps(body))


def grouped(event_id: str, ts: str, change: str, group: Any, previous: Any = None) -> Any:
    body = group_event(event_id=event_id, change=change, group=group, timestamp=ts, previous_group=previous)  # type: ignore[arg-type]
    return parse_event(orjson.dumps(body))


async def drain(s: Store, target: str = "audit") -> list[tuple[str, str | None, str]]:
    """Claim everything due, confirm it, and say what was sent: (action, email, contact)."""
    items = await s.claim(target, 100, "w1", 60)
    await s.finish([Finished(i, "done") for i in items])
    return sorted(("add" if i.desired else "remove", i.email, i.contact) for i in items)


async def joined(s: Store, policy: Policy = DEFAULT) -> None:
    await s.accept(event("e1", "2026-01-01T00:00:01Z", [], [ENT]), [[Route("audit", "{}")]], policy)
    assert await drain(s) == [("add", OLD, "")]


def test_email_change_moves_the_membership_and_an_older_update_is_stale(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await joined(s)
        await s.accept(updated("u2", "2026-01-01T00:00:02Z", NEW), [])
        assert await drain(s) == [("add", NEW, ""), ("remove", OLD, OLD)]
        result = await s.accept(updated("u1", "2026-01-01T00:00:01.500Z", OLD), [])
        assert result.work_created == 0 and await drain(s) == []
        # A leave that names the old email again: a change back, so the new contact loses
        # the group and, since the customer left it, the old one gets nothing.
        await accept(s, event("e3", "2026-01-01T00:00:03Z", [ENT], []))
        assert await drain(s) == [("remove", NEW, NEW)]
        await s.close()

    run(scenario())


def test_email_change_keep_leaves_the_old_contact(store: NewStore) -> None:
    policy = Policy(on_email_change={"audit": "keep"})

    async def scenario() -> None:
        s = store()
        await s.open()
        await joined(s, policy)
        await s.accept(updated("u2", "2026-01-01T00:00:02Z", NEW, ev.CUSTOMER_CHANGED), [], policy)
        assert await drain(s) == [("add", NEW, "")]
        await s.close()

    run(scenario())


def test_an_add_in_flight_during_an_email_change_is_taken_off_the_old_contact(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await accept(s, event("e1", "2026-01-01T00:00:01Z", [], [ENT]))
        [item] = await claim(s)  # a runner is sending the add to the old email ...
        await s.accept(updated("u2", "2026-01-01T00:00:02Z", NEW), [])
        await s.finish([Finished(item, "done")])  # ... and it lands there
        assert await drain(s) == [("add", NEW, ""), ("remove", OLD, OLD)]
        assert await drain(s) == []
        await s.close()

    run(scenario())


def test_email_changed_back_before_the_removal_went_out(store: NewStore) -> None:
    async def scenario() -> None:
        s = store()
        await s.open()
        await joined(s)
        await s.accept(updated("u2", "2026-01-01T00:00:02Z", NEW), [])
        await s.accept(updated("u3", "2026-01-01T00:00:03Z", OLD.upper()), [])
        # the pending removal from the old email is dropped (emails match case-insensitively),
        # the old contact is re-added (idempotent), and the new one was never sent anything
        assert await drain(s) == [("add", OLD.upper(), "")]
        await s.close()

    run(scenario())


def test_customer_deleted_removes_where_asked_and_keeps_elsewhere(store: NewStore) -> None:
    policy = Policy(on_customer_deleted={"audit": "remove"})
    routes = [Route("audit", "{}"), Route("other", "{}")]

    async def scenario() -> None:
        s = store()
        await s.open()
        await s.accept(event("e1", "2026-01-01T00:00:01Z", [], [ENT]), [routes], policy)
        assert await drain(s) == [("add", OLD, "")] and await drain(s, "other") == [("add", OLD, "")]
        await s.accept(updated("d2", "2026-01-01T00:00:02Z", OLD, ev.CUSTOMER_DELETED), [], policy)
        assert await drain(s) == [("remove", OLD, "")] and await drain(s, "other") == []
        # an older join arriving late: "other" follows it, "audit" knows the customer is gone
        beta = ("cg_beta", "beta", "Beta")
        await s.accept(event("e0", "2026-01-01T00:00:01.500Z", [ENT], [ENT, beta]), [routes], policy)
        assert await drain(s) == [] and await drain(s, "other") == [("add", OLD, "")]
        # a newer event for the same id: the customer exists again
        await s.accept(event("e3", "2026-01-01T00:00:03Z", [], [ENT]), [routes], policy)
        assert await drain(s) == [("add", OLD, "")]
        await s.close()

    run(scenario())


def test_a_mapping_by_key_follows_a_re_keyed_group(store: NewStore) -> None:
    route = Route("audit", "{}")
    policy = Policy(routing={"enterprise": (route,)})

    async def scenario() -> None:
        s = store()
        await s.open()
        await joined(s, policy)
        renamed = ("cg_ent", "ent-2026", "Enterprise 2026")
        await s.accept(grouped("g2", "2026-01-01T00:00:02Z", "UPDATED", renamed, ENT), [], policy)
        # the app finds no mapping for "ent-2026"; the store still knows the group
        await s.accept(event("e3", "2026-01-01T00:00:03Z", [renamed], []), [[]], policy)
        assert await drain(s) == [("remove", OLD, "")]
        keys = {k.key: k for k in await s.group_keys()}
        assert (keys["enterprise"].group_id, keys["enterprise"].current_key) == ("cg_ent", "ent-2026")
        # another group takes the old key: the mapping follows the key's new holder
        await s.accept(grouped("g4", "2026-01-01T00:00:04Z", "ADDED", ("cg_new", "enterprise", "E")), [], policy)
        await s.accept(event("e5", "2026-01-01T00:00:05Z", [], [renamed]), [[]], policy)
        assert await drain(s) == []
        await s.close()

    run(scenario())


def test_group_deleted_removes_at_remove_destinations_only(store: NewStore) -> None:
    remove, keep = Route("audit", "{}", "remove"), Route("other", "{}")
    policy = Policy(routing={"enterprise": (remove, keep)})

    async def scenario() -> None:
        s = store()
        await s.open()
        await s.accept(event("e1", "2026-01-01T00:00:01Z", [], [ENT]), [[remove, keep]], policy)
        await drain(s), await drain(s, "other")
        await s.accept(grouped("g2", "2026-01-01T00:00:02Z", "REMOVED", ENT), [], policy)
        assert await drain(s) == [("remove", OLD, "")] and await drain(s, "other") == []
        # an older join arriving after the deletion cannot add at the remove destination
        await s.accept(event("e0", "2026-01-01T00:00:00Z", [], [ENT], customer="c_2"), [[remove, keep]], policy)
        assert await drain(s) == [] and await drain(s, "other") == [("add", "c_2@example.com", "")]
        report = await s.status()
        assert [g["group_id"] for g in report.deleted_groups] == ["cg_ent"]
        await s.close()

    run(scenario())


def test_a_schema_1_file_is_upgraded_in_place_with_its_work(tmp_path: Any) -> None:
    """A store written before the lifecycle rules keeps its work and gains them."""
    import sqlite3
    from pathlib import Path

    from connector.store import open_store
    from connector.store.sqlite.schema import SCHEMA_VERSION

    conn = sqlite3.connect(tmp_path / "t.db")
    conn.executescript((Path(__file__).parent / "data" / "schema-v1.sql").read_text())
    conn.executescript(
        "INSERT INTO customers VALUES ('c_1', 'c_1@example.com', NULL, NULL, '2026-01-01T00:00:01.000000Z', 'e1');"
        "INSERT INTO groups VALUES ('cg_ent', 'enterprise', 'Enterprise', 0, '2026-01-01T00:00:01.000000Z', 'e1');"
        "INSERT INTO memberships VALUES ('c_1', 'cg_ent', 1, '2026-01-01T00:00:01.000000Z', 'e1',"
        " '2026-01-01T00:00:01.000000Z', 'e1');"
        "INSERT INTO applied (target, dest, customer_id, group_id, member, note) VALUES"
        " ('audit', '{}', 'c_1', 'cg_ent', 0, 'assumed');"
        "INSERT INTO outbox (target, dest, customer_id, group_id, desired, event_id, due_at) VALUES"
        " ('audit', '{}', 'c_1', 'cg_ent', 1, 'e1', 0);"
        "PRAGMA user_version = 1;"
    )
    conn.close()

    async def scenario() -> None:
        s = open_store("sqlite:///t.db", tmp_path)
        await s.open()
        assert await drain(s) == [("add", OLD, "")]
        await s.accept(updated("u2", "2026-01-01T00:00:02Z", NEW), [])
        assert await drain(s) == [("add", NEW, ""), ("remove", OLD, OLD)]
        keys = await s.group_keys()
        assert [(k.key, k.group_id) for k in keys] == [("enterprise", "cg_ent")]
        await s.close()

    run(scenario())
    conn = sqlite3.connect(tmp_path / "t.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
