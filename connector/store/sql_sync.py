"""The :class:`~connector.store.core_sync.SyncTx` primitives in portable SQL (see :mod:`connector.store.sql`).

Mixed into :class:`~connector.store.sql.SqlTx`, so every SQL backend has them. Tables:
``sync_runs`` and ``sync_run_groups`` (SQLite's in :mod:`connector.store.sqlite.schema`),
plus the core tables. ``INSERT ... RETURNING`` runs on SQLite >= 3.35 and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from connector.plain.changes import GroupInfo
from connector.store.base import GroupRead, RunInfo, RunStatus, SyncKind
from connector.store.core import AppliedNote, WorkKey
from connector.store.core_sync import GroupMember
from connector.store.sql_lifecycle import CURRENT, KEY, marks, wkey

_RUN = (
    "SELECT r.id, r.kind, r.status, r.started_at, r.finished_at, count(g.group_id), coalesce(sum(g.pages), 0),"
    " coalesce(sum(g.customers), 0), coalesce(sum(g.changes), 0), coalesce(sum(g.work), 0), r.error, r.next_at"
    " FROM sync_runs r LEFT JOIN sync_run_groups g ON g.run_id = r.id"
)
_RUN_GROUP_BY = " GROUP BY r.id, r.kind, r.status, r.started_at, r.finished_at, r.error, r.next_at"


class SyncSql:
    """Mixin: needs the host's ``run(sql, params)`` (``?`` placeholders, restyled by the host)."""

    __slots__ = ()

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def queued(self, key: WorkKey) -> bool | None:
        row = self.run(f"SELECT desired FROM outbox WHERE {KEY}{CURRENT}", wkey(key)).fetchone()
        return None if row is None else bool(row[0])

    def applied_note(self, key: WorkKey) -> AppliedNote | None:
        row = self.run(f"SELECT note FROM applied WHERE {KEY}", wkey(key)).fetchone()
        return None if row is None else row[0]

    def group_memberships(self, group_id: str) -> list[GroupMember]:
        rows = self.run(
            "SELECT m.customer_id, m.member, m.event_time, m.event_id, c.email FROM memberships m"
            " LEFT JOIN customers c ON c.customer_id = m.customer_id WHERE m.group_id = ? ORDER BY m.customer_id",
            (group_id,),
        ).fetchall()
        return [(r[0], bool(r[1]), (r[2], r[3]), r[4]) for r in rows]

    def known_groups(self) -> list[GroupInfo]:
        rows = self.run("SELECT group_id, group_key, name FROM groups WHERE deleted = 0 ORDER BY group_id").fetchall()
        return [GroupInfo(r[0], r[1], r[2]) for r in rows]

    def applied_members(self, targets: Collection[str]) -> list[tuple[WorkKey, str | None, str | None]]:
        if not targets:
            return []
        names = sorted(targets)
        rows = self.run(
            "SELECT a.target, a.dest, a.customer_id, a.group_id, c.email, g.group_key FROM applied a"
            " LEFT JOIN customers c ON c.customer_id = a.customer_id LEFT JOIN groups g ON g.group_id = a.group_id"
            f" WHERE a.member = 1 AND a.note = 'confirmed' AND a.target IN ({marks(len(names))})"
            " ORDER BY a.target, a.dest, a.group_id, a.customer_id",
            names,
        ).fetchall()
        return [(WorkKey(r[0], r[1], r[2], r[3]), r[4], r[5]) for r in rows]

    def open_run(self, kind: SyncKind, selection: str) -> int | None:
        row = self.run(
            "SELECT max(id) FROM sync_runs WHERE kind = ? AND selection = ? AND status = 'running'", (kind, selection)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def abandon_runs(self, kind: SyncKind, now: float) -> None:
        self.run(
            "UPDATE sync_runs SET status = 'abandoned', finished_at = ? WHERE kind = ? AND status = 'running'",
            (now, kind),
        )

    def insert_run(self, kind: SyncKind, selection: str, now: float) -> int:
        row = self.run(
            "INSERT INTO sync_runs (kind, selection, status, started_at) VALUES (?,?, 'running', ?) RETURNING id",
            (kind, selection, now),
        ).fetchone()
        return int(row[0])

    def finished_groups(self, run_id: int) -> list[str]:
        return [r[0] for r in self.run("SELECT group_id FROM sync_run_groups WHERE run_id = ?", (run_id,)).fetchall()]

    def insert_group_read(self, run_id: int, read: GroupRead, now: float) -> None:
        self.run(
            "INSERT INTO sync_run_groups (run_id, group_id, group_key, pages, customers, changes, work, finished_at)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (run_id, group_id) DO NOTHING",
            (run_id, read.group_id, read.group_key, read.pages, read.customers, read.changes, read.work, now),
        )

    def set_run(self, run_id: int, status: RunStatus, error: str | None, now: float, next_at: float | None) -> None:
        self.run(
            "UPDATE sync_runs SET status = ?, error = ?, finished_at = ?, next_at = ? WHERE id = ?",
            (status, error, None if status == "running" else now, next_at, run_id),
        )

    def run_info(self, run_id: int) -> RunInfo | None:
        row = self.run(f"{_RUN} WHERE r.id = ?{_RUN_GROUP_BY}", (run_id,)).fetchone()
        return None if row is None else RunInfo(*row)

    def latest_runs(self) -> list[RunInfo]:
        rows = self.run(
            f"{_RUN} WHERE r.id IN (SELECT max(id) FROM sync_runs GROUP BY kind){_RUN_GROUP_BY} ORDER BY r.kind"
        ).fetchall()
        return [RunInfo(*r) for r in rows]
