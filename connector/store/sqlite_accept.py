"""Receive-side transactions for SQLite: inbox, desired state, and the work they create.

Each function runs inside the group-commit transaction of :mod:`groupcommit`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence

from connector.plain.changes import CustomerInfo, GroupInfo, MembershipChange, ParsedEvent
from connector.store.base import AcceptResult, Route


def accept_event(conn: sqlite3.Connection, event: ParsedEvent, routes: Sequence[Sequence[Route]]) -> AcceptResult:
    now = time.time()
    status = "ignored" if event.kind == "ignored" else "processed"
    cur = conn.execute(
        "INSERT OR IGNORE INTO inbox (event_id, event_type, event_time, received_at, status) VALUES (?,?,?,?,?)",
        (event.event_id, event.event_type, event.event_time, now, status),
    )
    if cur.rowcount == 0:
        return AcceptResult("duplicate")
    if event.customer is not None:
        _upsert_customer(conn, event.customer, event)
    if event.group is not None:
        _upsert_group(conn, event.group, event, deleted=event.group_deleted)
    applied = stale = work = 0
    for change, change_routes in zip(event.changes, routes, strict=False):
        moved, created = _apply_change(conn, change, change_routes, event, now)
        applied += moved
        stale += not moved
        work += created
    return AcceptResult("ignored" if event.kind == "ignored" else "stored", applied, stale, work)


def accept_unprocessable(
    conn: sqlite3.Connection, body: bytes, reason: str, event_id: str | None, event_type: str | None
) -> AcceptResult:
    # Without a usable id, the body's hash still makes Plain's redeliveries collapse.
    key = event_id or "raw:" + hashlib.sha256(body).hexdigest()
    cur = conn.execute(
        "INSERT OR IGNORE INTO inbox (event_id, event_type, received_at, status, reason, body) VALUES (?,?,?,?,?,?)",
        (key, event_type, time.time(), "unprocessable", reason, body),
    )
    return AcceptResult("unprocessable" if cur.rowcount else "duplicate")


def _newer_where(table: str) -> str:
    return f"(excluded.event_time, excluded.event_id) > ({table}.event_time, {table}.event_id)"


def _upsert_customer(conn: sqlite3.Connection, customer: CustomerInfo, event: ParsedEvent) -> None:
    conn.execute(
        "INSERT INTO customers (customer_id, email, external_id, full_name, event_time, event_id)"
        " VALUES (?,?,?,?,?,?) ON CONFLICT (customer_id) DO UPDATE SET"
        " email = coalesce(excluded.email, customers.email), external_id = excluded.external_id,"
        " full_name = excluded.full_name, event_time = excluded.event_time, event_id = excluded.event_id"
        f" WHERE {_newer_where('customers')}",
        (customer.id, customer.email, customer.external_id, customer.full_name, event.event_time, event.event_id),
    )


def _upsert_group(conn: sqlite3.Connection, group: GroupInfo, event: ParsedEvent, deleted: bool = False) -> None:
    conn.execute(
        "INSERT INTO groups (group_id, group_key, name, deleted, event_time, event_id) VALUES (?,?,?,?,?,?)"
        " ON CONFLICT (group_id) DO UPDATE SET group_key = coalesce(excluded.group_key, groups.group_key),"
        " name = coalesce(excluded.name, groups.name), deleted = excluded.deleted,"
        " event_time = excluded.event_time, event_id = excluded.event_id"
        f" WHERE {_newer_where('groups')}",
        (group.id, group.key, group.name, int(deleted), event.event_time, event.event_id),
    )


def _apply_change(
    conn: sqlite3.Connection, change: MembershipChange, routes: Sequence[Route], event: ParsedEvent, now: float
) -> tuple[bool, int]:
    """Move desired state if this event is the newest for the pair; then reconcile work."""
    customer_id, group_id, desired = change.customer.id, change.group.id, int(change.added)
    if change.customer != event.customer:
        _upsert_customer(conn, change.customer, event)
    _upsert_group(conn, change.group, event)
    stamp = (event.event_time, event.event_id)
    row = conn.execute(
        "SELECT member, event_time, event_id, first_time, first_id FROM memberships"
        " WHERE customer_id = ? AND group_id = ?",
        (customer_id, group_id),
    ).fetchone()
    if row is not None and (row[1], row[2]) >= stamp:
        if stamp < (row[3], row[4]):
            return False, _older_than_all_seen(conn, customer_id, group_id, row[0], routes, event, 1 - desired, now)
        return False, 0
    # Before the first event we see for a pair, the event itself says what it was before.
    prior = row[0] if row is not None else 1 - desired
    first = (row[3], row[4]) if row is not None else stamp
    conn.execute(
        "INSERT OR REPLACE INTO memberships (customer_id, group_id, member, event_time, event_id, first_time, first_id)"
        " VALUES (?,?,?,?,?,?,?)",
        (customer_id, group_id, desired, *stamp, *first),
    )
    created = 0
    for route in routes:
        created += reconcile(conn, route.target, route.dest, customer_id, group_id, desired, prior, event.event_id, now)
    return True, created


def _older_than_all_seen(
    conn: sqlite3.Connection,
    customer_id: str,
    group_id: str,
    desired: int,
    routes: Sequence[Route],
    event: ParsedEvent,
    before: int,
    now: float,
) -> int:
    """A late event older than any seen: its before-state is a better guess of the CRM's.

    The first event to arrive set each destination's assumed state from its own
    before-state; if an older event turns up (Plain does not order deliveries), that
    guess was made from a state the CRM never received. Correct the guesses nothing has
    confirmed yet, then reconcile, so that e.g. join(t1), leave(t2), join(t3) arriving as
    t2, t1, t3 still ends with the contact in the list.
    """
    conn.execute(
        "UPDATE memberships SET first_time = ?, first_id = ? WHERE customer_id = ? AND group_id = ?",
        (event.event_time, event.event_id, customer_id, group_id),
    )
    created = 0
    for route in routes:
        conn.execute(
            "UPDATE applied SET member = ? WHERE target = ? AND dest = ? AND customer_id = ? AND group_id = ?"
            " AND note = 'assumed'",
            (before, route.target, route.dest, customer_id, group_id),
        )
        created += reconcile(
            conn, route.target, route.dest, customer_id, group_id, desired, before, event.event_id, now
        )
    return created


def reconcile(
    conn: sqlite3.Connection,
    target: str,
    dest: str,
    customer_id: str,
    group_id: str,
    desired: int,
    prior: int,
    event_id: str,
    now: float,
) -> int:
    """Make the outbox hold exactly the work between desired and applied; 1 if work is due."""
    key = (target, dest, customer_id, group_id)
    row = conn.execute(
        "SELECT member FROM applied WHERE target = ? AND dest = ? AND customer_id = ? AND group_id = ?", key
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO applied (target, dest, customer_id, group_id, member, note) VALUES (?,?,?,?,?, 'assumed')",
            (*key, prior),
        )
        applied = prior
    else:
        applied = row[0]
    if desired == applied:
        # Nothing to do, unless a worker is sending the opposite right now: then keep the
        # row so that, once it lands, the runner sees desired differs and reverses it.
        conn.execute(
            "DELETE FROM outbox WHERE target = ? AND dest = ? AND customer_id = ? AND group_id = ?"
            " AND (lease_until IS NULL OR lease_until < ?)",
            (*key, now),
        )
        conn.execute(
            "UPDATE outbox SET desired = ?, version = version + 1, event_id = ?"
            " WHERE target = ? AND dest = ? AND customer_id = ? AND group_id = ?",
            (desired, event_id, *key),
        )
        return 0
    conn.execute(
        "INSERT INTO outbox (target, dest, customer_id, group_id, desired, event_id, due_at) VALUES (?,?,?,?,?,?,?)"
        " ON CONFLICT (target, dest, customer_id, group_id) DO UPDATE SET desired = excluded.desired,"
        " version = outbox.version + 1, event_id = excluded.event_id, due_at = excluded.due_at,"
        " attempts = 0, last_error = NULL",
        (*key, desired, event_id, now),
    )
    return 1
