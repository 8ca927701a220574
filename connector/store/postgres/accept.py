"""Receive-side transactions for PostgreSQL: inbox, desired state, and the work they create.

Each function runs inside one transaction of the caller. Replicas accept concurrently, so
before touching a customer, group or (customer, group) pair the transaction takes that
entity's transaction-scoped advisory lock, all of them in one sorted pass: two events
about the same pair are decided one after the other, and no two transactions ever wait
for each other's locks in opposite orders.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import AsyncCursor

from connector.plain.changes import CustomerInfo, GroupInfo, MembershipChange, ParsedEvent
from connector.store.base import AcceptResult, Route

#: the database clock in epoch seconds; one clock for every replica's leases and due times
NOW = "extract(epoch FROM clock_timestamp())"

Cursor = AsyncCursor[tuple[Any, ...]]


def lock_key(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def pair_key(customer_id: str, group_id: str) -> int:
    return lock_key("pair", customer_id, group_id)


async def lock_entities(cur: Cursor, keys: Iterable[int]) -> None:
    """Take the advisory locks for ``keys`` in ascending order (the order rules out deadlocks)."""
    ordered = sorted(set(keys))
    if ordered:
        # A function scan yields the array in order, so the locks are taken in that order.
        await cur.execute("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", (ordered,))


def _event_keys(event: ParsedEvent) -> list[int]:
    keys = []
    if event.customer is not None:
        keys.append(lock_key("customer", event.customer.id))
    if event.group is not None:
        keys.append(lock_key("group", event.group.id))
    for change in event.changes:
        keys.append(lock_key("customer", change.customer.id))
        keys.append(lock_key("group", change.group.id))
        keys.append(pair_key(change.customer.id, change.group.id))
    return keys


async def notify(cur: Cursor, channel: str, targets: Iterable[str]) -> None:
    """Tell idle replicas which targets have new work; delivered only if this transaction commits."""
    names = sorted(set(targets))
    if names:
        await cur.execute("SELECT count(pg_notify(%s, t)) FROM unnest(%s::text[]) AS t", (channel, names))


async def accept_event(
    cur: Cursor, event: ParsedEvent, routes: Sequence[Sequence[Route]], channel: str
) -> AcceptResult:
    status = "ignored" if event.kind == "ignored" else "processed"
    await cur.execute(
        "INSERT INTO inbox (event_id, event_type, event_time, received_at, status)"
        f" VALUES (%s, %s, %s, {NOW}, %s) ON CONFLICT (event_id) DO NOTHING",
        (event.event_id, event.event_type, event.event_time, status),
    )
    if cur.rowcount == 0:
        return AcceptResult("duplicate")
    await lock_entities(cur, _event_keys(event))
    if event.customer is not None:
        await _upsert_customer(cur, event.customer, event)
    if event.group is not None:
        await _upsert_group(cur, event.group, event, deleted=event.group_deleted)
    applied = stale = 0
    woken: list[str] = []
    for change, change_routes in zip(event.changes, routes, strict=False):
        moved, targets = await _apply_change(cur, change, change_routes, event)
        applied += moved
        stale += not moved
        woken += targets
    await notify(cur, channel, woken)
    return AcceptResult("ignored" if event.kind == "ignored" else "stored", applied, stale, len(woken))


async def accept_unprocessable(
    cur: Cursor, body: bytes, reason: str, event_id: str | None, event_type: str | None
) -> AcceptResult:
    # Without a usable id, the body's hash still makes Plain's redeliveries collapse.
    key = event_id or "raw:" + hashlib.sha256(body).hexdigest()
    await cur.execute(
        "INSERT INTO inbox (event_id, event_type, received_at, status, reason, body)"
        f" VALUES (%s, %s, {NOW}, 'unprocessable', %s, %s) ON CONFLICT (event_id) DO NOTHING",
        (key, event_type, reason, body),
    )
    return AcceptResult("unprocessable" if cur.rowcount else "duplicate")


def _newer_where(table: str) -> str:
    return f"(excluded.event_time, excluded.event_id) > ({table}.event_time, {table}.event_id)"


async def _upsert_customer(cur: Cursor, customer: CustomerInfo, event: ParsedEvent) -> None:
    await cur.execute(
        "INSERT INTO customers (customer_id, email, external_id, full_name, event_time, event_id)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (customer_id) DO UPDATE SET"
        " email = coalesce(excluded.email, customers.email), external_id = excluded.external_id,"
        " full_name = excluded.full_name, event_time = excluded.event_time, event_id = excluded.event_id"
        f" WHERE {_newer_where('customers')}",
        (customer.id, customer.email, customer.external_id, customer.full_name, event.event_time, event.event_id),
    )


async def _upsert_group(cur: Cursor, group: GroupInfo, event: ParsedEvent, deleted: bool = False) -> None:
    await cur.execute(
        "INSERT INTO groups (group_id, group_key, name, deleted, event_time, event_id)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (group_id) DO UPDATE SET"
        " group_key = coalesce(excluded.group_key, groups.group_key), name = coalesce(excluded.name, groups.name),"
        " deleted = excluded.deleted, event_time = excluded.event_time, event_id = excluded.event_id"
        f" WHERE {_newer_where('groups')}",
        (group.id, group.key, group.name, deleted, event.event_time, event.event_id),
    )


async def _apply_change(
    cur: Cursor, change: MembershipChange, routes: Sequence[Route], event: ParsedEvent
) -> tuple[bool, list[str]]:
    """Move desired state if this event is the newest for the pair; then reconcile work."""
    customer_id, group_id, desired = change.customer.id, change.group.id, change.added
    if change.customer != event.customer:
        await _upsert_customer(cur, change.customer, event)
    await _upsert_group(cur, change.group, event)
    stamp = (event.event_time, event.event_id)
    await cur.execute(
        "SELECT member, event_time, event_id, first_time, first_id FROM memberships"
        " WHERE customer_id = %s AND group_id = %s",
        (customer_id, group_id),
    )
    row = await cur.fetchone()
    if row is not None and (row[1], row[2]) >= stamp:
        if stamp < (row[3], row[4]):
            return False, await _older_than_all_seen(cur, change, bool(row[0]), routes, event)
        return False, []
    # Before the first event we see for a pair, the event itself says what it was before.
    prior = bool(row[0]) if row is not None else not desired
    first = (row[3], row[4]) if row is not None else stamp
    await cur.execute(
        "INSERT INTO memberships (customer_id, group_id, member, event_time, event_id, first_time, first_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (customer_id, group_id) DO UPDATE SET"
        " member = excluded.member, event_time = excluded.event_time, event_id = excluded.event_id",
        (customer_id, group_id, desired, *stamp, *first),
    )
    woken = []
    for route in routes:
        if await reconcile(cur, route, customer_id, group_id, desired, prior, event.event_id):
            woken.append(route.target)
    return True, woken


async def _older_than_all_seen(
    cur: Cursor, change: MembershipChange, desired: bool, routes: Sequence[Route], event: ParsedEvent
) -> list[str]:
    """A late event older than any seen: its before-state is a better guess of the CRM's.

    See :func:`connector.store.sqlite_accept._older_than_all_seen` for the reasoning.
    """
    customer_id, group_id, before = change.customer.id, change.group.id, not change.added
    await cur.execute(
        "UPDATE memberships SET first_time = %s, first_id = %s WHERE customer_id = %s AND group_id = %s",
        (event.event_time, event.event_id, customer_id, group_id),
    )
    woken = []
    for route in routes:
        await cur.execute(
            "UPDATE applied SET member = %s WHERE target = %s AND dest = %s AND customer_id = %s AND group_id = %s"
            " AND note = 'assumed'",
            (before, route.target, route.dest, customer_id, group_id),
        )
        if await reconcile(cur, route, customer_id, group_id, desired, before, event.event_id):
            woken.append(route.target)
    return woken


async def reconcile(
    cur: Cursor, route: Route, customer_id: str, group_id: str, desired: bool, prior: bool, event_id: str
) -> bool:
    """Make the outbox hold exactly the work between desired and applied; True if work is due."""
    key = (route.target, route.dest, customer_id, group_id)
    await cur.execute(
        "SELECT member FROM applied WHERE target = %s AND dest = %s AND customer_id = %s AND group_id = %s", key
    )
    row = await cur.fetchone()
    if row is None:
        # The pair's lock is held, so nobody else can insert this row meanwhile.
        await cur.execute(
            "INSERT INTO applied (target, dest, customer_id, group_id, member, note)"
            " VALUES (%s, %s, %s, %s, %s, 'assumed')",
            (*key, prior),
        )
        applied = prior
    else:
        applied = bool(row[0])
    if desired == applied:
        # Nothing to do, unless a worker is sending the opposite right now: then keep the
        # row so that, once it lands, the runner sees desired differs and reverses it.
        await cur.execute(
            "DELETE FROM outbox WHERE target = %s AND dest = %s AND customer_id = %s AND group_id = %s"
            f" AND (lease_until IS NULL OR lease_until < {NOW})",
            key,
        )
        await cur.execute(
            "UPDATE outbox SET desired = %s, version = version + 1, event_id = %s"
            " WHERE target = %s AND dest = %s AND customer_id = %s AND group_id = %s",
            (desired, event_id, *key),
        )
        return False
    await cur.execute(
        "INSERT INTO outbox (target, dest, customer_id, group_id, desired, event_id, due_at)"
        f" VALUES (%s, %s, %s, %s, %s, %s, {NOW}) ON CONFLICT (target, dest, customer_id, group_id) DO UPDATE SET"
        " desired = excluded.desired, version = outbox.version + 1, event_id = excluded.event_id,"
        " due_at = excluded.due_at, attempts = 0, last_error = NULL",
        (*key, desired, event_id),
    )
    return True
