"""The history and retention primitives of :class:`~connector.store.sql.SqlTx`, portable SQL.

Same rules as :mod:`connector.store.sql`: ``?`` placeholders, no database's own functions.
Deletes go through ``... IN (SELECT ... ORDER BY ... LIMIT ?)`` so that one batch is
bounded on every database (``DELETE ... LIMIT`` is not portable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from connector.store.base import PruneKind
from connector.store.history_records import Attempt, AttemptKind
from connector.store.sql_lifecycle import marks
from connector.store.tx import WorkKey

_PAIR = "target, dest, customer_id, group_id"

#: per kind: (table, key column, time column, extra condition)
_PRUNE: dict[str, tuple[str, str, str, str]] = {
    "inbox": ("inbox", "event_id", "received_at", " AND status <> 'unprocessable'"),
    "unprocessable": ("inbox", "event_id", "received_at", " AND status = 'unprocessable'"),
    "attempts": ("attempts", "id", "at", ""),
    "dead_letters": ("dead_letters", "id", "failed_at", ""),
}


class HistorySql:
    """Mixed into :class:`~connector.store.sql.SqlTx`, which supplies :meth:`run`."""

    __slots__ = ()

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def record_attempt(
        self, key: WorkKey, desired: bool, event_id: str, kind: AttemptKind, attempt: int, reason: str | None,
        now: float,
    ) -> None:  # fmt: skip
        self.run(
            f"INSERT INTO attempts ({_PAIR}, desired, event_id, kind, attempt, reason, at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (key.target, key.dest, key.customer_id, key.group_id, int(desired), event_id, kind, attempt, reason, now),
        )

    def find_customers(self, query: str, limit: int) -> list[tuple[str, str | None, str | None, str | None]]:
        rows = self.run(
            "SELECT customer_id, email, external_id, full_name FROM customers"
            " WHERE customer_id = ? OR lower(email) = lower(?) OR external_id = ? ORDER BY customer_id LIMIT ?",
            (query, query, query, limit),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def customer_memberships(self, customer_id: str) -> list[tuple[str, bool]]:
        rows = self.run("SELECT group_id, member FROM memberships WHERE customer_id = ?", (customer_id,)).fetchall()
        return [(r[0], bool(r[1])) for r in rows]

    def customer_applied(self, customer_id: str) -> list[tuple[WorkKey, bool, str, str | None, float | None]]:
        rows = self.run(
            f"SELECT {_PAIR}, member, note, detail, applied_at FROM applied WHERE customer_id = ?", (customer_id,)
        ).fetchall()
        return [(WorkKey(r[0], r[1], r[2], r[3]), bool(r[4]), r[5], r[6], r[7]) for r in rows]

    def customer_work(self, customer_id: str) -> list[tuple[WorkKey, int, str | None]]:
        rows = self.run(
            f"SELECT {_PAIR}, attempts, last_error FROM outbox WHERE customer_id = ?", (customer_id,)
        ).fetchall()
        return [(WorkKey(r[0], r[1], r[2], r[3]), r[4], r[5]) for r in rows]

    def customer_dead_letters(self, customer_id: str) -> list[WorkKey]:
        rows = self.run(f"SELECT {_PAIR} FROM dead_letters WHERE customer_id = ?", (customer_id,)).fetchall()
        return [WorkKey(r[0], r[1], r[2], r[3]) for r in rows]

    def customer_attempts(self, customer_id: str, limit: int) -> list[tuple[WorkKey, Attempt]]:
        rows = self.run(
            f"SELECT {_PAIR}, desired, event_id, kind, attempt, reason, at FROM attempts WHERE customer_id = ?"
            " ORDER BY at DESC, id DESC LIMIT ?",
            (customer_id, limit),
        ).fetchall()
        return [
            (
                WorkKey(r[0], r[1], r[2], r[3]),
                Attempt(r[9], r[0], r[1], r[3], "add" if r[4] else "remove", r[6], r[7], r[8], r[5]),
            )
            for r in rows
        ]

    def group_labels(self, group_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        if not group_ids:
            return {}
        rows = self.run(
            f"SELECT group_id, group_key, name FROM groups WHERE group_id IN ({marks(len(group_ids))})",
            tuple(group_ids),
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def recent_inbox(self, limit: int) -> list[tuple[str, str | None, float, str, str | None]]:
        rows = self.run(
            "SELECT event_id, event_type, received_at, status, reason FROM inbox"
            " ORDER BY received_at DESC, event_id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def event_attempts(self, event_ids: Sequence[str]) -> list[tuple[str, str, AttemptKind]]:
        rows = self.run(
            f"SELECT event_id, target, kind FROM attempts WHERE event_id IN ({marks(len(event_ids))}) ORDER BY at, id",
            tuple(event_ids),
        ).fetchall()
        return [(r[0], r[1], cast(AttemptKind, r[2])) for r in rows]

    def event_work(self, event_ids: Sequence[str]) -> list[tuple[str, str]]:
        rows = self.run(
            f"SELECT event_id, target FROM outbox WHERE event_id IN ({marks(len(event_ids))})", tuple(event_ids)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def prune_rows(self, kind: PruneKind, before: float, limit: int) -> int:
        table, key, when, extra = _PRUNE[kind]
        cursor = self.run(
            f"DELETE FROM {table} WHERE {key} IN"
            f" (SELECT {key} FROM {table} WHERE {when} < ?{extra} ORDER BY {when} LIMIT ?)",
            (before, limit),
        )
        return int(cursor.rowcount)

    def oldest_rows(self) -> dict[str, float | None]:
        oldest: dict[str, float | None] = {}
        for kind, (table, _key, when, extra) in _PRUNE.items():
            row = self.run(f"SELECT min({when}) FROM {table} WHERE 1 = 1{extra}").fetchone()
            oldest[kind] = None if row is None else row[0]
        return oldest
