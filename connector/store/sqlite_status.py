"""Operator queries for SQLite: status, dead letters and their replay."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from connector.store.base import DeadLetter, StatusReport
from connector.store.sqlite_accept import reconcile


def read_status(conn: sqlite3.Connection) -> StatusReport:
    now = time.time()
    report = StatusReport()
    for status, count in conn.execute("SELECT status, count(*) FROM inbox GROUP BY status"):
        report.inbox[status] = count
    targets: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return targets.setdefault(
            name,
            {
                "backlog": 0,
                "due": 0,
                "in_flight": 0,
                "retrying": 0,
                "oldest_due_seconds": 0.0,
                "dead_letters": 0,
                "not_in_crm": 0,
                "applied": 0,
                "last_applied_at": None,
                "last_error": None,
            },
        )

    for target, backlog, due, in_flight, retrying, oldest in conn.execute(
        "SELECT target, count(*), sum(due_at <= ?1 AND (lease_until IS NULL OR lease_until < ?1)),"
        " sum(lease_until >= ?1), sum(attempts > 0), min(due_at) FROM outbox GROUP BY target",
        (now,),
    ):
        e = entry(target)
        e.update(backlog=backlog, due=due or 0, in_flight=in_flight or 0, retrying=retrying or 0)
        e["oldest_due_seconds"] = round(max(0.0, now - oldest), 1) if oldest else 0.0
    # SQLite takes the bare column from the row holding max(): the latest error per target.
    for target, error, _latest in conn.execute(
        "SELECT target, last_error, max(due_at) FROM outbox WHERE last_error IS NOT NULL GROUP BY target"
    ):
        entry(target)["last_error"] = error
    for target, count in conn.execute("SELECT target, count(*) FROM dead_letters GROUP BY target"):
        entry(target)["dead_letters"] = count
    for target, note, count, last in conn.execute(
        "SELECT target, note, count(*), max(applied_at) FROM applied WHERE note != 'assumed' GROUP BY target, note"
    ):
        e = entry(target)
        e["not_in_crm" if note == "not_in_crm" else "applied"] = count
        if last and (e["last_applied_at"] is None or last > e["last_applied_at"]):
            e["last_applied_at"] = last
    report.targets = targets
    report.unprocessable = [
        {"event_id": r[0], "event_type": r[1], "received_at": r[2], "reason": r[3]}
        for r in conn.execute(
            "SELECT event_id, event_type, received_at, reason FROM inbox WHERE status = 'unprocessable'"
            " ORDER BY received_at DESC LIMIT 20"
        )
    ]
    return report


def read_dead_letters(conn: sqlite3.Connection, target: str | None, limit: int) -> list[DeadLetter]:
    rows = conn.execute(
        "SELECT d.id, d.target, d.dest, d.customer_id, d.group_id, g.group_key, c.email, d.desired, d.event_id,"
        " d.attempts, d.reason, d.failed_at FROM dead_letters d"
        " LEFT JOIN groups g ON g.group_id = d.group_id LEFT JOIN customers c ON c.customer_id = d.customer_id"
        " WHERE ?1 IS NULL OR d.target = ?1 ORDER BY d.id LIMIT ?2",
        (target, limit),
    )
    return [
        DeadLetter(
            id=r[0],
            target=r[1],
            dest=r[2],
            customer_id=r[3],
            group_id=r[4],
            group_key=r[5],
            email=r[6],
            action="add" if r[7] else "remove",
            event_id=r[8],
            attempts=r[9],
            reason=r[10],
            failed_at=r[11],
        )
        for r in rows
    ]


def replay_dead_letters(conn: sqlite3.Connection, ids: Sequence[int] | None, target: str | None) -> int:
    """Turn dead letters back into work against the desired state as it is now."""
    query = "SELECT id, target, dest, customer_id, group_id FROM dead_letters WHERE (?1 IS NULL OR target = ?1)"
    params: list[Any] = [target]
    if ids is not None:
        if not ids:
            return 0
        query += f" AND id IN ({','.join('?' * len(ids))})"
        params.extend(ids)
    requeued = 0
    now = time.time()
    for dl_id, tgt, dest, customer_id, group_id in conn.execute(query, params).fetchall():
        conn.execute("DELETE FROM dead_letters WHERE id = ?", (dl_id,))
        state = conn.execute(
            "SELECT member, event_id FROM memberships WHERE customer_id = ? AND group_id = ?", (customer_id, group_id)
        ).fetchone()
        if state is None:
            continue
        desired, event_id = state
        requeued += reconcile(conn, tgt, dest, customer_id, group_id, desired, 1 - desired, event_id, now)
    return requeued
