"""The lifecycle primitives of :class:`~connector.store.sql.SqlTx`: email changes, deletions, keys.

Same portable SQL rules as :mod:`connector.store.sql` (``?`` placeholders, no database's
own functions); split out only to keep each module readable. The small SQL pieces every
``SqlTx`` module shares (``KEY``, ``CURRENT``, ``newer``, ``marks``, ``wkey``) live here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector.store.base import GroupKey
from connector.store.tx import Stamp, Stored, WorkKey

KEY = "target = ? AND dest = ? AND customer_id = ? AND group_id = ?"
#: an outbox row for the customer's current contact (not a removal from an old email)
CURRENT = " AND contact = ''"


def newer(table: str) -> str:
    return f"(excluded.event_time, excluded.event_id) > ({table}.event_time, {table}.event_id)"


def marks(n: int) -> str:
    """``n`` placeholders for an ``IN (...)`` list."""
    return ",".join("?" * n)


def wkey(key: WorkKey) -> tuple[str, str, str, str]:
    return (key.target, key.dest, key.customer_id, key.group_id)


class LifecycleSql:
    __slots__ = ()

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def customer(self, customer_id: str) -> Stored | None:
        row = self.run(
            "SELECT email, deleted, event_time, event_id FROM customers WHERE customer_id = ?", (customer_id,)
        ).fetchone()
        return None if row is None else Stored(row[0], bool(row[1]), (row[2], row[3]))

    def group(self, group_id: str) -> Stored | None:
        row = self.run(
            "SELECT group_key, deleted, event_time, event_id FROM groups WHERE group_id = ?", (group_id,)
        ).fetchone()
        return None if row is None else Stored(row[0], bool(row[1]), (row[2], row[3]))

    def bind_key(self, key: str, group_id: str, stamp: Stamp) -> None:
        self.run(
            "INSERT INTO group_keys (group_key, group_id, event_time, event_id) VALUES (?,?,?,?)"
            " ON CONFLICT (group_key) DO UPDATE SET group_id = excluded.group_id, event_time = excluded.event_time,"
            f" event_id = excluded.event_id WHERE {newer('group_keys')}",
            (key, group_id, *stamp),
        )

    def keys_of_group(self, group_id: str) -> list[str]:
        return [r[0] for r in self.run("SELECT group_key FROM group_keys WHERE group_id = ?", (group_id,))]

    def group_keys(self) -> list[GroupKey]:
        rows = self.run(
            "SELECT k.group_key, k.group_id, g.group_key, g.deleted FROM group_keys k"
            " LEFT JOIN groups g ON g.group_id = k.group_id ORDER BY k.group_key"
        )
        return [GroupKey(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def group_members(self, group_id: str) -> list[tuple[str, bool]]:
        rows = self.run(
            "SELECT customer_id, member FROM memberships WHERE group_id = ? ORDER BY customer_id", (group_id,)
        )
        return [(r[0], bool(r[1])) for r in rows]

    def customer_keys(self, customer_id: str) -> list[WorkKey]:
        """Every destination key with applied state or current-contact work for the customer."""
        rows = self.run(
            "SELECT target, dest, group_id FROM applied WHERE customer_id = ?"
            f" UNION SELECT target, dest, group_id FROM outbox WHERE customer_id = ?{CURRENT}"
            " ORDER BY 1, 2, 3",
            (customer_id, customer_id),
        )
        return [WorkKey(r[0], r[1], customer_id, r[2]) for r in rows]

    def adding_now(self, key: WorkKey, now: float) -> bool:
        """True while a runner holds an add for ``key`` (it may land on the contact it read)."""
        row = self.run(
            f"SELECT 1 FROM outbox WHERE {KEY}{CURRENT} AND desired = 1 AND lease_until >= ?", (*wkey(key), now)
        ).fetchone()
        return row is not None

    def put_old_contact(self, key: WorkKey, contact: str, event_id: str, now: float) -> None:
        self.run(
            "INSERT INTO outbox (target, dest, customer_id, group_id, contact, desired, event_id, due_at)"
            " VALUES (?,?,?,?,?,0,?,?) ON CONFLICT (target, dest, customer_id, group_id, contact) DO UPDATE SET"
            " version = outbox.version + 1, event_id = excluded.event_id, due_at = excluded.due_at, attempts = 0,"
            " last_error = NULL",
            (*wkey(key), contact, event_id, now),
        )

    def old_contacts(self, key: WorkKey) -> list[str]:
        return [r[0] for r in self.run(f"SELECT contact FROM outbox WHERE {KEY} AND contact <> ''", wkey(key))]

    def drop_old_contact(self, key: WorkKey, contact: str, now: float) -> None:
        self.run(
            f"DELETE FROM outbox WHERE {KEY} AND contact = ? AND (lease_until IS NULL OR lease_until < ?)",
            (*wkey(key), contact, now),
        )

    def set_assumed(self, key: WorkKey, member: bool) -> None:
        self.run(
            "INSERT INTO applied (target, dest, customer_id, group_id, member, note) VALUES (?,?,?,?,?, 'assumed')"
            " ON CONFLICT (target, dest, customer_id, group_id) DO UPDATE SET member = excluded.member,"
            " note = excluded.note, detail = NULL, applied_at = NULL",
            (*wkey(key), int(member)),
        )

    def deleted_groups(self) -> list[dict[str, object]]:
        rows = self.run(
            "SELECT group_id, group_key, name, event_time FROM groups WHERE deleted = 1 ORDER BY event_time, group_id"
        )
        return [{"group_id": r[0], "group_key": r[1], "name": r[2], "deleted_at": r[3]} for r in rows]
