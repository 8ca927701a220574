"""Claiming and finishing work on PostgreSQL.

The claim is one statement, the queue pattern procrastinate, River and Oban share: pick
the due, unleased rows in order, lock them with ``SKIP LOCKED`` (a row another replica is
claiming right now is passed over, never waited for), and write the lease in the same
statement. A lease that has expired makes its row due again: that is how a killed
replica's work is taken over, with no rescuer process.
"""

from __future__ import annotations

import functools

from connector.store.base import Finished
from connector.store.postgres.accept import NOW, Cursor


@functools.cache
def claim_sql() -> str:
    return (
        f"WITH now AS (SELECT {NOW} AS t), due AS ("
        " SELECT o.id FROM outbox o, now WHERE o.target = %(target)s AND o.due_at <= now.t"
        " AND (o.lease_until IS NULL OR o.lease_until < now.t)"
        " ORDER BY o.due_at, o.id LIMIT %(limit)s FOR UPDATE OF o SKIP LOCKED"
        "), leased AS ("
        " UPDATE outbox o SET lease_owner = %(owner)s, lease_until = now.t + %(lease)s"
        " FROM due, now WHERE o.id = due.id RETURNING o.*"
        ")"
        " SELECT o.id, o.version, o.target, o.dest, o.customer_id, o.group_id, o.desired, o.attempts, o.lease_owner,"
        " c.email, c.external_id, c.full_name, g.group_key, g.name, o.event_id, m.event_time"
        " FROM leased o LEFT JOIN customers c ON c.customer_id = o.customer_id"
        " LEFT JOIN groups g ON g.group_id = o.group_id"
        " LEFT JOIN memberships m ON m.customer_id = o.customer_id AND m.group_id = o.group_id"
        " ORDER BY o.due_at, o.id"
    )


async def finish_one(cur: Cursor, result: Finished) -> None:
    """Write one outcome back; the caller holds the pair's lock."""
    item = result.item
    key = (item.target, item.dest, item.customer_id, item.group_id)
    if result.kind in ("done", "skipped"):
        # A confirmed change is a fact about the CRM whoever holds the lease now.
        note = "confirmed" if result.kind == "done" else "not_in_crm"
        await cur.execute(
            "INSERT INTO applied (target, dest, customer_id, group_id, member, note, detail, applied_at)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s, {NOW}) ON CONFLICT (target, dest, customer_id, group_id)"
            " DO UPDATE SET member = excluded.member, note = excluded.note, detail = excluded.detail,"
            " applied_at = excluded.applied_at",
            (*key, item.desired, note, result.reason),
        )
    await cur.execute("SELECT version, desired, lease_owner FROM outbox WHERE id = %s FOR UPDATE", (item.id,))
    row = await cur.fetchone()
    if row is None or row[2] != item.lease_owner:
        return  # the lease expired and someone else owns the row now
    version, desired = row[0], bool(row[1])
    if version != item.version:
        # Desired state moved while we were busy: drop the row if what we just confirmed
        # is what is now wanted, else make the new wish due at once.
        if result.kind in ("done", "skipped") and desired == item.desired:
            await cur.execute("DELETE FROM outbox WHERE id = %s", (item.id,))
        else:
            await cur.execute(
                f"UPDATE outbox SET lease_owner = NULL, lease_until = NULL, due_at = {NOW}, attempts = 0 WHERE id = %s",
                (item.id,),
            )
        return
    if result.kind in ("done", "skipped"):
        await cur.execute("DELETE FROM outbox WHERE id = %s", (item.id,))
    elif result.kind == "retry":
        await cur.execute(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL, attempts = attempts + 1,"
            f" due_at = coalesce(%s, {NOW}), last_error = %s WHERE id = %s",
            (result.due_at, result.reason, item.id),
        )
    else:
        await cur.execute(
            "INSERT INTO dead_letters (target, dest, customer_id, group_id, desired, event_id, attempts, reason,"
            f" failed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, {NOW})",
            (*key, item.desired, item.event_id, item.attempts + 1, result.reason or "failed"),
        )
        await cur.execute("DELETE FROM outbox WHERE id = %s", (item.id,))
