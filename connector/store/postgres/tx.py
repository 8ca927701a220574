"""The core's storage primitives on PostgreSQL: portable SQL plus what sharing needs.

:class:`PgTx` is :class:`~connector.store.sql.SqlTx` with psycopg's placeholder and four
differences that exist only because several replicas write at once:

- **entity locks**: a transaction first takes the advisory locks of every customer, group
  and (customer, group) pair it will touch, in ascending order, so two replicas decide
  about the same pair one after the other (the core's read-then-write rules need that),
  and no two transactions wait for each other in opposite orders;
- **the claim** is one statement with ``FOR UPDATE SKIP LOCKED`` (the queue pattern of
  procrastinate, River and Oban): due, unleased rows, in order, leased in the same
  statement; a row another replica is claiming is passed over, never waited for. An
  expired lease makes its row due again: that is how a dead replica's work is taken over;
- **the outcome check** reads the row ``FOR UPDATE``, so a claim cannot re-lease it between
  the lease-owner check and the write;
- **wake-ups**: targets that got new work are notified at commit;
- **NUL**: PostgreSQL text cannot hold it, so it is removed from text before it is stored.
  Nothing sent changes: every change reaches a CRM without NUL anyway
  (:func:`connector.text.crm_text`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from connector.plain.changes import ParsedEvent
from connector.store.base import WorkItem
from connector.store.core import WorkKey, WorkRow
from connector.store.sql import SqlTx, _work_item

_CLAIM = (
    "WITH due AS ("
    " SELECT id FROM outbox WHERE target = %(target)s AND due_at <= %(now)s"
    " AND (lease_until IS NULL OR lease_until < %(now)s)"
    " ORDER BY due_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
    "), leased AS ("
    " UPDATE outbox o SET lease_owner = %(owner)s, lease_until = %(until)s FROM due WHERE o.id = due.id"
    " RETURNING o.*"
    ")"
    " SELECT o.id, o.version, o.target, o.dest, o.customer_id, o.group_id, o.desired, o.attempts, o.lease_owner,"
    " coalesce(nullif(o.contact, ''), c.email), c.external_id, c.full_name, g.group_key, g.name, o.event_id,"
    " m.event_time, o.contact"
    " FROM leased o LEFT JOIN customers c ON c.customer_id = o.customer_id"
    " LEFT JOIN groups g ON g.group_id = o.group_id"
    " LEFT JOIN memberships m ON m.customer_id = o.customer_id AND m.group_id = o.group_id"
    " ORDER BY o.due_at, o.id"
)


def lock_key(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def pair_key(customer_id: str, group_id: str) -> int:
    return lock_key("pair", customer_id, group_id)


def event_keys(event: ParsedEvent) -> list[int]:
    """The locks an event's transaction needs: its customers, groups and pairs."""
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


class PgTx(SqlTx):
    placeholder = "%s"

    __slots__ = ("held", "pg", "rows", "woken")

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(conn)
        self.pg = conn
        #: targets that got due work in this transaction
        self.woken: set[str] = set()
        #: advisory locks this transaction holds (until it ends)
        self.held: set[int] = set()
        #: outbox rows read ahead by :meth:`lock_work_rows`
        self.rows: dict[int, WorkRow] | None = None

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return super().run(sql, [pg_text(p) for p in params])

    def begin(self, keys: Iterable[int]) -> float:
        """Take the entity locks for ``keys``; return the database clock (one for every replica)."""
        self.lock(keys)
        row = self.conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        return float(row[0])

    def lock(self, keys: Iterable[int]) -> None:
        ordered = sorted(set(keys) - self.held)
        if ordered:
            # A function scan yields the array in order, so the locks are taken in that order.
            self.conn.execute("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", (ordered,))
            self.held.update(ordered)

    def lock_pair(self, customer_id: str, group_id: str) -> None:
        # The store took every lock the call needs up front, in order; this only catches a
        # path that did not (and a deadlock there is detected and the call run again).
        self.lock([pair_key(customer_id, group_id)])

    def notify(self, channel: str) -> None:
        """Queue one notification per woken target; PostgreSQL sends them only if we commit."""
        if self.woken:
            self.conn.execute(
                "SELECT count(pg_notify(%s, t)) FROM unnest(%s::text[]) AS t", (channel, sorted(self.woken))
            )

    def put_work(self, key: WorkKey, desired: bool, event_id: str, now: float) -> None:
        super().put_work(key, desired, event_id, now)
        self.woken.add(key.target)

    def lock_work_rows(self, work_ids: Sequence[int]) -> None:
        """Read (and lock) the rows a batch of outcomes will check, in one statement.

        With them at hand, writing a whole batch back needs no answer from the server
        until commit, so it can be pipelined: one round trip instead of three per item.
        """
        rows = self.conn.execute(
            "SELECT id, version, desired, lease_owner FROM outbox WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            (list(work_ids),),
        ).fetchall()
        self.rows = {r[0]: WorkRow(r[1], bool(r[2]), r[3]) for r in rows}

    def work_row(self, work_id: int) -> WorkRow | None:
        if self.rows is not None:
            return self.rows.get(work_id)
        row = self.conn.execute(
            "SELECT version, desired, lease_owner FROM outbox WHERE id = %s FOR UPDATE", (work_id,)
        ).fetchone()
        return None if row is None else WorkRow(row[0], bool(row[1]), row[2])

    def dead_letter_keys(self, ids: Sequence[int] | None, target: str | None) -> list[tuple[int, WorkKey, str]]:
        letters = super().dead_letter_keys(ids, target)
        self.lock(pair_key(key.customer_id, key.group_id) for _id, key, _contact in letters)
        return letters

    def claim(self, target: str, limit: int, owner: str, now: float, lease_until: float) -> list[WorkItem]:
        rows = self.conn.execute(
            _CLAIM, {"target": target, "limit": limit, "owner": owner, "now": now, "until": lease_until}
        ).fetchall()
        return [_work_item(r) for r in rows]

    def release(self, items: Iterable[WorkItem]) -> None:
        items = list(items)
        rows = self.conn.execute(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL FROM unnest(%s::bigint[], %s::text[]) AS r(id, owner)"
            " WHERE outbox.id = r.id AND outbox.lease_owner = r.owner RETURNING outbox.target",
            ([i.id for i in items], [i.lease_owner for i in items]),
        ).fetchall()
        # Released work is due now; another replica may be idle.
        self.woken.update(str(r[0]) for r in rows)


def pg_text(value: Any) -> Any:
    """``value`` as PostgreSQL text can hold it (without NUL); anything else unchanged."""
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value
