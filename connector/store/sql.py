"""The :class:`~connector.store.core.Tx` primitives in SQL that SQLite and PostgreSQL both run.

Portable on purpose: ``INSERT ... ON CONFLICT ... DO NOTHING / DO UPDATE``, row-value
comparisons, ``CASE`` instead of summing booleans, and no database's own functions.
Statements are written with ``?`` placeholders (no literal ``?`` or ``%`` appears in
them); a driver with another paramstyle sets :attr:`SqlTx.placeholder`. Booleans are
stored as integers 0/1. The tables are the backend's (see
:mod:`connector.store.sqlite.schema`); their names and columns are part of this contract.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from connector.plain.changes import CustomerInfo, GroupInfo
from connector.store.base import DeadLetter, WorkItem
from connector.store.sql_history import HistorySql
from connector.store.sql_lifecycle import CURRENT, KEY, LifecycleSql, marks, newer, wkey
from connector.store.sql_sync import SyncSql
from connector.store.tx import AppliedNote, InboxStatus, Membership, Stamp, WorkKey, WorkRow

_CLAIM_COLUMNS = (
    "o.id, o.version, o.target, o.dest, o.customer_id, o.group_id, o.desired, o.attempts, o.lease_owner,"
    " coalesce(nullif(o.contact, ''), c.email), c.external_id, c.full_name, g.group_key, g.name, o.event_id,"
    " m.event_time, o.contact"
)
_CLAIM_JOINS = (
    " FROM outbox o LEFT JOIN customers c ON c.customer_id = o.customer_id"
    " LEFT JOIN groups g ON g.group_id = o.group_id"
    " LEFT JOIN memberships m ON m.customer_id = o.customer_id AND m.group_id = o.group_id"
)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Any: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


@functools.lru_cache(maxsize=256)
def _restyle(sql: str, placeholder: str) -> str:
    return sql.replace("?", placeholder)


class SqlTx(LifecycleSql, HistorySql, SyncSql):
    """The storage primitives over one DB-API connection inside an open transaction
    (lifecycle ones in :class:`~connector.store.sql_lifecycle.LifecycleSql`, history and
    retention ones in :class:`~connector.store.sql_history.HistorySql`, those of backfill,
    resync and verify in :class:`~connector.store.sql_sync.SyncSql`)."""

    #: the driver's positional placeholder (``%s`` for psycopg)
    placeholder = "?"
    #: appended to the claim's SELECT (``" FOR UPDATE SKIP LOCKED"`` where rows can be locked)
    claim_lock = ""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if self.placeholder != "?":
            sql = _restyle(sql, self.placeholder)
        cursor: Cursor = self.conn.execute(sql, params)
        return cursor

    def insert_event(
        self, key: str, event_type: str | None, event_time: str | None, status: InboxStatus, now: float,
        reason: str | None = None, body: bytes | None = None,
    ) -> bool:  # fmt: skip
        cur = self.run(
            "INSERT INTO inbox (event_id, event_type, event_time, received_at, status, reason, body)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING",
            (key, event_type, event_time, now, status, reason, body),
        )
        return cur.rowcount > 0

    def delete_unprocessable(self, key: str) -> None:
        self.run("DELETE FROM inbox WHERE event_id = ? AND status = 'unprocessable'", (key,))

    def lock_pair(self, customer_id: str, group_id: str) -> None:
        """Nothing to do with one writer; a backend with concurrent writers overrides this."""

    def upsert_customer(self, customer: CustomerInfo, stamp: Stamp, deleted: bool = False) -> None:
        self.run(
            "INSERT INTO customers (customer_id, email, external_id, full_name, deleted, event_time, event_id)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (customer_id) DO UPDATE SET"
            " email = coalesce(excluded.email, customers.email), external_id = excluded.external_id,"
            " full_name = excluded.full_name, deleted = excluded.deleted, event_time = excluded.event_time,"
            f" event_id = excluded.event_id WHERE {newer('customers')}",
            (customer.id, customer.email, customer.external_id, customer.full_name, int(deleted), *stamp),
        )

    def upsert_group(self, group: GroupInfo, stamp: Stamp, deleted: bool) -> None:
        if group.key is not None:
            self.bind_key(group.key, group.id, stamp)
        self.put_group_row(group, stamp, deleted)

    def put_group_row(self, group: GroupInfo, stamp: Stamp, deleted: bool) -> None:
        """:meth:`upsert_group` without the key binding (the batch records the two apart)."""
        self.run(
            "INSERT INTO groups (group_id, group_key, name, deleted, event_time, event_id) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (group_id) DO UPDATE SET group_key = coalesce(excluded.group_key, groups.group_key),"
            " name = coalesce(excluded.name, groups.name),"
            " deleted = CASE WHEN groups.deleted = 1 THEN 1 ELSE excluded.deleted END,"
            " event_time = excluded.event_time, event_id = excluded.event_id"
            f" WHERE {newer('groups')}",
            (group.id, group.key, group.name, int(deleted), *stamp),
        )
        if deleted:  # final whatever its time: an older deletion still deleted the group
            self.run("UPDATE groups SET deleted = 1 WHERE group_id = ?", (group.id,))

    def membership(self, customer_id: str, group_id: str) -> Membership | None:
        row = self.run(
            "SELECT member, event_time, event_id, first_time, first_id FROM memberships"
            " WHERE customer_id = ? AND group_id = ?",
            (customer_id, group_id),
        ).fetchone()
        return None if row is None else Membership(bool(row[0]), (row[1], row[2]), (row[3], row[4]))

    def put_membership(self, customer_id: str, group_id: str, state: Membership) -> None:
        self.run(
            "INSERT INTO memberships (customer_id, group_id, member, event_time, event_id, first_time, first_id)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (customer_id, group_id) DO UPDATE SET member = excluded.member,"
            " event_time = excluded.event_time, event_id = excluded.event_id, first_time = excluded.first_time,"
            " first_id = excluded.first_id",
            (customer_id, group_id, int(state.member), *state.stamp, *state.first),
        )

    def applied(self, key: WorkKey) -> bool | None:
        row = self.run(f"SELECT member FROM applied WHERE {KEY}", wkey(key)).fetchone()
        return None if row is None else bool(row[0])

    def assume(self, key: WorkKey, member: bool) -> None:
        self.run(
            "INSERT INTO applied (target, dest, customer_id, group_id, member, note) VALUES (?,?,?,?,?, 'assumed')",
            (*wkey(key), int(member)),
        )

    def correct_assumed(self, key: WorkKey, member: bool) -> None:
        self.run(f"UPDATE applied SET member = ? WHERE {KEY} AND note = 'assumed'", (int(member), *wkey(key)))

    def record_applied(self, key: WorkKey, member: bool, note: AppliedNote, detail: str | None, now: float) -> None:
        self.run(
            "INSERT INTO applied (target, dest, customer_id, group_id, member, note, detail, applied_at)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (target, dest, customer_id, group_id) DO UPDATE SET"
            " member = excluded.member, note = excluded.note, detail = excluded.detail, applied_at = excluded.applied_at",
            (*wkey(key), int(member), note, detail, now),
        )

    def put_work(self, key: WorkKey, desired: bool, event_id: str, now: float) -> None:
        self.run(
            "INSERT INTO outbox (target, dest, customer_id, group_id, desired, event_id, due_at) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT (target, dest, customer_id, group_id, contact) DO UPDATE SET desired = excluded.desired,"
            " version = outbox.version + 1, event_id = excluded.event_id, due_at = excluded.due_at,"
            " attempts = 0, last_error = NULL",
            (*wkey(key), int(desired), event_id, now),
        )

    def drop_work(self, key: WorkKey, desired: bool, event_id: str, now: float) -> None:
        self.run(
            f"DELETE FROM outbox WHERE {KEY}{CURRENT} AND (lease_until IS NULL OR lease_until < ?)", (*wkey(key), now)
        )
        self.run(
            f"UPDATE outbox SET desired = ?, version = version + 1, event_id = ? WHERE {KEY}{CURRENT}",
            (int(desired), event_id, *wkey(key)),
        )

    def work_row(self, work_id: int) -> WorkRow | None:
        row = self.run("SELECT version, desired, lease_owner FROM outbox WHERE id = ?", (work_id,)).fetchone()
        return None if row is None else WorkRow(row[0], bool(row[1]), row[2])

    def delete_work(self, work_id: int) -> None:
        self.run("DELETE FROM outbox WHERE id = ?", (work_id,))

    def requeue_work(self, work_id: int, now: float) -> None:
        self.run(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL, due_at = ?, attempts = 0 WHERE id = ?",
            (now, work_id),
        )

    def retry_work(self, work_id: int, due_at: float, error: str | None) -> None:
        self.run(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL, attempts = attempts + 1, due_at = ?,"
            " last_error = ? WHERE id = ?",
            (due_at, error, work_id),
        )

    def add_dead_letter(
        self, key: WorkKey, desired: bool, event_id: str, attempts: int, reason: str, now: float, contact: str = ""
    ) -> None:
        self.run(
            "INSERT INTO dead_letters (target, dest, customer_id, group_id, desired, event_id, attempts, reason,"
            " failed_at, contact) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (*wkey(key), int(desired), event_id, attempts, reason, now, contact),
        )

    def dead_letter_keys(self, ids: Sequence[int] | None, target: str | None) -> list[tuple[int, WorkKey, str]]:
        where, params = _letters_where("", ids, target)
        rows = self.run(
            f"SELECT id, target, dest, customer_id, group_id, contact FROM dead_letters{where} ORDER BY id", params
        ).fetchall()
        return [(r[0], WorkKey(r[1], r[2], r[3], r[4]), r[5]) for r in rows]

    def delete_dead_letter(self, letter_id: int) -> None:
        self.run("DELETE FROM dead_letters WHERE id = ?", (letter_id,))

    def dead_letters(self, target: str | None, limit: int) -> list[DeadLetter]:
        where, params = _letters_where("d.", None, target)
        rows = self.run(
            "SELECT d.id, d.target, d.dest, d.customer_id, d.group_id, g.group_key,"
            " coalesce(nullif(d.contact, ''), c.email), d.desired, d.event_id, d.attempts, d.reason, d.failed_at,"
            " d.contact FROM dead_letters d"
            " LEFT JOIN groups g ON g.group_id = d.group_id LEFT JOIN customers c ON c.customer_id = d.customer_id"
            f"{where} ORDER BY d.id LIMIT ?",
            (*params, limit),
        )
        return [_dead_letter(r) for r in rows]

    def claim(self, target: str, limit: int, owner: str, now: float, lease_until: float) -> list[WorkItem]:
        ids = [
            r[0]
            for r in self.run(
                "SELECT id FROM outbox WHERE target = ? AND due_at <= ?"
                f" AND (lease_until IS NULL OR lease_until < ?) ORDER BY due_at, id LIMIT ?{self.claim_lock}",
                (target, now, now, limit),
            ).fetchall()
        ]
        if not ids:
            return []
        self.run(
            f"UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id IN ({marks(len(ids))})",
            (owner, lease_until, *ids),
        )
        rows = self.run(
            f"SELECT {_CLAIM_COLUMNS}{_CLAIM_JOINS} WHERE o.id IN ({marks(len(ids))}) ORDER BY o.due_at, o.id", ids
        )
        return [_work_item(r) for r in rows]

    def release(self, items: Iterable[WorkItem]) -> None:
        for item in items:
            self.run(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                (item.id, item.lease_owner),
            )

    def release_all(self) -> int:
        return self.run(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL"
        ).rowcount

    def next_due(self, target: str, now: float) -> float | None:
        row = self.run(
            "SELECT min(CASE WHEN lease_until IS NOT NULL AND lease_until >= ? THEN lease_until ELSE due_at END)"
            " FROM outbox WHERE target = ?",
            (now, target),
        ).fetchone()
        return None if row is None else row[0]

    def unprocessable_bodies(self, limit: int) -> list[tuple[str, bytes]]:
        rows = self.run(
            "SELECT event_id, body FROM inbox WHERE status = 'unprocessable' ORDER BY received_at LIMIT ?", (limit,)
        ).fetchall()
        return [(r[0], bytes(r[1])) for r in rows]

    def inbox_counts(self) -> Iterable[tuple[str, int]]:
        return self.run("SELECT status, count(*) FROM inbox GROUP BY status").fetchall()

    def work_counts(self, now: float) -> Iterable[tuple[str, int, int, int, int, float]]:
        return self.run(
            "SELECT target, count(*),"
            " sum(CASE WHEN due_at <= ? AND (lease_until IS NULL OR lease_until < ?) THEN 1 ELSE 0 END),"
            " sum(CASE WHEN lease_until >= ? THEN 1 ELSE 0 END), sum(CASE WHEN attempts > 0 THEN 1 ELSE 0 END),"
            " min(due_at) FROM outbox GROUP BY target",
            (now, now, now),
        ).fetchall()

    def latest_errors(self) -> Iterable[tuple[str, str]]:
        # Ordered so that, per target, the row due latest comes last and wins.
        return self.run(
            "SELECT target, last_error FROM outbox WHERE last_error IS NOT NULL ORDER BY target, due_at, id"
        ).fetchall()

    def dead_letter_counts(self) -> Iterable[tuple[str, int]]:
        return self.run("SELECT target, count(*) FROM dead_letters GROUP BY target").fetchall()

    def applied_counts(self) -> Iterable[tuple[str, AppliedNote, int, float | None]]:
        return self.run(
            "SELECT target, note, count(*), max(applied_at) FROM applied WHERE note <> 'assumed' GROUP BY target, note"
        ).fetchall()

    def recent_unprocessable(self, limit: int) -> list[dict[str, object]]:
        rows = self.run(
            "SELECT event_id, event_type, received_at, reason FROM inbox WHERE status = 'unprocessable'"
            " ORDER BY received_at DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [{"event_id": r[0], "event_type": r[1], "received_at": r[2], "reason": r[3]} for r in rows]


def _letters_where(prefix: str, ids: Sequence[int] | None, target: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if target is not None:
        clauses.append(f"{prefix}target = ?")
        params.append(target)
    if ids is not None:
        clauses.append(f"{prefix}id IN ({marks(len(ids))})")
        params.extend(ids)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _work_item(r: Sequence[Any]) -> WorkItem:
    return WorkItem(
        id=r[0], version=r[1], target=r[2], dest=r[3], customer_id=r[4], group_id=r[5], desired=bool(r[6]),
        attempts=r[7], lease_owner=r[8], email=r[9], external_id=r[10], full_name=r[11], group_key=r[12],
        group_name=r[13], event_id=r[14], event_time=r[15], contact=r[16],
    )  # fmt: skip


def _dead_letter(r: Sequence[Any]) -> DeadLetter:
    return DeadLetter(
        id=r[0], target=r[1], dest=r[2], customer_id=r[3], group_id=r[4], group_key=r[5], email=r[6],
        action="add" if r[7] else "remove", event_id=r[8], attempts=r[9], reason=r[10], failed_at=r[11],
        contact=r[12],
    )  # fmt: skip
